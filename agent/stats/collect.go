package stats

import (
	"context"
	"fmt"
	"sort"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/agent/labels"
)

// Collector takes samples of a node's usage.
type Collector struct {
	// Runtime is the CRI runtime service the containers run in.
	Runtime runtimeapi.RuntimeServiceClient
	// NodeName names the node in samples; when set, only containers
	// labelled as this node's (labels.ManagedBy) are reported, for agents
	// that share a container runtime.
	NodeName string
	// Host is where the node's own counters are read.
	Host Host
	// Now is the clock for the node's counters. Default time.Now.
	Now func() time.Time
}

// Collect takes one sample: the node's counters and those of every
// running container that belongs to a pod.
func (c *Collector) Collect(ctx context.Context) (*Summary, error) {
	now := c.Now
	if now == nil {
		now = time.Now
	}
	host := c.Host.withDefaults()
	var selector map[string]string
	if c.NodeName != "" {
		selector = map[string]string{labels.ManagedBy: c.NodeName}
	}
	running, err := c.Runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
		State:         &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
		LabelSelector: selector,
	}})
	if err != nil {
		return nil, fmt.Errorf("list running containers: %w", err)
	}
	stats, err := c.Runtime.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{Filter: &runtimeapi.ContainerStatsFilter{
		LabelSelector: selector,
	}})
	if err != nil {
		return nil, fmt.Errorf("list container stats: %w", err)
	}

	s := &Summary{Node: NodeStats{Name: c.NodeName}}
	// The node's counters are read once the containers' are, so the node's
	// time is never older than theirs.
	s.Node.Time = now()
	if s.Node.CPUUsageCoreNanoseconds, err = host.nodeCPU(); err != nil {
		return nil, err
	}
	if s.Node.MemoryWorkingSetBytes, err = host.nodeMemory(); err != nil {
		return nil, err
	}
	s.Pods = podStats(running.GetContainers(), stats.GetStats(), s.Node.Time)
	return s, nil
}

// podStats groups the stats of running pod containers by pod. Containers
// that are not running, belong to no pod or have no CPU counter are left
// out. fallback is the time of counters the runtime did not stamp.
func podStats(running []*runtimeapi.Container, all []*runtimeapi.ContainerStats, fallback time.Time) []PodStats {
	byID := make(map[string]*runtimeapi.Container, len(running))
	for _, c := range running {
		byID[c.GetId()] = c
	}
	pods := map[string]*PodStats{}
	for _, st := range all {
		id := st.GetAttributes().GetId()
		ctr, ok := byID[id]
		if !ok || st.GetCpu().GetUsageCoreNanoSeconds() == nil {
			continue
		}
		l := ctr.GetLabels()
		ns, name, uid, cname := l[labels.PodNamespace], l[labels.PodName], l[labels.PodUID], l[labels.ContainerName]
		if ns == "" || name == "" || uid == "" || cname == "" {
			continue
		}
		p, ok := pods[uid]
		if !ok {
			p = &PodStats{Namespace: ns, Name: name, UID: uid}
			pods[uid] = p
		}
		t := fallback
		if ts := st.GetCpu().GetTimestamp(); ts > 0 {
			t = time.Unix(0, ts).UTC()
		}
		p.Containers = append(p.Containers, ContainerStats{
			Name:                    cname,
			ID:                      id,
			Time:                    t,
			CPUUsageCoreNanoseconds: st.GetCpu().GetUsageCoreNanoSeconds().GetValue(),
			MemoryWorkingSetBytes:   st.GetMemory().GetWorkingSetBytes().GetValue(),
		})
	}
	out := make([]PodStats, 0, len(pods))
	for _, p := range pods {
		sort.Slice(p.Containers, func(i, j int) bool { return p.Containers[i].Name < p.Containers[j].Name })
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].UID < out[j].UID
	})
	return out
}
