package apiserver

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-sh/skiff/apiserver/registry"
	"github.com/skiff-sh/skiff/storage"
)

// storePageSize is how many keys one read from the store fetches while
// walking a listing; it bounds the memory a large LIST holds at once.
const storePageSize = 500

// selection is what a list or watch keeps: objects matching both selectors.
type selection struct {
	labels labels.Selector
	fields fields.Selector
}

func (sel selection) everything() bool { return sel.labels.Empty() && sel.fields.Empty() }

// parseSelection reads labelSelector and fieldSelector, refusing field
// labels the resource does not support.
func parseSelection(res *registry.Resource, q map[string][]string) (selection, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	ls, err := labels.Parse(get("labelSelector"))
	if err != nil {
		return selection{}, apierrors.NewBadRequest(fmt.Sprintf("unable to parse requirement: %v", err))
	}
	fs, err := fields.ParseSelector(get("fieldSelector"))
	if err != nil {
		return selection{}, apierrors.NewBadRequest(fmt.Sprintf("invalid field selector: %v", err))
	}
	supported := map[string]bool{"metadata.name": true, "metadata.namespace": true}
	if res.Fields != nil {
		for k := range res.Fields(res.New()) {
			supported[k] = true
		}
	}
	for _, r := range fs.Requirements() {
		if !supported[r.Field] {
			return selection{}, apierrors.NewBadRequest(fmt.Sprintf("field label not supported: %s", r.Field))
		}
	}
	return selection{labels: ls, fields: fs}, nil
}

// matches says whether obj is selected.
func (sel selection) matches(res *registry.Resource, obj runtime.Object) bool {
	if sel.everything() {
		return true
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return false
	}
	if !sel.labels.Matches(labels.Set(m.GetLabels())) {
		return false
	}
	if sel.fields.Empty() {
		return true
	}
	set := fields.Set{"metadata.name": m.GetName()}
	if res.Namespaced {
		set["metadata.namespace"] = m.GetNamespace()
	}
	if res.Fields != nil {
		for k, v := range res.Fields(obj) {
			set[k] = v
		}
	}
	return sel.fields.Matches(set)
}

// continueToken is the opaque list continuation, in kube's shape.
type continueToken struct {
	APIVersion string `json:"v"`
	Revision   int64  `json:"rv"`
	Start      string `json:"start"`
}

func encodeContinue(rev int64, start string) string {
	b, _ := json.Marshal(continueToken{APIVersion: "meta.k8s.io/v1", Revision: rev, Start: start})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeContinue(s string) (continueToken, error) {
	var tok continueToken
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return tok, apierrors.NewBadRequest(fmt.Sprintf("continue key is not valid: %v", err))
	}
	if err := json.Unmarshal(b, &tok); err != nil || tok.APIVersion != "meta.k8s.io/v1" || tok.Revision <= 0 {
		return tok, apierrors.NewBadRequest("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
	}
	if strings.Contains(tok.Start, "/../") || strings.HasPrefix(tok.Start, "../") {
		return tok, apierrors.NewBadRequest("continue key is not valid: path traversal")
	}
	return tok, nil
}

// listRequest is a parsed list query.
type listRequest struct {
	ns       string
	sel      selection
	limit    int64
	cont     *continueToken
	revision int64 // 0: the current state
	minRev   int64 // resourceVersion with NotOlderThan semantics
}

func parseListRequest(res *registry.Resource, ns string, r *http.Request) (listRequest, error) {
	q := r.URL.Query()
	lr := listRequest{ns: ns}
	sel, err := parseSelection(res, q)
	if err != nil {
		return lr, err
	}
	lr.sel = sel
	if l := q.Get("limit"); l != "" {
		n, err := strconv.ParseInt(l, 10, 64)
		if err != nil || n < 0 {
			return lr, apierrors.NewBadRequest(fmt.Sprintf("invalid limit %q", l))
		}
		lr.limit = n
	}
	rv := q.Get("resourceVersion")
	match := q.Get("resourceVersionMatch")
	if c := q.Get("continue"); c != "" {
		if rv != "" && rv != "0" {
			return lr, apierrors.NewBadRequest("specifying resource version is not allowed when using continue")
		}
		tok, err := decodeContinue(c)
		if err != nil {
			return lr, err
		}
		lr.cont = &tok
		lr.revision = tok.Revision
		return lr, nil
	}
	n, err := parseRV(rv)
	if err != nil {
		return lr, err
	}
	switch match {
	case "", string(metav1.ResourceVersionMatchNotOlderThan):
		lr.minRev = n
	case string(metav1.ResourceVersionMatchExact):
		if n == 0 {
			return lr, apierrors.NewBadRequest("resourceVersionMatch=Exact requires a non-zero resourceVersion")
		}
		lr.revision = n
	default:
		return lr, apierrors.NewBadRequest(fmt.Sprintf("unsupported resourceVersionMatch %q", match))
	}
	return lr, nil
}

// listResult is the metadata of a listing once walked.
type listResult struct {
	revision  int64
	cont      string
	remaining *int64
}

// walkList pages through the store at one revision, calling visit for each
// selected object, until the limit is reached or the keys run out.
func (s *Server) walkList(ctx context.Context, res *registry.Resource, lr listRequest, visit func(runtime.Object) error) (listResult, error) {
	pfx := prefix(res, lr.ns)
	start := pfx
	if lr.cont != nil {
		start = pfx + lr.cont.Start
	}
	rev := lr.revision
	var out listResult
	var seen int64
	for {
		pageSize := int64(storePageSize)
		if lr.limit > 0 && lr.sel.everything() {
			pageSize = min(pageSize, lr.limit-seen)
		}
		page, err := s.cfg.Store.List(ctx, pfx, storage.ListOptions{StartKey: start, Limit: pageSize, Revision: rev})
		if err != nil {
			if lr.cont != nil && apierrors.IsResourceExpired(s.objects.apiError(res, "", err)) {
				return out, apierrors.NewResourceExpired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.")
			}
			return out, s.objects.apiError(res, "", err)
		}
		rev = page.Revision
		out.revision = rev
		if lr.minRev > 0 && rev < lr.minRev {
			return out, apierrors.NewTimeoutError(fmt.Sprintf("Too large resource version: %d, current: %d", lr.minRev, rev), 1)
		}
		for i, kv := range page.KVs {
			obj, err := s.objects.decode(res, kv)
			if err != nil {
				return out, apierrors.NewInternalError(err)
			}
			if lr.sel.matches(res, obj) {
				if err := visit(obj); err != nil {
					return out, err
				}
				seen++
			}
			if lr.limit > 0 && seen >= lr.limit {
				last := i == len(page.KVs)-1
				if !last || page.More {
					out.cont = encodeContinue(rev, strings.TrimPrefix(kv.Key, pfx)+"\x00")
					if lr.sel.everything() {
						remaining := int64(len(page.KVs)-1-i) + page.Remaining
						out.remaining = &remaining
					}
				}
				return out, nil
			}
		}
		if !page.More || len(page.KVs) == 0 {
			return out, nil
		}
		start = page.KVs[len(page.KVs)-1].Key + "\x00"
	}
}

// listAll returns every object of res in ns (all namespaces when empty).
func (s *Server) listAll(ctx context.Context, res *registry.Resource, ns string) ([]runtime.Object, error) {
	var out []runtime.Object
	_, err := s.walkList(ctx, res, listRequest{ns: ns, sel: selection{labels: labels.Everything(), fields: fields.Everything()}}, func(o runtime.Object) error {
		out = append(out, o)
		return nil
	})
	return out, err
}

// serveList answers a LIST. Plain JSON lists are streamed item by item, so
// a large list never sits in memory whole; other forms are built first.
func (s *Server) serveList(rc *reqContext) {
	lr, err := parseListRequest(rc.res, rc.info.Namespace, rc.r)
	if err != nil {
		rc.fail(err)
		return
	}
	if rc.out.media == mediaJSON && rc.out.as == "" {
		s.streamJSONList(rc, lr)
		return
	}
	var items []runtime.Object
	res, err := s.walkList(rc.ctx(), rc.res, lr, func(o runtime.Object) error {
		items = append(items, o)
		return nil
	})
	if err != nil {
		rc.fail(err)
		return
	}
	lm := metav1.ListMeta{ResourceVersion: strconv.FormatInt(res.revision, 10), Continue: res.cont, RemainingItemCount: res.remaining}
	switch rc.out.as {
	case "Table":
		rc.flushWarnings()
		writeObject(rc.w, rc.out, http.StatusOK, s.table(rc, items, lm))
		return
	case "PartialObjectMetadataList", "PartialObjectMetadata":
		pl := &metav1.PartialObjectMetadataList{ListMeta: lm}
		for _, o := range items {
			pl.Items = append(pl.Items, *partialMetadata(o))
		}
		pl.SetGroupVersionKind(metav1.SchemeGroupVersion.WithKind("PartialObjectMetadataList"))
		rc.out.as = "PartialObjectMetadataList"
		writeObject(rc.w, rc.out, http.StatusOK, pl)
		return
	}
	list := rc.res.NewList()
	if err := meta.SetList(list, items); err != nil {
		rc.fail(apierrors.NewInternalError(err))
		return
	}
	lma, _ := meta.ListAccessor(list)
	lma.SetResourceVersion(lm.ResourceVersion)
	lma.SetContinue(lm.Continue)
	lma.SetRemainingItemCount(lm.RemainingItemCount)
	list.GetObjectKind().SetGroupVersionKind(rc.res.GroupVersion().WithKind(rc.res.ListKind))
	for _, o := range items {
		o.GetObjectKind().SetGroupVersionKind(rc.res.GroupVersionKind())
	}
	rc.flushWarnings()
	writeObject(rc.w, rc.out, http.StatusOK, list)
}

// streamJSONList writes {"kind":...,"apiVersion":...,"items":[...],
// "metadata":{...}}: items first, as they are read, and the list metadata
// last, once the walk knows it. JSON does not order fields, so clients
// decode it as any list.
func (s *Server) streamJSONList(rc *reqContext, lr listRequest) {
	w := rc.w
	started := false
	var buf bytes.Buffer
	flushEvery := 64
	n := 0
	begin := func() {
		rc.flushWarnings()
		w.Header().Set("Content-Type", mediaJSON)
		w.WriteHeader(http.StatusOK)
		fmt.Fprintf(&buf, `{"kind":%q,"apiVersion":%q,"items":[`, rc.res.ListKind, rc.res.GroupVersion().String())
		started = true
	}
	res, err := s.walkList(rc.ctx(), rc.res, lr, func(o runtime.Object) error {
		if !started {
			begin()
		}
		if n > 0 {
			buf.WriteByte(',')
		}
		o.GetObjectKind().SetGroupVersionKind(rc.res.GroupVersionKind())
		if err := jsonCodec.Encode(o, &buf); err != nil {
			return err
		}
		n++
		if n%flushEvery == 0 {
			if _, err := w.Write(buf.Bytes()); err != nil {
				return err
			}
			buf.Reset()
		}
		return nil
	})
	if err != nil {
		if !started {
			rc.fail(err)
			return
		}
		// The status line is gone; cut the body short so the client sees a
		// broken response rather than a partial list.
		s.log.Warn("list failed while streaming", "resource", rc.res.Resource, "err", err)
		panic(http.ErrAbortHandler)
	}
	if !started {
		begin()
	}
	lm := metav1.ListMeta{ResourceVersion: strconv.FormatInt(res.revision, 10), Continue: res.cont, RemainingItemCount: res.remaining}
	mb, _ := json.Marshal(lm)
	buf.WriteString(`],"metadata":`)
	buf.Write(mb)
	buf.WriteString("}\n")
	_, _ = w.Write(buf.Bytes())
}

// partialMetadata is obj's metadata as a PartialObjectMetadata.
func partialMetadata(obj runtime.Object) *metav1.PartialObjectMetadata {
	p := &metav1.PartialObjectMetadata{}
	if oma, ok := obj.(metav1.ObjectMetaAccessor); ok {
		if om, ok := oma.GetObjectMeta().(*metav1.ObjectMeta); ok {
			p.ObjectMeta = *om.DeepCopy()
		}
	}
	p.SetGroupVersionKind(metav1.SchemeGroupVersion.WithKind("PartialObjectMetadata"))
	return p
}
