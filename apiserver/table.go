package apiserver

import (
	"bytes"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-sh/skiff/apiserver/printers"
)

// table renders objects as the server-side Table kubectl prints. Each row
// carries the object as the client asked: its metadata (the default), the
// whole object, or nothing (includeObject=None|Metadata|Object).
func (s *Server) table(rc *reqContext, objs []runtime.Object, lm metav1.ListMeta) *metav1.Table {
	gk := rc.res.GroupVersionKind().GroupKind()
	t := &metav1.Table{ListMeta: lm, ColumnDefinitions: printers.Columns(gk)}
	t.SetGroupVersionKind(metav1.SchemeGroupVersion.WithKind("Table"))
	include := metav1.IncludeMetadata
	if v := rc.r.URL.Query().Get("includeObject"); v != "" {
		include = metav1.IncludeObjectPolicy(v)
	}
	now := s.now()
	for _, o := range objs {
		cells, err := printers.Cells(o, now)
		if err != nil {
			s.log.Warn("table: cannot print object", "resource", rc.res.Resource, "err", err)
			continue
		}
		row := metav1.TableRow{Cells: cells}
		var embed runtime.Object
		switch include {
		case metav1.IncludeNone:
		case metav1.IncludeObject:
			// Objects may be shared with other watchers: stamp the kind
			// only on a copy.
			if o.GetObjectKind().GroupVersionKind() != rc.res.GroupVersionKind() {
				o = o.DeepCopyObject()
				o.GetObjectKind().SetGroupVersionKind(rc.res.GroupVersionKind())
			}
			embed = o
		default:
			embed = partialMetadata(o)
		}
		if embed != nil {
			var buf bytes.Buffer
			if err := jsonCodec.Encode(embed, &buf); err == nil {
				row.Object = runtime.RawExtension{Raw: bytes.TrimSpace(buf.Bytes())}
			}
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}
