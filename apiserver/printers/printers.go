// Package printers holds the server-side table columns that `kubectl get`
// shows for every resource Skiff serves: the column definitions of a kind
// and the cells of one object's row, laid out the way the Kubernetes API
// server lays them out (names, order, types, formats, and priority 1 for the
// extra columns of `-o wide`).
//
// Column names are spelt as the Kubernetes API server spells them ("Name",
// "Nominated Node", "Port(s)"); kubectl upper-cases them when it prints the
// header. The server always returns the wide columns; kubectl hides the
// priority-1 ones unless asked for `-o wide`.
//
// Every function here is pure: the current time is an argument, so AGE and
// the other durations are computed against it.
package printers

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/duration"
)

// Column types and formats as the Table API names them.
const (
	typeString  = "string"
	typeInteger = "integer"
	typeBoolean = "boolean"
	typeDate    = "date"
	formatName  = "name"
)

// Placeholders shown where a value is absent, as kubectl users know them.
const (
	none    = "<none>"
	unknown = "<unknown>"
	pending = "<pending>"
	unset   = "<unset>"
)

// kindPrinter prints one kind: its columns and the cells of one object.
type kindPrinter struct {
	// sample is an empty object of the Go type the kind is printed from.
	sample  runtime.Object
	columns []metav1.TableColumnDefinition
	cells   func(obj runtime.Object, now time.Time) ([]interface{}, error)
}

// typedObject is a pointer to a k8s.io/api struct type.
type typedObject[T any] interface {
	*T
	runtime.Object
}

// printer builds the kindPrinter of Go type T from a cell function that
// cannot fail.
func printer[T any, PT typedObject[T]](columns []metav1.TableColumnDefinition, cells func(PT, time.Time) []interface{}) kindPrinter {
	return printerErr(columns, func(o PT, now time.Time) ([]interface{}, error) { return cells(o, now), nil })
}

// printerErr builds the kindPrinter of Go type T from a cell function.
func printerErr[T any, PT typedObject[T]](columns []metav1.TableColumnDefinition, cells func(PT, time.Time) ([]interface{}, error)) kindPrinter {
	return kindPrinter{
		sample:  PT(new(T)),
		columns: columns,
		cells: func(obj runtime.Object, now time.Time) ([]interface{}, error) {
			o, ok := obj.(PT)
			if !ok {
				return nil, fmt.Errorf("want %T, got %T", PT(nil), obj)
			}
			if o == nil {
				return nil, fmt.Errorf("nil %T", obj)
			}
			return cells(o, now)
		},
	}
}

// printersByKind is every kind with its own columns, gathered from the
// per-group files; kindByType finds the kind of a typed object.
var (
	printersByKind = merge(corePrinters(), podPrinters(), volumePrinters(), eventPrinters(),
		appsPrinters(), batchPrinters(), networkingPrinters(), rbacPrinters(),
		storagePrinters(), clusterPrinters())
	kindByType = typeIndex(printersByKind)
)

func merge(groups ...map[schema.GroupKind]kindPrinter) map[schema.GroupKind]kindPrinter {
	out := map[schema.GroupKind]kindPrinter{}
	for _, g := range groups {
		for gk, p := range g {
			out[gk] = p
		}
	}
	return out
}

func typeIndex(printers map[schema.GroupKind]kindPrinter) map[reflect.Type]schema.GroupKind {
	out := make(map[reflect.Type]schema.GroupKind, len(printers))
	for gk, p := range printers {
		out[reflect.TypeOf(p.sample)] = gk
	}
	return out
}

// Columns returns the table columns for a kind's group and kind.
func Columns(gk schema.GroupKind) []metav1.TableColumnDefinition {
	p, ok := printersByKind[gk]
	if !ok {
		return defaultColumns()
	}
	out := make([]metav1.TableColumnDefinition, len(p.columns))
	copy(out, p.columns)
	return out
}

// Cells returns one row's cells for obj, in Columns order. now is the
// current time (AGE and other durations are computed against it).
func Cells(obj runtime.Object, now time.Time) ([]interface{}, error) {
	if obj == nil {
		return nil, fmt.Errorf("printers: no object to print")
	}
	if gk, ok := kindByType[reflect.TypeOf(obj)]; ok {
		cells, err := printersByKind[gk].cells(obj, now)
		if err != nil {
			return nil, fmt.Errorf("printers: %s: %w", gk, err)
		}
		return cells, nil
	}
	return defaultCells(obj, now)
}

// defaultColumns are the columns of a kind without its own printer.
func defaultColumns() []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{nameColumn(), ageColumn()}
}

// defaultCells prints any object with metadata as name and age.
func defaultCells(obj runtime.Object, now time.Time) ([]interface{}, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, fmt.Errorf("printers: %T has no object metadata: %w", obj, err)
	}
	return []interface{}{m.GetName(), since(m.GetCreationTimestamp(), now)}, nil
}

// Column builders.

func column(name, typ, description string) metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: name, Type: typ, Description: description}
}

func wide(c metav1.TableColumnDefinition) metav1.TableColumnDefinition {
	c.Priority = 1
	return c
}

func nameColumn() metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: "Name", Type: typeString, Format: formatName,
		Description: "The object's name, unique within its namespace (or the cluster, for cluster-wide kinds)."}
}

func ageColumn() metav1.TableColumnDefinition {
	return column("Age", typeString, "How long ago the object was created.")
}

func createdAtColumn() metav1.TableColumnDefinition {
	return column("Created At", typeDate, "When the object was created.")
}

func containersColumn() metav1.TableColumnDefinition {
	return wide(column("Containers", typeString, "The names of the template's containers."))
}

func imagesColumn() metav1.TableColumnDefinition {
	return wide(column("Images", typeString, "The images the template's containers run."))
}

func selectorColumn(what string) metav1.TableColumnDefinition {
	return wide(column("Selector", typeString, "The label query over pods that "+what+"."))
}

// Cell helpers.

// since is the age of t at now in kube's short human form, or <unknown>
// for a zero time.
func since(t metav1.Time, now time.Time) string {
	if t.IsZero() {
		return unknown
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

// sinceMicro is since for a MicroTime.
func sinceMicro(t metav1.MicroTime, now time.Time) string {
	if t.IsZero() {
		return unknown
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

// createdAt is the creation time as the Created At column shows it.
func createdAt(t metav1.Time) string {
	return t.UTC().Format(time.RFC3339)
}

// orNone returns s, or <none> when s is empty.
func orNone(s string) string {
	if s == "" {
		return none
	}
	return s
}

// boolWord prints a boolean pointer as True, False or <unset>.
func boolWord(b *bool) string {
	switch {
	case b == nil:
		return unset
	case *b:
		return "True"
	default:
		return "False"
	}
}

// joinLimited joins up to max items with commas and, when there are more,
// says how many were left out (" + 2 more...").
func joinLimited(items []string, max int) string {
	if len(items) <= max {
		return strings.Join(items, ",")
	}
	return strings.Join(items[:max], ",") + " + " + strconv.Itoa(len(items)-max) + " more..."
}

// selectorString prints a label selector as a selector string; "" when it
// selects nothing or everything, <invalid> when it cannot be parsed.
func selectorString(s *metav1.LabelSelector) string {
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		return "<invalid>"
	}
	return sel.String()
}

func int32Or(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}

func strOr(p *string, def string) string {
	if p == nil {
		return def
	}
	return *p
}
