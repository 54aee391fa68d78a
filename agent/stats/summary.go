// Package stats reports a node's resource usage for the metrics API: the
// node agent samples cumulative CPU time and the memory working set of
// the node and of every running container it manages, and serves the
// sample as JSON on its HTTPS API at Path. The API server (metrics.k8s.io)
// fetches two samples and turns them into usage rates with Rates.
//
// A sample holds counters, not rates: CPU is the cumulative core time in
// nanoseconds since some fixed point, so the reader chooses the window.
// Memory is the working set at the sample's time: usage minus the page
// cache the kernel can drop (inactive file pages).
package stats

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Path is where the agent serves its sample.
const Path = "/stats/resource"

// maxSummaryBytes bounds a sample a reader accepts.
const maxSummaryBytes = 16 << 20

// Summary is one sample of a node's resource usage.
type Summary struct {
	Node NodeStats  `json:"node"`
	Pods []PodStats `json:"pods"`
}

// NodeStats is the usage of the whole node.
type NodeStats struct {
	// Name is the node's name.
	Name string `json:"name"`
	// Time is when the counters were read.
	Time time.Time `json:"time"`
	// CPUUsageCoreNanoseconds is the CPU time all cores have spent, in
	// nanoseconds, since boot.
	CPUUsageCoreNanoseconds uint64 `json:"cpuUsageCoreNanoseconds"`
	// MemoryWorkingSetBytes is the memory in use that the kernel cannot
	// simply drop.
	MemoryWorkingSetBytes uint64 `json:"memoryWorkingSetBytes"`
}

// PodStats is the usage of one pod's running containers.
type PodStats struct {
	Namespace  string           `json:"namespace"`
	Name       string           `json:"name"`
	UID        string           `json:"uid"`
	Containers []ContainerStats `json:"containers"`
}

// ContainerStats is the usage of one running container.
type ContainerStats struct {
	// Name is the container's name in the pod spec.
	Name string `json:"name"`
	// ID is the runtime's container ID: a restarted container has a new
	// one, and its CPU counter starts again from zero.
	ID string `json:"id"`
	// Time is when the runtime read the CPU counter.
	Time time.Time `json:"time"`
	// CPUUsageCoreNanoseconds is the container's cumulative CPU time.
	CPUUsageCoreNanoseconds uint64 `json:"cpuUsageCoreNanoseconds"`
	// MemoryWorkingSetBytes is the container's working set.
	MemoryWorkingSetBytes uint64 `json:"memoryWorkingSetBytes"`
}

// Decode reads a Summary as the agent serves it and checks that it is
// usable: a node name and time, and pods and containers that say which
// they are.
func Decode(r io.Reader) (*Summary, error) {
	var s Summary
	dec := json.NewDecoder(io.LimitReader(r, maxSummaryBytes))
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("decode resource stats: %w", err)
	}
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("resource stats: %w", err)
	}
	return &s, nil
}

func (s *Summary) validate() error {
	if s.Node.Name == "" {
		return errors.New("no node name")
	}
	if s.Node.Time.IsZero() {
		return errors.New("no sample time")
	}
	for _, p := range s.Pods {
		if p.Namespace == "" || p.Name == "" || p.UID == "" {
			return fmt.Errorf("pod %s/%s (uid %q) is not fully named", p.Namespace, p.Name, p.UID)
		}
		for _, c := range p.Containers {
			if c.Name == "" || c.ID == "" || c.Time.IsZero() {
				return fmt.Errorf("pod %s/%s: container %q (id %q) lacks a name, id or time", p.Namespace, p.Name, c.Name, c.ID)
			}
		}
	}
	return nil
}
