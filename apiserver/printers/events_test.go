package printers

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestEventRows(t *testing.T) {
	classic := &corev1.Event{
		ObjectMeta:     objMeta("web.17a", time.Hour),
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web", FieldPath: "spec.containers{web}"},
		Reason:         "BackOff",
		Message:        "Back-off restarting failed container\n",
		Source:         corev1.EventSource{Component: "kubelet", Host: "n1"},
		FirstTimestamp: ago(time.Hour),
		LastTimestamp:  ago(90 * time.Second),
		Count:          7,
		Type:           corev1.EventTypeWarning,
	}
	series := &corev1.Event{
		ObjectMeta:          objMeta("sched.1", 10*time.Minute),
		InvolvedObject:      corev1.ObjectReference{Kind: "Pod", Name: "web"},
		Reason:              "FailedScheduling",
		Message:             "0/1 nodes are available",
		EventTime:           metav1.NewMicroTime(now.Add(-10 * time.Minute)),
		Series:              &corev1.EventSeries{Count: 4, LastObservedTime: metav1.NewMicroTime(now.Add(-20 * time.Second))},
		ReportingController: "default-scheduler",
		Type:                corev1.EventTypeWarning,
	}
	single := &corev1.Event{
		ObjectMeta:          objMeta("node.1", time.Minute),
		InvolvedObject:      corev1.ObjectReference{Kind: "Node"},
		Reason:              "Starting",
		EventTime:           metav1.NewMicroTime(now.Add(-time.Minute)),
		ReportingController: "kubelet",
		ReportingInstance:   "n1",
		Type:                corev1.EventTypeNormal,
	}
	checkRows(t, schema.GroupKind{Kind: "Event"}, []rowCase{
		{"classic", classic, []interface{}{"90s", "Warning", "BackOff", "pod/web", "spec.containers{web}", "kubelet, n1",
			"Back-off restarting failed container", "60m", "7", "web.17a"}},
		{"series", series, []interface{}{"20s", "Warning", "FailedScheduling", "pod/web", "", "default-scheduler",
			"0/1 nodes are available", "10m", "4", "sched.1"}},
		{"singleton of the new API, no involved name", single, []interface{}{"60s", "Normal", "Starting", "node", "", "kubelet, n1",
			"", "60s", "1", "node.1"}},
		{"empty", &corev1.Event{}, []interface{}{"<unknown>", "", "", "", "", "", "", "<unknown>", "1", ""}},
	})

	ev := &eventsv1.Event{
		ObjectMeta:          objMeta("web.17b", 5*time.Minute),
		EventTime:           metav1.NewMicroTime(now.Add(-5 * time.Minute)),
		ReportingController: "kubelet",
		ReportingInstance:   "n1",
		Action:              "Pulling",
		Reason:              "Pulling",
		Regarding:           corev1.ObjectReference{Kind: "Pod", Name: "web", FieldPath: "spec.containers{web}"},
		Note:                "Pulling image nginx",
		Type:                corev1.EventTypeNormal,
	}
	checkRows(t, schema.GroupKind{Group: "events.k8s.io", Kind: "Event"}, []rowCase{
		{"events.k8s.io", ev, []interface{}{"5m", "Normal", "Pulling", "pod/web", "spec.containers{web}", "kubelet, n1",
			"Pulling image nginx", "5m", "1", "web.17b"}},
	})
}
