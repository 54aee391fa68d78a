package scheduler

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// AnnotationUnschedulable is the pod annotation where the scheduler leaves
// a machine-readable Explanation of its last failure to place the pod
// (read by `skiff why`). It is removed once the pod is bound.
const AnnotationUnschedulable = "scheduler.skiff.dev/unschedulable"

// ExplanationNodeLimit is how many nodes an Explanation lists by name;
// the rest are summarised by reason.
const ExplanationNodeLimit = 100

// Unschedulable explains why a pod fits no node.
type Unschedulable struct {
	// NumNodes is the number of nodes in the snapshot.
	NumNodes int
	// PodReason, when set, rejected the pod before any node was
	// considered (a missing claim); Nodes is then empty.
	PodReason string
	// Nodes lists every rejected node with its reasons, in the order
	// visited. Reasons slices are shared and must not be changed.
	Nodes []NodeReasons
	// Preemption is what preemption had to say, when it was tried and
	// found nothing ("0/3 nodes are available: 3 Preemption is not
	// helpful for scheduling." or "not eligible due to ...").
	Preemption string
}

// NodeReasons is why one node was rejected.
type NodeReasons struct {
	Node    string   `json:"node"`
	Reasons []string `json:"reasons"`
	// Code says whether evicting pods could help (for preemption).
	Code Code `json:"-"`
}

// Message is the PodScheduled condition and FailedScheduling event
// message, in Kubernetes' format: the count of nodes per reason, sorted as
// text, then preemption's own verdict in the same shape:
//
//	0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated
//	taint {key: value}. preemption: 0/3 nodes are available: 1 No
//	preemption victims found for incoming pod, 2 Preemption is not helpful
//	for scheduling..
//
// (The doubled period is Kubernetes' too: preemption's sentence ends with
// one and the separator adds another.)
func (u *Unschedulable) Message() string {
	if u.NumNodes == 0 {
		return "no nodes available to schedule pods"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "0/%d nodes are available: ", u.NumNodes)
	if u.PodReason != "" {
		b.WriteString(u.PodReason)
	} else {
		b.WriteString(strings.Join(histogram(u.Nodes), ", "))
	}
	b.WriteString(".")
	if u.Preemption != "" {
		b.WriteString(" preemption: ")
		b.WriteString(u.Preemption)
		b.WriteString(".")
	}
	return b.String()
}

// histogram counts nodes per reason as "N reason" strings, sorted.
func histogram(nodes []NodeReasons) []string {
	counts := map[string]int{}
	for _, n := range nodes {
		for _, r := range n.Reasons {
			counts[r]++
		}
	}
	out := make([]string, 0, len(counts))
	for r, n := range counts {
		out = append(out, fmt.Sprintf("%d %s", n, r))
	}
	sort.Strings(out)
	return out
}

// Explanation is the JSON stored in AnnotationUnschedulable:
//
//	{"nodes":3,
//	 "rejected":[{"node":"a","reasons":["Insufficient cpu"]}, ...],
//	 "omitted":{"nodes":4900,"reasons":{"Insufficient cpu":4900}},
//	 "preemption":"0/3 nodes are available: ..."}
//
// nodes is the cluster size; pod, when present, is a rejection of the pod
// as a whole (then rejected is empty); rejected lists at most
// ExplanationNodeLimit nodes sorted by name; omitted summarises the rest
// by reason (a node with two reasons counts under both).
type Explanation struct {
	Nodes      int           `json:"nodes"`
	Pod        string        `json:"pod,omitempty"`
	Rejected   []NodeReasons `json:"rejected,omitempty"`
	Omitted    *Omitted      `json:"omitted,omitempty"`
	Preemption string        `json:"preemption,omitempty"`
}

// Omitted summarises the rejected nodes an Explanation does not list.
type Omitted struct {
	Nodes   int            `json:"nodes"`
	Reasons map[string]int `json:"reasons"`
}

// Explain builds the Explanation of u, listing at most limit nodes.
func (u *Unschedulable) Explain(limit int) Explanation {
	e := Explanation{Nodes: u.NumNodes, Pod: u.PodReason, Preemption: u.Preemption}
	nodes := append([]NodeReasons(nil), u.Nodes...)
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Node < nodes[j].Node })
	if len(nodes) > limit {
		o := &Omitted{Nodes: len(nodes) - limit, Reasons: map[string]int{}}
		for _, n := range nodes[limit:] {
			for _, r := range n.Reasons {
				o.Reasons[r]++
			}
		}
		e.Omitted = o
		nodes = nodes[:limit]
	}
	e.Rejected = nodes
	return e
}

// Annotation is the value for AnnotationUnschedulable.
func (u *Unschedulable) Annotation() (string, error) {
	b, err := json.Marshal(u.Explain(ExplanationNodeLimit))
	if err != nil {
		return "", fmt.Errorf("encode explanation: %w", err)
	}
	return string(b), nil
}

// ParseExplanation decodes an AnnotationUnschedulable value.
func ParseExplanation(s string) (Explanation, error) {
	var e Explanation
	if err := json.Unmarshal([]byte(s), &e); err != nil {
		return Explanation{}, fmt.Errorf("decode %s: %w", AnnotationUnschedulable, err)
	}
	return e, nil
}
