package printers

import (
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-sh/skiff/apiserver/registry"
)

// eventColumns are the columns of core and events.k8s.io events alike. As
// in Kubernetes, events lead with when they were last seen; the name is a
// wide column at the end.
func eventColumns() []metav1.TableColumnDefinition {
	name := nameColumn()
	name.Priority = 1
	return []metav1.TableColumnDefinition{
		column("Last Seen", typeString, "How long ago the event was last observed."),
		column("Type", typeString, "Normal or Warning."),
		column("Reason", typeString, "A short machine-readable word for what happened."),
		column("Object", typeString, "The kind/name of the object the event is about."),
		wide(column("Subobject", typeString, "The part of the object the event is about, such as a container.")),
		wide(column("Source", typeString, "The component (and host) that reported the event.")),
		column("Message", typeString, "What happened, for humans."),
		wide(column("First Seen", typeString, "How long ago the event was first observed.")),
		wide(column("Count", typeString, "How many times the event has been observed.")),
		name,
	}
}

func eventPrinters() map[schema.GroupKind]kindPrinter {
	return map[schema.GroupKind]kindPrinter{
		{Kind: "Event"}: printer(eventColumns(), coreEventCells),
		{Group: "events.k8s.io", Kind: "Event"}: printer(eventColumns(),
			func(e *eventsv1.Event, now time.Time) []interface{} {
				return coreEventCells(registry.CoreEvent(e), now)
			}),
	}
}

func coreEventCells(e *corev1.Event, now time.Time) []interface{} {
	first := since(e.FirstTimestamp, now)
	if e.FirstTimestamp.IsZero() {
		first = sinceMicro(e.EventTime, now)
	}
	last := since(e.LastTimestamp, now)
	if e.LastTimestamp.IsZero() {
		last = first
	}
	count := e.Count
	if e.Series != nil {
		last = sinceMicro(e.Series.LastObservedTime, now)
		count = e.Series.Count
	} else if count == 0 {
		// Events of the newer API that happened once carry no count.
		count = 1
	}

	object := strings.ToLower(e.InvolvedObject.Kind)
	if e.InvolvedObject.Name != "" {
		object += "/" + e.InvolvedObject.Name
	}

	component := e.Source.Component
	if component == "" {
		component = e.ReportingController
	}
	host := e.Source.Host
	if host == "" {
		host = e.ReportingInstance
	}
	source := component
	if host != "" {
		source += ", " + host
	}

	return []interface{}{
		last,
		e.Type,
		e.Reason,
		object,
		e.InvolvedObject.FieldPath,
		source,
		strings.TrimSpace(e.Message),
		first,
		strconv.Itoa(int(count)),
		e.Name,
	}
}
