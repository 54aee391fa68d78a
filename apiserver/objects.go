package apiserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-sh/skiff/apiserver/registry"
	"github.com/skiff-sh/skiff/storage"
)

// Transformer encrypts values at rest. The etcd key is the additional data,
// so a value cannot be moved to another key. Decrypt reports stale when the
// value should be rewritten with the current key.
type Transformer interface {
	Encrypt(plain, additionalData []byte) ([]byte, error)
	Decrypt(stored, additionalData []byte) (plain []byte, stale bool, err error)
}

// objects stores typed API objects in the key-value store. It owns the key
// layout, the encoding (protobuf, as kube-apiserver stores them), and
// encryption at rest of the resources that need it. resourceVersion is the
// store's revision of the key.
//
// Keys: /registry/GROUP/RESOURCE/NAMESPACE/NAME, or
// /registry/GROUP/RESOURCE/NAME for cluster-scoped resources; the core
// group is spelled "core".
type objects struct {
	kv        storage.Interface
	encrypter Transformer // nil: nothing encrypted
}

// encrypted lists the resources whose values are encrypted at rest.
func encrypted(r *registry.Resource) bool {
	return r.Group == "" && r.Resource == "secrets"
}

// storedAs is the resource whose keys and type hold r's objects.
func storedAs(r *registry.Resource) *registry.Resource {
	if r.StorageResource != nil {
		return r.StorageResource
	}
	return r
}

func resourcePrefix(r *registry.Resource) string {
	r = storedAs(r)
	g := r.Group
	if g == "" {
		g = "core"
	}
	return "/registry/" + g + "/" + r.Resource + "/"
}

// prefix is where a list of r in namespace ns (all namespaces when empty)
// starts.
func prefix(r *registry.Resource, ns string) string {
	p := resourcePrefix(r)
	if ns != "" && r.Namespaced {
		p += ns + "/"
	}
	return p
}

func objectKey(r *registry.Resource, ns, name string) string {
	if r.Namespaced {
		return resourcePrefix(r) + ns + "/" + name
	}
	return resourcePrefix(r) + name
}

// encode turns obj into the stored bytes for key.
func (o *objects) encode(r *registry.Resource, key string, obj runtime.Object) ([]byte, error) {
	if r.StorageResource != nil {
		conv, err := r.ToStorage(obj)
		if err != nil {
			return nil, err
		}
		obj = conv
	}
	sr := storedAs(r)
	obj.GetObjectKind().SetGroupVersionKind(sr.GroupVersionKind())
	var buf bytes.Buffer
	if err := protoCodec.Encode(obj, &buf); err != nil {
		return nil, fmt.Errorf("encoding %s: %w", key, err)
	}
	if encrypted(sr) && o.encrypter != nil {
		return o.encrypter.Encrypt(buf.Bytes(), []byte(key))
	}
	return buf.Bytes(), nil
}

// decode turns a stored KV into r's typed object with its resourceVersion.
func (o *objects) decode(r *registry.Resource, kv storage.KV) (runtime.Object, error) {
	obj, _, err := o.decodeState(r, kv)
	return obj, err
}

// decodeState is decode that also says whether the stored value is stale:
// encrypted with an older key, or not encrypted where it should be.
func (o *objects) decodeState(r *registry.Resource, kv storage.KV) (runtime.Object, bool, error) {
	sr := storedAs(r)
	data := kv.Value
	stale := false
	if encrypted(sr) && o.encrypter != nil {
		plain, st, err := o.encrypter.Decrypt(data, []byte(kv.Key))
		if err != nil {
			return nil, false, fmt.Errorf("decrypting %s: %w", kv.Key, err)
		}
		data, stale = plain, st
	}
	obj := sr.New()
	if _, _, err := protoCodec.Decode(data, nil, obj); err != nil {
		return nil, false, fmt.Errorf("decoding %s: %w", kv.Key, err)
	}
	if r.StorageResource != nil {
		conv, err := r.FromStorage(obj)
		if err != nil {
			return nil, false, err
		}
		obj = conv
	}
	obj.GetObjectKind().SetGroupVersionKind(r.GroupVersionKind())
	if err := setRV(obj, kv.Revision); err != nil {
		return nil, false, err
	}
	return obj, stale, nil
}

func setRV(obj runtime.Object, rev int64) error {
	m, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	m.SetResourceVersion(strconv.FormatInt(rev, 10))
	return nil
}

// get reads one object.
func (o *objects) get(ctx context.Context, r *registry.Resource, ns, name string) (runtime.Object, error) {
	kv, err := o.kv.Get(ctx, objectKey(r, ns, name))
	if err != nil {
		return nil, o.apiError(r, name, err)
	}
	return o.decode(r, kv)
}

// getState reads one object and says whether its stored value is stale.
func (o *objects) getState(ctx context.Context, r *registry.Resource, ns, name string) (runtime.Object, bool, error) {
	kv, err := o.kv.Get(ctx, objectKey(r, ns, name))
	if err != nil {
		return nil, false, o.apiError(r, name, err)
	}
	return o.decodeState(r, kv)
}

// create stores a new object and returns it with its resourceVersion.
func (o *objects) create(ctx context.Context, r *registry.Resource, obj runtime.Object) (runtime.Object, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	key := objectKey(r, m.GetNamespace(), m.GetName())
	m.SetResourceVersion("")
	data, err := o.encode(r, key, obj)
	if err != nil {
		return nil, err
	}
	rev, err := o.kv.Create(ctx, key, data)
	if err != nil {
		return nil, o.apiError(r, m.GetName(), err)
	}
	obj.GetObjectKind().SetGroupVersionKind(r.GroupVersionKind())
	return obj, setRV(obj, rev)
}

// update writes obj over the stored object of revision expected.
func (o *objects) update(ctx context.Context, r *registry.Resource, obj runtime.Object, expected int64) (runtime.Object, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	key := objectKey(r, m.GetNamespace(), m.GetName())
	m.SetResourceVersion("")
	data, err := o.encode(r, key, obj)
	if err != nil {
		return nil, err
	}
	rev, err := o.kv.Update(ctx, key, data, expected)
	if err != nil {
		return nil, o.apiError(r, m.GetName(), err)
	}
	obj.GetObjectKind().SetGroupVersionKind(r.GroupVersionKind())
	return obj, setRV(obj, rev)
}

// remove deletes the stored object if it is still at revision expected (0:
// any), returning its last state.
func (o *objects) remove(ctx context.Context, r *registry.Resource, ns, name string, expected int64) (runtime.Object, error) {
	kv, _, err := o.kv.Delete(ctx, objectKey(r, ns, name), expected)
	if err != nil {
		return nil, o.apiError(r, name, err)
	}
	return o.decode(r, kv)
}

// apiError maps store errors to the API's Status errors.
func (o *objects) apiError(r *registry.Resource, name string, err error) error {
	gr := r.GroupResource()
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return apierrors.NewNotFound(gr, name)
	case errors.Is(err, storage.ErrExists):
		return apierrors.NewAlreadyExists(gr, name)
	case errors.Is(err, storage.ErrConflict):
		return apierrors.NewConflict(gr, name, errors.New(conflictMessage))
	case errors.Is(err, storage.ErrCompacted):
		return apierrors.NewResourceExpired("The resourceVersion for the provided list is too old.")
	case errors.Is(err, storage.ErrFutureRevision):
		return apierrors.NewTimeoutError("Too large resource version", 1)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return apierrors.NewTimeoutError(err.Error(), 1)
	}
	return apierrors.NewInternalError(fmt.Errorf("%s %q: %w", gr, name, err))
}

const conflictMessage = "the object has been modified; please apply your changes to the latest version and try again"

// revisionOf reads an object's resourceVersion as a store revision; "" is 0.
func revisionOf(obj runtime.Object) (int64, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return 0, err
	}
	return parseRV(m.GetResourceVersion())
}

func parseRV(rv string) (int64, error) {
	if rv == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(rv, 10, 64)
	if err != nil || n < 0 {
		return 0, apierrors.NewBadRequest(fmt.Sprintf("invalid resource version %q", rv))
	}
	return n, nil
}
