package apiserver

import (
	"reflect"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
)

// The generic rules for spec and status work on any k8s.io/api type by its
// top-level Spec and Status fields, found by reflection.

// topField returns the named top-level struct field of obj, if it has one.
func topField(obj runtime.Object, name string) (reflect.Value, bool) {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return reflect.Value{}, false
	}
	f := v.Elem().FieldByName(name)
	return f, f.IsValid()
}

// hasSpec says whether obj's type has a spec, which makes it carry a
// generation.
func hasSpec(obj runtime.Object) bool {
	_, ok := topField(obj, "Spec")
	return ok
}

// copyTopField sets dst's field name to a deep copy of src's.
func copyTopField(dst, src runtime.Object, name string) {
	d, ok1 := topField(dst, name)
	s, ok2 := topField(src, name)
	if !ok1 || !ok2 || !d.CanSet() {
		return
	}
	d.Set(deepCopyValue(s))
}

// clearTopField resets dst's field name to its zero value.
func clearTopField(dst runtime.Object, name string) {
	if d, ok := topField(dst, name); ok && d.CanSet() {
		d.Set(reflect.Zero(d.Type()))
	}
}

// specChanged says whether the semantic value of Spec differs.
func specChanged(a, b runtime.Object) bool {
	sa, ok1 := topField(a, "Spec")
	sb, ok2 := topField(b, "Spec")
	if !ok1 || !ok2 {
		return false
	}
	return !equality.Semantic.DeepEqual(sa.Interface(), sb.Interface())
}

// deepCopyValue copies a struct value through its generated DeepCopy,
// which every k8s.io/api type has.
func deepCopyValue(v reflect.Value) reflect.Value {
	ptr := reflect.New(v.Type())
	ptr.Elem().Set(v)
	if m := ptr.MethodByName("DeepCopy"); m.IsValid() {
		return m.Call(nil)[0].Elem()
	}
	return v
}
