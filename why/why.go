// Package why answers "why is my pod not running?" and "why does my
// Service not answer?". Explain and ExplainService are pure: they take the
// object, what it depends on (a pod's node and events; a Service's pods,
// EndpointSlices and NetworkPolicies) and the current time, and return
// findings a person can act on, most important first. The `skiff why`
// command gathers those inputs through the API.
//
// For a pod, the questions it walks through, in order:
//
//	being deleted?            deletion timestamp and grace period
//	finished?                 Succeeded/Failed, with exit codes
//	not scheduled?            scheduling gates, another scheduler, or the
//	                          scheduler's per-node reasons
//	node unhealthy?           Ready condition of the node
//	containers waiting?       image pulls, crash loops, init containers
//	running but not ready?    readiness probe failures
//	otherwise                 running and ready
//
// For a Service (service.go):
//
//	what kind?                ExternalName (DNS only), headless
//	ready endpoints?          the EndpointSlices' ready/serving/terminating
//	                          counts; none means connections are rejected
//	why not?                  no selector and no slices, a selector that
//	                          matches nothing (with likely typos), pods not
//	                          ready, a named targetPort the pods lack
//	from outside?             LoadBalancer address or class, node ports,
//	                          Local traffic policies and their nodes
//	fenced off?               NetworkPolicies selecting the pods for ingress
package why

import (
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/skiff-sh/skiff/scheduler"
)

// Finding is one thing Explain found.
type Finding struct {
	// Summary is one line: what is wrong (or that nothing is).
	Summary string
	// Details are supporting lines (per-node reasons, last exit, events).
	Details []string
}

// Report is the answer for one pod or Service.
type Report struct {
	// Pod is the pod's namespace/name (Explain).
	Pod string
	// Subject, when set, is what Format names in its header, e.g.
	// "service shop/web"; otherwise the header names the pod.
	Subject string
	// OK is true when the pod is running and ready, or finished well (or,
	// for a Service, when nothing keeps clients from a ready endpoint).
	OK       bool
	Findings []Finding
}

// maxNodeLines bounds the per-node lines shown for an unschedulable pod.
const maxNodeLines = 8

// Explain looks at a pod. node is the node it is bound to (nil when it is
// not bound or the node is gone); events are the pod's events, any order.
func Explain(pod *corev1.Pod, node *corev1.Node, events []corev1.Event, now time.Time) Report {
	r := Report{Pod: pod.Namespace + "/" + pod.Name}
	add := func(summary string, details ...string) {
		r.Findings = append(r.Findings, Finding{Summary: summary, Details: details})
	}
	ago := func(t time.Time) string { return duration.HumanDuration(now.Sub(t)) }

	if pod.DeletionTimestamp != nil {
		grace := int64(0)
		if pod.DeletionGracePeriodSeconds != nil {
			grace = *pod.DeletionGracePeriodSeconds
		}
		d := []string{fmt.Sprintf("deadline %s (grace period %ds)", pod.DeletionTimestamp.Time.UTC().Format(time.RFC3339), grace)}
		if pod.Spec.NodeName != "" {
			d = append(d, fmt.Sprintf("node %s stops its containers and then confirms the deletion", pod.Spec.NodeName))
		}
		if len(pod.Finalizers) > 0 {
			d = append(d, "finalizers still hold it: "+strings.Join(pod.Finalizers, ", "))
		}
		add("the pod is being deleted", d...)
		r.Findings = append(r.Findings, warningEvents(events, now)...)
		return r
	}

	switch pod.Status.Phase {
	case corev1.PodSucceeded:
		r.OK = true
		add("the pod finished: all containers exited with code 0")
		return r
	case corev1.PodFailed:
		d := exitDetails(pod.Status.ContainerStatuses)
		if pod.Status.Reason != "" {
			d = append([]string{fmt.Sprintf("reason %s: %s", pod.Status.Reason, pod.Status.Message)}, d...)
		}
		add("the pod failed and will not be restarted (restartPolicy "+string(pod.Spec.RestartPolicy)+")", d...)
		r.Findings = append(r.Findings, warningEvents(events, now)...)
		return r
	}

	if pod.Spec.NodeName == "" {
		r.Findings = append(r.Findings, unscheduled(pod, now)...)
		r.Findings = append(r.Findings, warningEvents(events, now)...)
		return r
	}

	if node == nil {
		add(fmt.Sprintf("the pod is bound to node %s, which does not exist", pod.Spec.NodeName),
			"pod GC removes pods of vanished nodes; a controller will then replace it")
	} else if ready := nodeReady(node); ready == nil || ready.Status != corev1.ConditionTrue {
		status, reason, since := "Unknown", "", ""
		if ready != nil {
			status, reason, since = string(ready.Status), ready.Reason, ago(ready.LastTransitionTime.Time)
		}
		add(fmt.Sprintf("node %s is not ready (Ready=%s %s, for %s)", node.Name, status, reason, since),
			"its pods are evicted once their not-ready/unreachable tolerations run out (300 s by default)")
	}

	waiting := containerProblems(pod)
	r.Findings = append(r.Findings, waiting...)
	if len(waiting) == 0 && pod.Status.Phase == corev1.PodRunning {
		if cond := podCondition(pod, corev1.PodReady); cond != nil && cond.Status == corev1.ConditionTrue {
			r.OK = len(r.Findings) == 0
			if r.OK {
				add(fmt.Sprintf("the pod is running and ready on %s", pod.Spec.NodeName))
			}
		} else {
			var notReady []string
			for _, cs := range pod.Status.ContainerStatuses {
				if !cs.Ready {
					notReady = append(notReady, cs.Name)
				}
			}
			d := []string{}
			if len(notReady) > 0 {
				d = append(d, "containers not ready: "+strings.Join(notReady, ", "))
			}
			add("the pod is running but not ready, so Services send it no traffic", d...)
		}
	}
	if len(r.Findings) == 0 {
		add(fmt.Sprintf("the pod is %s on %s, waiting for its node to start it", strings.ToLower(string(pod.Status.Phase)), pod.Spec.NodeName))
	}
	if !r.OK {
		r.Findings = append(r.Findings, warningEvents(events, now)...)
	}
	return r
}

// unscheduled explains a pod no node has taken.
func unscheduled(pod *corev1.Pod, now time.Time) []Finding {
	if len(pod.Spec.SchedulingGates) > 0 {
		var gates []string
		for _, g := range pod.Spec.SchedulingGates {
			gates = append(gates, g.Name)
		}
		return []Finding{{Summary: "the pod is held back by scheduling gates: " + strings.Join(gates, ", "),
			Details: []string{"whoever added them must remove them before the scheduler looks at the pod"}}}
	}
	if name := pod.Spec.SchedulerName; name != "" && name != corev1.DefaultSchedulerName {
		return []Finding{{Summary: fmt.Sprintf("the pod asks for scheduler %q; Skiff's scheduler only places pods for %q", name, corev1.DefaultSchedulerName)}}
	}
	cond := podCondition(pod, corev1.PodScheduled)
	if cond == nil || cond.Status != corev1.ConditionFalse {
		return []Finding{{Summary: "the pod is waiting for the scheduler, which has not placed it yet"}}
	}
	f := Finding{Summary: "no node can take the pod: " + cond.Message}
	if raw := pod.Annotations[scheduler.AnnotationUnschedulable]; raw != "" {
		if expl, err := scheduler.ParseExplanation(raw); err == nil {
			f.Details = nodeLines(&expl)
		}
	}
	return []Finding{f}
}

// nodeLines groups the scheduler's per-node reasons: reason -> nodes.
func nodeLines(expl *scheduler.Explanation) []string {
	byReason := map[string][]string{}
	for _, n := range expl.Rejected {
		key := strings.Join(n.Reasons, "; ")
		byReason[key] = append(byReason[key], n.Node)
	}
	reasons := make([]string, 0, len(byReason))
	for k := range byReason {
		reasons = append(reasons, k)
	}
	sort.Slice(reasons, func(i, j int) bool {
		if len(byReason[reasons[i]]) != len(byReason[reasons[j]]) {
			return len(byReason[reasons[i]]) > len(byReason[reasons[j]])
		}
		return reasons[i] < reasons[j]
	})
	var out []string
	for i, reason := range reasons {
		if i == maxNodeLines {
			out = append(out, fmt.Sprintf("... and %d more reasons", len(reasons)-i))
			break
		}
		nodes := byReason[reason]
		list := strings.Join(nodes, ", ")
		if len(nodes) > 3 {
			list = strings.Join(nodes[:3], ", ") + fmt.Sprintf(" and %d more", len(nodes)-3)
		}
		out = append(out, fmt.Sprintf("%s: %s", list, reason))
	}
	if o := expl.Omitted; o != nil {
		out = append(out, fmt.Sprintf("%d more nodes not listed", o.Nodes))
	}
	if expl.Pod != "" {
		out = append(out, "for every node: "+expl.Pod)
	}
	if expl.Preemption != "" {
		out = append(out, "preemption: "+expl.Preemption)
	}
	return out
}

// containerProblems reports containers that are waiting or crashing.
func containerProblems(pod *corev1.Pod) []Finding {
	var out []Finding
	check := func(kind string, statuses []corev1.ContainerStatus) {
		for _, cs := range statuses {
			w := cs.State.Waiting
			if w == nil {
				continue
			}
			var d []string
			if w.Message != "" {
				d = append(d, w.Message)
			}
			if t := cs.LastTerminationState.Terminated; t != nil {
				d = append(d, fmt.Sprintf("last run exited with code %d (%s), %d restarts", t.ExitCode, t.Reason, cs.RestartCount))
			}
			switch w.Reason {
			case "ErrImagePull", "ImagePullBackOff", "InvalidImageName":
				d = append(d, fmt.Sprintf("image %q cannot be pulled: check its name and tag, the registry, and imagePullSecrets", cs.Image))
			case "CrashLoopBackOff":
				d = append(d, "the container keeps exiting; its logs say why: kubectl logs --previous "+pod.Name+" -c "+cs.Name)
			case "CreateContainerConfigError":
				d = append(d, "a ConfigMap, Secret or key it refers to is probably missing")
			}
			reason := w.Reason
			if reason == "" {
				reason = "Waiting"
			}
			out = append(out, Finding{Summary: fmt.Sprintf("%s %s is %s", kind, cs.Name, reason), Details: d})
		}
	}
	check("init container", pod.Status.InitContainerStatuses)
	check("container", pod.Status.ContainerStatuses)
	return out
}

func exitDetails(statuses []corev1.ContainerStatus) []string {
	var out []string
	for _, cs := range statuses {
		if t := cs.State.Terminated; t != nil {
			out = append(out, fmt.Sprintf("container %s exited with code %d (%s)", cs.Name, t.ExitCode, t.Reason))
		}
	}
	return out
}

// warningEvents is the pod's recent warnings, newest first, as one finding.
func warningEvents(events []corev1.Event, now time.Time) []Finding {
	var warn []corev1.Event
	for _, e := range events {
		if e.Type == corev1.EventTypeWarning {
			warn = append(warn, e)
		}
	}
	if len(warn) == 0 {
		return nil
	}
	last := func(e corev1.Event) time.Time {
		if !e.LastTimestamp.IsZero() {
			return e.LastTimestamp.Time
		}
		if !e.EventTime.IsZero() {
			return e.EventTime.Time
		}
		return e.CreationTimestamp.Time
	}
	sort.Slice(warn, func(i, j int) bool { return last(warn[i]).After(last(warn[j])) })
	f := Finding{Summary: "recent warnings"}
	for i, e := range warn {
		if i == 5 {
			break
		}
		count := ""
		if e.Count > 1 {
			count = fmt.Sprintf(" (x%d)", e.Count)
		}
		f.Details = append(f.Details, fmt.Sprintf("%s ago %s%s: %s", duration.HumanDuration(now.Sub(last(e))), e.Reason, count, e.Message))
	}
	return []Finding{f}
}

func podCondition(pod *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == t {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

func nodeReady(n *corev1.Node) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

// Format renders a report as text.
func Format(r Report) string {
	var b strings.Builder
	subject := r.Subject
	if subject == "" {
		subject = "pod " + r.Pod
	}
	fmt.Fprintf(&b, "%s:\n", subject)
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "  - %s\n", f.Summary)
		for _, d := range f.Details {
			fmt.Fprintf(&b, "      %s\n", d)
		}
	}
	return b.String()
}
