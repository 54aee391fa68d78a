package validation

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Length limits of an event's fields.
const (
	maxEventReason   = 128
	maxEventAction   = 128
	maxEventInstance = 128
	maxEventNote     = 1024
)

// eventFields are the parts of an event both API versions check, under the
// JSON names of the version at hand.
type eventFields struct {
	meta                *metav1.ObjectMeta
	regarding           corev1.ObjectReference
	eventTime           metav1.MicroTime
	controller          string
	instance            string
	action, reason      string
	note                string
	regardingName       string
	controllerName      string
	noteName            string
	series              *eventSeries
	firstTime, lastTime metav1.Time
	count               int32
	source              corev1.EventSource
	typ                 string
}

type eventSeries struct {
	count    int32
	lastSeen metav1.MicroTime
}

// validateCoreEvent checks a core/v1 Event as leniently as Kubernetes does
// for that API version: old-style events (without eventTime) only need a
// consistent namespace, new-style ones their reporting fields.
func validateCoreEvent(e *corev1.Event) field.ErrorList {
	var errs field.ErrorList
	if e.Name == "" {
		errs = append(errs, field.Required(metadataPath.Child("name"), "name or generateName is required"))
	}
	if e.Namespace == "" {
		errs = append(errs, field.Required(metadataPath.Child("namespace"), ""))
	} else {
		errs = append(errs, dnsSubdomain(e.Namespace, metadataPath.Child("namespace"))...)
	}
	return append(errs, legacyEventRules(eventFields{
		meta: &e.ObjectMeta, regarding: e.InvolvedObject, eventTime: e.EventTime,
		controller: e.ReportingController, instance: e.ReportingInstance, action: e.Action,
		reason: e.Reason, note: e.Message,
		regardingName: "involvedObject", controllerName: "reportingComponent", noteName: "message",
	})...)
}

func legacyEventRules(f eventFields) field.ErrorList {
	var errs field.ErrorList
	nsPath := field.NewPath(f.regardingName, "namespace")
	ns := f.meta.Namespace
	if f.eventTime.IsZero() {
		if f.regarding.Namespace == "" {
			if ns != metav1.NamespaceNone && ns != metav1.NamespaceDefault {
				errs = append(errs, field.Invalid(nsPath, f.regarding.Namespace, "does not match event.namespace"))
			}
		} else if ns != f.regarding.Namespace {
			errs = append(errs, field.Invalid(nsPath, f.regarding.Namespace, "does not match event.namespace"))
		}
		return errs
	}
	if f.regarding.Namespace == "" && ns != metav1.NamespaceDefault && ns != metav1.NamespaceSystem {
		errs = append(errs, field.Invalid(nsPath, f.regarding.Namespace, "does not match event.namespace"))
	}
	cp := field.NewPath(f.controllerName)
	if f.controller == "" {
		errs = append(errs, field.Required(cp, ""))
	} else {
		errs = append(errs, qualifiedName(f.controller, cp)...)
	}
	limit := func(v string, name string, max int, required bool) {
		p := field.NewPath(name)
		if required && v == "" {
			errs = append(errs, field.Required(p, ""))
		}
		if len(v) > max {
			errs = append(errs, field.Invalid(p, "", fmt.Sprintf("can have at most %v characters", max)))
		}
	}
	limit(f.instance, "reportingInstance", maxEventInstance, true)
	limit(f.action, "action", maxEventAction, true)
	limit(f.reason, "reason", maxEventReason, true)
	limit(f.note, f.noteName, maxEventNote, false)
	return errs
}

// validateEventsEvent checks an events.k8s.io/v1 Event, which Kubernetes
// holds to the strict rules of that API.
func validateEventsEvent(e *eventsv1.Event) field.ErrorList {
	errs := validateMeta(&e.ObjectMeta, true, nameIsSubdomain)
	return append(errs, strictEventRules(e)...)
}

func eventsFields(e *eventsv1.Event) eventFields {
	f := eventFields{
		meta: &e.ObjectMeta, regarding: e.Regarding, eventTime: e.EventTime,
		controller: e.ReportingController, instance: e.ReportingInstance, action: e.Action,
		reason: e.Reason, note: e.Note,
		regardingName: "regarding", controllerName: "reportingController", noteName: "note",
		firstTime: e.DeprecatedFirstTimestamp, lastTime: e.DeprecatedLastTimestamp,
		count: e.DeprecatedCount, source: e.DeprecatedSource, typ: e.Type,
	}
	if e.Series != nil {
		f.series = &eventSeries{count: e.Series.Count, lastSeen: e.Series.LastObservedTime}
	}
	return f
}

func strictEventRules(e *eventsv1.Event) field.ErrorList {
	f := eventsFields(e)
	errs := legacyEventRules(f)
	if f.series != nil {
		if f.series.count < 2 {
			errs = append(errs, field.Invalid(field.NewPath("series", "count"), f.series.count, "should be at least 2"))
		}
		if f.series.lastSeen.IsZero() {
			errs = append(errs, field.Required(field.NewPath("series", "lastObservedTime"), ""))
		}
	}
	if f.eventTime.IsZero() {
		errs = append(errs, field.Required(field.NewPath("eventTime"), ""))
	}
	if f.typ != corev1.EventTypeNormal && f.typ != corev1.EventTypeWarning {
		errs = append(errs, field.Invalid(field.NewPath("type"), f.typ, fmt.Sprintf("has invalid value: %v", f.typ)))
	}
	if !f.firstTime.IsZero() {
		errs = append(errs, field.Invalid(field.NewPath("deprecatedFirstTimestamp"), "", "needs to be unset"))
	}
	if !f.lastTime.IsZero() {
		errs = append(errs, field.Invalid(field.NewPath("deprecatedLastTimestamp"), "", "needs to be unset"))
	}
	if f.count != 0 {
		errs = append(errs, field.Invalid(field.NewPath("deprecatedCount"), "", "needs to be unset"))
	}
	if f.source.Component != "" || f.source.Host != "" {
		errs = append(errs, field.Invalid(field.NewPath("deprecatedSource"), "", "needs to be unset"))
	}
	return errs
}

// validateEventsEventUpdate: an events.k8s.io/v1 Event may only change its
// series and annotations-level metadata.
func validateEventsEventUpdate(e, old *eventsv1.Event) field.ErrorList {
	errs := validateMetaUpdate(&e.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, strictEventRules(e)...)
	for _, f := range []struct {
		name     string
		cur, was any
	}{
		{"regarding", e.Regarding, old.Regarding}, {"reason", e.Reason, old.Reason}, {"note", e.Note, old.Note},
		{"type", e.Type, old.Type}, {"eventTime", e.EventTime, old.EventTime}, {"action", e.Action, old.Action},
		{"related", e.Related, old.Related}, {"reportingController", e.ReportingController, old.ReportingController},
		{"reportingInstance", e.ReportingInstance, old.ReportingInstance},
	} {
		errs = append(errs, immutable(f.cur, f.was, field.NewPath(f.name))...)
	}
	return errs
}
