package daemonset

import (
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kubectl/pkg/util/podutils"
)

func metav1Time(t time.Time) metav1.Time { return metav1.NewTime(t) }

// computeStatus counts nodes as kubectl reads them: desired (nodes that
// should run a pod), current (of those, nodes that have one), misscheduled
// (nodes that have one but should not), and of the desired nodes those
// whose pod is ready, available and made from the current template. The
// pod that stands for a node is its updated pod if it has one, else its
// oldest. recheck is when the next ready pod becomes available.
func computeStatus(w world, nodes []nodePods) (appsv1.DaemonSetStatus, time.Duration) {
	st := appsv1.DaemonSetStatus{
		ObservedGeneration: w.ds.Generation,
		CollisionCount:     w.ds.Status.CollisionCount,
		Conditions:         w.ds.Status.Conditions,
	}
	var recheck time.Duration
	for _, np := range nodes {
		scheduled := len(np.live) > 0
		if !np.place.shouldRun {
			if scheduled {
				st.NumberMisscheduled++
			}
			continue
		}
		st.DesiredNumberScheduled++
		if !scheduled {
			continue
		}
		st.CurrentNumberScheduled++
		pod := np.live[0]
		for _, p := range np.live {
			if isUpdated(w.ds, p, w.hash) {
				pod = p
				break
			}
		}
		if isUpdated(w.ds, pod, w.hash) {
			st.UpdatedNumberScheduled++
		}
		if !podutils.IsPodReady(pod) {
			continue
		}
		st.NumberReady++
		if available(w.ds, pod, w.now) {
			st.NumberAvailable++
		} else if wait := untilAvailable(w.ds, pod, w.now); wait > 0 && (recheck == 0 || wait < recheck) {
			recheck = wait
		}
	}
	st.NumberUnavailable = st.DesiredNumberScheduled - st.NumberAvailable
	return st, recheck
}

// untilAvailable is how long a ready pod still waits out minReadySeconds.
func untilAvailable(ds *appsv1.DaemonSet, pod *corev1.Pod, now time.Time) time.Duration {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return c.LastTransitionTime.Add(time.Duration(ds.Spec.MinReadySeconds)*time.Second).Sub(now) + time.Second
		}
	}
	return 0
}
