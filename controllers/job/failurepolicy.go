package job

import (
	"fmt"
	"slices"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// verdict is what a Job's podFailurePolicy says about one failed pod.
type verdict struct {
	// action is the matching rule's action, or "" when no rule matched
	// (the failure counts, as with Count).
	action batchv1.PodFailurePolicyAction
	// message explains a FailJob or FailIndex match, for the condition.
	message string
}

// counts says whether the failure counts towards backoffLimit (and
// status.failed): everything but Ignore does.
func (v verdict) counts() bool { return v.action != batchv1.PodFailurePolicyActionIgnore }

// judge applies the policy's rules, in order, to a failed pod; the first
// rule that matches decides. A nil policy counts every failure.
func judge(policy *batchv1.PodFailurePolicy, pod *corev1.Pod) verdict {
	if policy == nil {
		return verdict{}
	}
	for i, rule := range policy.Rules {
		var what string
		switch {
		case rule.OnExitCodes != nil:
			cs := matchExitCodes(pod, rule.OnExitCodes)
			if cs == nil {
				continue
			}
			what = fmt.Sprintf("container %s exited with code %d", cs.Name, cs.State.Terminated.ExitCode)
		case len(rule.OnPodConditions) > 0:
			c := matchPodConditions(pod, rule.OnPodConditions)
			if c == nil {
				continue
			}
			what = fmt.Sprintf("has condition %s=%s", c.Type, c.Status)
		default:
			continue
		}
		return verdict{
			action:  rule.Action,
			message: fmt.Sprintf("Pod %s/%s %s, matching the %s rule at index %d", pod.Namespace, pod.Name, what, rule.Action, i),
		}
	}
	return verdict{}
}

// matchExitCodes returns the first terminated container (regular
// containers before init containers) whose non-zero exit code satisfies
// the requirement. Exit code 0 never matches: a container that succeeded
// did not cause the failure.
func matchExitCodes(pod *corev1.Pod, req *batchv1.PodFailurePolicyOnExitCodesRequirement) *corev1.ContainerStatus {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses} {
		for i := range list {
			cs := &list[i]
			t := cs.State.Terminated
			if t == nil || t.ExitCode == 0 {
				continue
			}
			if req.ContainerName != nil && *req.ContainerName != cs.Name {
				continue
			}
			in := slices.Contains(req.Values, t.ExitCode)
			switch req.Operator {
			case batchv1.PodFailurePolicyOnExitCodesOpIn:
				if in {
					return cs
				}
			case batchv1.PodFailurePolicyOnExitCodesOpNotIn:
				if !in {
					return cs
				}
			}
		}
	}
	return nil
}

// matchPodConditions returns the pod's first condition that one of the
// patterns names with the same status.
func matchPodConditions(pod *corev1.Pod, patterns []batchv1.PodFailurePolicyOnPodConditionsPattern) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		c := &pod.Status.Conditions[i]
		for _, p := range patterns {
			if c.Type == p.Type && c.Status == p.Status {
				return c
			}
		}
	}
	return nil
}
