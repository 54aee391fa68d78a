package openapi

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/applyconfigurations"
	smd "sigs.k8s.io/structured-merge-diff/v6/schema"
)

// mergeInfo is what Go struct tags cannot tell about a field: how
// server-side apply merges it (Kubernetes' +listType, +listMapKey,
// +mapType and +structType markers) and its published default.
//
// The markers live only in Kubernetes' source comments, but client-go
// ships the structured-merge-diff schema generated from them (the one its
// apply configurations use). mergeInfo reads that schema through
// client-go's public type converter, so the documents served here merge
// lists exactly as Kubernetes does (Container.ports is keyed by
// containerPort and protocol, not by the patch merge key alone).
type mergeInfo struct {
	schema *smd.Schema
}

// loadMergeInfo obtains client-go's structured-merge-diff schema.
func loadMergeInfo() (*mergeInfo, error) {
	scheme := runtime.NewScheme()
	scheme.AddKnownTypes(corev1.SchemeGroupVersion, &corev1.ConfigMap{})
	probe := &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}}
	tv, err := applyconfigurations.NewTypeConverter(scheme).ObjectToTyped(probe)
	if err != nil {
		return nil, fmt.Errorf("openapi: reading client-go's merge schema: %w", err)
	}
	s := tv.Schema()
	if s == nil || len(s.Types) == 0 {
		return nil, fmt.Errorf("openapi: client-go's merge schema is empty")
	}
	return &mergeInfo{schema: s}, nil
}

// fieldMerge is the merge behaviour of one field of one definition.
type fieldMerge struct {
	// known: the schema has this field.
	known bool
	// list is set for list fields.
	list *smd.List
	// atomicMap: a map (or struct) field replaced as a whole.
	atomicMap bool
	// def is the published default; hasDefault tells nil from absent.
	def        interface{}
	hasDefault bool
}

// field looks up field name of definition owner. A nil receiver knows
// nothing.
func (m *mergeInfo) field(owner, name string) fieldMerge {
	if m == nil {
		return fieldMerge{}
	}
	td, ok := m.schema.FindNamedType(owner)
	if !ok || td.Map == nil {
		return fieldMerge{}
	}
	f, ok := td.Map.FindField(name)
	if !ok {
		return fieldMerge{}
	}
	out := fieldMerge{known: true}
	if f.Default != nil {
		out.def, out.hasDefault = jsonValue(f.Default), true
	}
	ref := f.Type
	if ref.ElementRelationship != nil && *ref.ElementRelationship == smd.Atomic {
		out.atomicMap = true
	}
	if ref.NamedType == nil {
		if ref.Inlined.List != nil {
			out.list = ref.Inlined.List
		}
		if ref.Inlined.Map != nil && ref.Inlined.Map.ElementRelationship == smd.Atomic {
			out.atomicMap = true
		}
	}
	return out
}

// atomicStruct reports whether a definition is replaced as a whole
// (Kubernetes' +structType=atomic / +mapType=atomic on a type).
func (m *mergeInfo) atomicStruct(name string) bool {
	if m == nil {
		return false
	}
	td, ok := m.schema.FindNamedType(name)
	return ok && td.Map != nil && td.Map.ElementRelationship == smd.Atomic
}

// jsonValue converts a value decoded from YAML into the shapes
// encoding/json produces, so that it marshals and compares cleanly.
func jsonValue(v interface{}) interface{} {
	switch t := v.(type) {
	case map[interface{}]interface{}:
		out := make(map[string]interface{}, len(t))
		for k, e := range t {
			out[fmt.Sprint(k)] = jsonValue(e)
		}
		return out
	case map[string]interface{}:
		out := make(map[string]interface{}, len(t))
		for k, e := range t {
			out[k] = jsonValue(e)
		}
		return out
	case []interface{}:
		out := make([]interface{}, len(t))
		for i, e := range t {
			out[i] = jsonValue(e)
		}
		return out
	case int:
		return int64(t)
	case int32:
		return int64(t)
	case uint64:
		return int64(t)
	case float32:
		return float64(t)
	default:
		return v
	}
}
