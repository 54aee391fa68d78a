package apiserver

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiff-sh/skiff/storage"
)

// initialEventsEnd is the annotation on the bookmark that ends the initial
// events of a watch with sendInitialEvents=true.
const initialEventsEnd = "k8s.io/initial-events-end"

// serveWatch streams changes as WatchEvents.
//
//	resourceVersion ""/"0"    ADDED for every current object, then changes
//	resourceVersion N         changes after revision N (410 if compacted)
//	sendInitialEvents=true    current objects, a bookmark marking their
//	                          end, then changes
func (s *Server) serveWatch(rc *reqContext) {
	q := rc.r.URL.Query()
	sel, err := parseSelection(rc.res, q)
	if err != nil {
		rc.fail(err)
		return
	}
	rv, err := parseRV(q.Get("resourceVersion"))
	if err != nil {
		rc.fail(err)
		return
	}
	bookmarks := q.Get("allowWatchBookmarks") == "true"
	sendInitial := q.Get("sendInitialEvents")
	if sendInitial == "true" && (q.Get("resourceVersionMatch") != string(metav1.ResourceVersionMatchNotOlderThan) || !bookmarks) {
		rc.fail(apierrors.NewBadRequest("sendInitialEvents=true requires resourceVersionMatch=NotOlderThan and allowWatchBookmarks=true"))
		return
	}
	timeout := time.Duration(30+rand.IntN(30)) * time.Minute
	if t := q.Get("timeoutSeconds"); t != "" {
		n, err := strconv.ParseInt(t, 10, 64)
		if err != nil || n < 0 {
			rc.fail(apierrors.NewBadRequest(fmt.Sprintf("invalid timeoutSeconds %q", t)))
			return
		}
		timeout = time.Duration(n) * time.Second
	}
	ctx, cancel := context.WithTimeout(rc.ctx(), timeout)
	defer cancel()

	enc, err := newWatchEncoder(rc)
	if err != nil {
		rc.fail(err)
		return
	}
	// Initial state, when asked for, at one revision; the watch picks up
	// right after it.
	initial := sendInitial == "true" || (sendInitial == "" && rv == 0)
	var initialObjs []runtime.Object
	from := rv
	if initial {
		lr := listRequest{ns: rc.info.Namespace, sel: sel, minRev: rv}
		res, err := s.walkList(ctx, rc.res, lr, func(o runtime.Object) error {
			initialObjs = append(initialObjs, o)
			return nil
		})
		if err != nil {
			rc.fail(err)
			return
		}
		from = res.revision
	}
	events := s.cfg.Store.Watch(ctx, prefix(rc.res, rc.info.Namespace), from, bookmarks)

	s.metrics.watchStarted(rc.res.Resource)
	defer s.metrics.watchEnded(rc.res.Resource)
	rc.flushWarnings()
	rc.w.Header().Set("Content-Type", enc.contentType)
	rc.w.Header().Set("Transfer-Encoding", "chunked")
	rc.w.WriteHeader(http.StatusOK)
	flusher, _ := rc.w.(http.Flusher)
	flush := func() {
		if flusher != nil {
			flusher.Flush()
		}
	}
	flush()

	for _, o := range initialObjs {
		if err := enc.write(watch.Added, o); err != nil {
			return
		}
	}
	if sendInitial == "true" {
		if err := enc.write(watch.Bookmark, s.bookmark(rc, from, true)); err != nil {
			return
		}
	}
	flush()
	initialObjs = nil

	for {
		var ev storage.Event
		var ok bool
		select {
		case <-ctx.Done():
			return
		case ev, ok = <-events:
			if !ok {
				return
			}
		}
		if ev.Err != nil {
			st := statusFor(s.watchError(ev.Err, from))
			st.SetGroupVersionKind(statusKind)
			_ = enc.write(watch.Error, st)
			flush()
			return
		}
		if ev.Progress {
			if bookmarks {
				if err := enc.write(watch.Bookmark, s.bookmark(rc, ev.KV.Revision, false)); err != nil {
					return
				}
				flush()
			}
			continue
		}
		typ, obj, cv, err := s.translate(rc, sel, ev)
		if err != nil {
			s.log.Warn("watch: dropping undecodable event", "key", ev.KV.Key, "err", err)
			continue
		}
		if obj == nil {
			continue
		}
		if err := enc.writeShared(typ, obj, cv); err != nil {
			return
		}
		if len(events) == 0 {
			flush()
		}
	}
}

// watchError maps a store watch failure to its API error.
func (s *Server) watchError(err error, from int64) error {
	if errors.Is(err, storage.ErrCompacted) {
		return apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d", from))
	}
	return apierrors.NewInternalError(err)
}

// translate turns a store event into the watch event a selecting client
// sees: an object that stops matching is DELETED for it, one that starts
// matching is ADDED. A nil object means the client sees nothing. Objects
// come from the shared event cache and must not be changed; the returned
// cachedValue (nil for an object made for this client alone) lets the
// encoder reuse their encodings.
func (s *Server) translate(rc *reqContext, sel selection, ev storage.Event) (watch.EventType, runtime.Object, *cachedValue, error) {
	res := rc.res
	switch ev.Type {
	case storage.Deleted:
		if ev.Prev == nil {
			return "", nil, nil, nil
		}
		prev := *ev.Prev
		prev.Revision = ev.KV.Revision
		obj, cv, err := s.events.decode(s.objects, res, prev)
		if err != nil || !sel.matches(res, obj) {
			return "", nil, nil, err
		}
		return watch.Deleted, obj, cv, nil
	case storage.Added:
		obj, cv, err := s.events.decode(s.objects, res, ev.KV)
		if err != nil || !sel.matches(res, obj) {
			return "", nil, nil, err
		}
		return watch.Added, obj, cv, nil
	default:
		obj, cv, err := s.events.decode(s.objects, res, ev.KV)
		if err != nil {
			return "", nil, nil, err
		}
		now := sel.matches(res, obj)
		if sel.everything() || ev.Prev == nil {
			if now {
				return watch.Modified, obj, cv, nil
			}
			return "", nil, nil, nil
		}
		old, _, err := s.events.decode(s.objects, res, *ev.Prev)
		if err != nil {
			return "", nil, nil, err
		}
		was := sel.matches(res, old)
		switch {
		case was && now:
			return watch.Modified, obj, cv, nil
		case was && !now:
			// The client last saw old; it leaves the selection at this
			// event's revision, as kube reports it.
			old = old.DeepCopyObject()
			_ = setRV(old, ev.KV.Revision)
			return watch.Deleted, old, nil, nil
		case !was && now:
			return watch.Added, obj, cv, nil
		}
		return "", nil, nil, nil
	}
}

// bookmark is an empty object of the watched kind carrying only a
// resourceVersion.
func (s *Server) bookmark(rc *reqContext, rev int64, initialEnd bool) runtime.Object {
	obj := rc.res.New()
	m, _ := meta.Accessor(obj)
	m.SetResourceVersion(strconv.FormatInt(rev, 10))
	if initialEnd {
		m.SetAnnotations(map[string]string{initialEventsEnd: "true"})
	}
	obj.GetObjectKind().SetGroupVersionKind(rc.res.GroupVersionKind())
	return obj
}

// watchEncoder writes watch events in the negotiated form: newline
// separated JSON, or length-prefixed protobuf frames.
type watchEncoder struct {
	rc          *reqContext
	s           *Server
	contentType string
	tableCols   bool // column definitions already sent
}

func newWatchEncoder(rc *reqContext) (*watchEncoder, error) {
	e := &watchEncoder{rc: rc}
	switch rc.out.media {
	case mediaProtobuf:
		e.contentType = mediaProtobuf + ";stream=watch"
		if rc.out.as != "" {
			e.contentType = fmt.Sprintf("%s;as=%s;v=v1;g=meta.k8s.io;stream=watch", mediaProtobuf, rc.out.as)
		}
	case mediaYAML:
		return nil, notAcceptable("watch is served as JSON or protobuf")
	default:
		e.contentType = mediaJSON
		if rc.out.as != "" {
			e.contentType = fmt.Sprintf("%s;as=%s;v=v1;g=meta.k8s.io", mediaJSON, rc.out.as)
		}
	}
	return e, nil
}

// writeShared writes an event whose object may come from the event cache:
// plain object encodings are then taken from (and left in) the cache.
func (e *watchEncoder) writeShared(typ watch.EventType, obj runtime.Object, cv *cachedValue) error {
	if cv == nil || e.rc.out.as != "" {
		return e.write(typ, obj)
	}
	raw, err := cv.encoded(e.rc.out.media)
	if err != nil {
		return err
	}
	return e.writeRaw(typ, raw)
}

// write encodes obj, as the client asked, and writes it as one event.
func (e *watchEncoder) write(typ watch.EventType, obj runtime.Object) error {
	if typ != watch.Error {
		switch e.rc.out.as {
		case "Table":
			if typ != watch.Bookmark {
				t := e.rc.srv.table(e.rc, []runtime.Object{obj}, metav1.ListMeta{})
				if e.tableCols {
					t.ColumnDefinitions = nil
				}
				e.tableCols = true
				obj = t
			} else {
				obj = &metav1.Table{ListMeta: metav1.ListMeta{ResourceVersion: mustAccessor(obj).GetResourceVersion()}}
				obj.GetObjectKind().SetGroupVersionKind(metav1.SchemeGroupVersion.WithKind("Table"))
			}
		case "PartialObjectMetadata", "PartialObjectMetadataList":
			obj = partialMetadata(obj)
		}
	}
	if err := setKind(obj); err != nil {
		return err
	}
	var raw bytes.Buffer
	var err error
	if e.rc.out.media == mediaProtobuf {
		err = protoCodec.Encode(obj, &raw)
	} else {
		err = jsonCodec.Encode(obj, &raw)
	}
	if err != nil {
		return err
	}
	return e.writeRaw(typ, bytes.TrimRight(raw.Bytes(), "\n"))
}

// writeRaw frames an encoded object as a watch event: a JSON line, or a
// length-prefixed protobuf WatchEvent.
func (e *watchEncoder) writeRaw(typ watch.EventType, raw []byte) error {
	var buf bytes.Buffer
	if e.rc.out.media == mediaProtobuf {
		ev := &metav1.WatchEvent{Type: string(typ), Object: runtime.RawExtension{Raw: raw}}
		var frame bytes.Buffer
		if err := protoStream.Encode(ev, &frame); err != nil {
			return err
		}
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(frame.Len()))
		buf.Write(n[:])
		buf.Write(frame.Bytes())
	} else {
		fmt.Fprintf(&buf, `{"type":%q,"object":`, typ)
		buf.Write(raw)
		buf.WriteString("}\n")
	}
	_, err := e.rc.w.Write(buf.Bytes())
	return err
}

func mustAccessor(obj runtime.Object) metav1.Object {
	m, err := meta.Accessor(obj)
	if err != nil {
		return &metav1.ObjectMeta{}
	}
	return m
}
