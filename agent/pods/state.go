package pods

import (
	"context"
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/agent/labels"
)

// podRuntime is what the runtime has for one pod.
type podRuntime struct {
	// sandboxes, newest first.
	sandboxes []*runtimeapi.PodSandbox
	// containers by container name, newest instance first.
	containers map[string][]*runtimeapi.Container
}

// readySandbox returns the newest sandbox if it is ready.
func (r *podRuntime) readySandbox() *runtimeapi.PodSandbox {
	if r == nil || len(r.sandboxes) == 0 {
		return nil
	}
	if s := r.sandboxes[0]; s.State == runtimeapi.PodSandboxState_SANDBOX_READY {
		return s
	}
	return nil
}

// latest returns the newest instance of a container, or nil.
func (r *podRuntime) latest(name string) *runtimeapi.Container {
	if r == nil || len(r.containers[name]) == 0 {
		return nil
	}
	return r.containers[name][0]
}

// snapshot lists the runtime's sandboxes and containers of this node,
// grouped by pod UID.
func snapshot(ctx context.Context, rt runtimeapi.RuntimeServiceClient, node string) (map[types.UID]*podRuntime, error) {
	sel := map[string]string{labels.ManagedBy: node}
	sbs, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{LabelSelector: sel}})
	if err != nil {
		return nil, fmt.Errorf("listing sandboxes: %w", err)
	}
	cs, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{LabelSelector: sel}})
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	return groupRuntime(sbs.Items, cs.Containers), nil
}

// groupRuntime groups sandboxes and containers by pod UID, newest first.
func groupRuntime(sandboxes []*runtimeapi.PodSandbox, containers []*runtimeapi.Container) map[types.UID]*podRuntime {
	out := map[types.UID]*podRuntime{}
	get := func(uid types.UID) *podRuntime {
		p := out[uid]
		if p == nil {
			p = &podRuntime{containers: map[string][]*runtimeapi.Container{}}
			out[uid] = p
		}
		return p
	}
	for _, s := range sandboxes {
		uid := types.UID(s.Labels[labels.PodUID])
		p := get(uid)
		p.sandboxes = append(p.sandboxes, s)
	}
	for _, c := range containers {
		uid := types.UID(c.Labels[labels.PodUID])
		name := c.Labels[labels.ContainerName]
		p := get(uid)
		p.containers[name] = append(p.containers[name], c)
	}
	for _, p := range out {
		sort.Slice(p.sandboxes, func(i, j int) bool {
			a, b := p.sandboxes[i], p.sandboxes[j]
			if a.Metadata.GetAttempt() != b.Metadata.GetAttempt() {
				return a.Metadata.GetAttempt() > b.Metadata.GetAttempt()
			}
			return a.CreatedAt > b.CreatedAt
		})
		for _, list := range p.containers {
			sort.Slice(list, func(i, j int) bool {
				a, b := list[i], list[j]
				if a.Metadata.GetAttempt() != b.Metadata.GetAttempt() {
					return a.Metadata.GetAttempt() > b.Metadata.GetAttempt()
				}
				return a.CreatedAt > b.CreatedAt
			})
		}
	}
	return out
}

// fingerprint summarises a pod's runtime state, so the relist can tell
// which pods changed.
func (r *podRuntime) fingerprint() string {
	if r == nil {
		return ""
	}
	s := ""
	for _, sb := range r.sandboxes {
		s += sb.Id + sb.State.String() + ";"
	}
	names := make([]string, 0, len(r.containers))
	for n := range r.containers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, c := range r.containers[n] {
			s += c.Id + c.State.String() + ";"
		}
	}
	return s
}
