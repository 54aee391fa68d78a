package openapi

import (
	"bytes"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	openapiv2 "github.com/google/gnostic-models/openapiv2"
	openapiv3 "github.com/google/gnostic-models/openapiv3"
	"github.com/munnerz/goautoneg"
	"google.golang.org/protobuf/proto"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/skiff-sh/skiff/apiserver/registry"
)

// Media types of the documents. Clients ask for the protobuf forms with
// "@v1.0" in the name; the answer is labelled with ".v1.0", as Kubernetes
// does.
const (
	mediaJSON              = "application/json"
	mediaV2Protobuf        = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
	mediaV2ProtobufAsked   = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
	mediaV3Protobuf        = "application/com.github.proto-openapi.spec.v3.v1.0+protobuf"
	mediaV3ProtobufAsked   = "application/com.github.proto-openapi.spec.v3@v1.0+protobuf"
	pathV2                 = "/openapi/v2"
	pathV3                 = "/openapi/v3"
	cacheControlImmutable  = "public, immutable"
	immutableLifetimeYears = 1
)

// Docs holds the OpenAPI documents of a catalog, serialised once.
type Docs struct {
	schemas map[string]*spec.Schema
	v2      *document
	v3Root  *document
	v3      map[string]*document // by group-version path, "api/v1"
	built   time.Time
	now     func() time.Time
}

// document is one served document: its JSON, the ETag of that JSON, and
// its protobuf form, made on first demand.
type document struct {
	json     []byte
	etag     string
	toProto  func([]byte) ([]byte, error)
	once     sync.Once
	proto    []byte
	protoErr error
}

func newDocument(v interface{}, toProto func([]byte) ([]byte, error)) (*document, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("openapi: encoding document: %w", err)
	}
	return &document{json: data, etag: etagOf(data), toProto: toProto}, nil
}

// etagOf is the upper-case hex SHA-512 of a document; the v3 discovery
// document publishes it as the hash of each group version's URL.
func etagOf(data []byte) string {
	return fmt.Sprintf("%X", sha512.Sum512(data))
}

func (d *document) protobuf() ([]byte, error) {
	d.once.Do(func() {
		d.proto, d.protoErr = d.toProto(d.json)
		if d.protoErr != nil {
			d.protoErr = fmt.Errorf("openapi: converting the document to protobuf: %w", d.protoErr)
		}
	})
	return d.proto, d.protoErr
}

func v2Protobuf(data []byte) ([]byte, error) {
	doc, err := openapiv2.ParseDocument(data)
	if err != nil {
		return nil, err
	}
	return proto.Marshal(doc)
}

func v3Protobuf(data []byte) ([]byte, error) {
	doc, err := openapiv3.ParseDocument(data)
	if err != nil {
		return nil, err
	}
	return proto.Marshal(doc)
}

// v3Discovery is the /openapi/v3 document: where each group version's
// document is.
type v3Discovery struct {
	Paths map[string]v3DiscoveryEntry `json:"paths"`
}

type v3DiscoveryEntry struct {
	ServerRelativeURL string `json:"serverRelativeURL"`
}

// v3URL is the hash-pinned URL of a group version's document.
func v3URL(gv, hash string) string {
	u := url.URL{Path: pathV3 + "/" + gv, RawQuery: url.Values{"hash": {hash}}.Encode()}
	return u.String()
}

// New builds the documents of every resource in catalog; version is the
// server version the documents' info carries.
func New(catalog *registry.Catalog, version string) (*Docs, error) {
	m, err := buildModel(catalog)
	if err != nil {
		return nil, err
	}
	if err := m.checkRefs(); err != nil {
		return nil, err
	}
	d := &Docs{schemas: m.defs.defs, v3: map[string]*document{}, now: time.Now}
	d.built = d.now()
	if d.v2, err = newDocument(m.swaggerAll(version), v2Protobuf); err != nil {
		return nil, err
	}
	disco := v3Discovery{Paths: map[string]v3DiscoveryEntry{}}
	for _, gv := range m.gvs {
		doc, err := newDocument(m.openAPIV3(version, gv), v3Protobuf)
		if err != nil {
			return nil, fmt.Errorf("openapi: %s: %w", gv, err)
		}
		p := gvPath(gv)
		d.v3[p] = doc
		disco.Paths[p] = v3DiscoveryEntry{ServerRelativeURL: v3URL(p, doc.etag)}
	}
	if d.v3Root, err = newDocument(disco, nil); err != nil {
		return nil, err
	}
	return d, nil
}

// Schemas returns the OpenAPI v2 definitions keyed by name. The map and
// its schemas are shared: callers must not modify them.
func (d *Docs) Schemas() map[string]*spec.Schema { return d.schemas }

// ServeHTTP answers GET and HEAD of /openapi/v2, /openapi/v3 and
// /openapi/v3/<group-version path>.
func (d *Docs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeStatus(w, http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed, r.Method+" is not supported on "+r.URL.Path)
		return
	}
	p := r.URL.Path
	switch {
	case p == pathV2:
		d.serve(w, r, d.v2, []offer{
			{mediaJSON, mediaJSON, false},
			{mediaV2ProtobufAsked, mediaV2Protobuf, true},
			{mediaV2Protobuf, mediaV2Protobuf, true},
		})
	case p == pathV3 || p == pathV3+"/":
		w.Header().Set("Content-Type", mediaJSON)
		w.Header().Set("ETag", strconv.Quote(d.v3Root.etag))
		http.ServeContent(w, r, "", d.built, bytes.NewReader(d.v3Root.json))
	case strings.HasPrefix(p, pathV3+"/"):
		gv := strings.TrimPrefix(p, pathV3+"/")
		doc, ok := d.v3[gv]
		if !ok {
			writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, "no OpenAPI document for "+gv)
			return
		}
		if hash := r.URL.Query().Get("hash"); hash != "" {
			if hash != doc.etag {
				// An old hash: send the client to the current document.
				http.Redirect(w, r, v3URL(gv, doc.etag), http.StatusMovedPermanently)
				return
			}
			w.Header().Set("Cache-Control", cacheControlImmutable)
			w.Header().Set("Expires", d.now().AddDate(immutableLifetimeYears, 0, 0).UTC().Format(http.TimeFormat))
		}
		d.serve(w, r, doc, []offer{
			{mediaJSON, mediaJSON, false},
			{mediaV3Protobuf, mediaV3Protobuf, true},
			{mediaV3ProtobufAsked, mediaV3Protobuf, true},
		})
	default:
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, "the server could not find "+p)
	}
}

// offer is one representation of a document.
type offer struct {
	media    string // as clients ask for it
	answer   string // Content-Type of the answer
	protobuf bool
}

// negotiate picks the offer the Accept header prefers; a missing header
// accepts anything.
func negotiate(accept string, offers []offer) (offer, bool) {
	if strings.TrimSpace(accept) == "" {
		accept = "*/*"
	}
	for _, clause := range goautoneg.ParseAccept(accept) {
		if clause.Q <= 0 {
			continue
		}
		for _, o := range offers {
			typ, sub, _ := strings.Cut(o.media, "/")
			if (clause.Type == typ || clause.Type == "*") && (clause.SubType == sub || clause.SubType == "*") {
				return o, true
			}
		}
	}
	return offer{}, false
}

func (d *Docs) serve(w http.ResponseWriter, r *http.Request, doc *document, offers []offer) {
	w.Header().Add("Vary", "Accept")
	o, ok := negotiate(r.Header.Get("Accept"), offers)
	if !ok {
		writeStatus(w, http.StatusNotAcceptable, metav1.StatusReasonNotAcceptable,
			"the OpenAPI document is available as "+offers[0].media+" or "+offers[1].media)
		return
	}
	data := doc.json
	if o.protobuf {
		var err error
		if data, err = doc.protobuf(); err != nil {
			writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, err.Error())
			return
		}
	}
	w.Header().Set("Content-Type", o.answer)
	w.Header().Set("ETag", strconv.Quote(doc.etag))
	http.ServeContent(w, r, "", d.built, bytes.NewReader(data))
}

// writeStatus answers with a failure Status, which clients decode into
// an error.
func writeStatus(w http.ResponseWriter, code int, reason metav1.StatusReason, msg string) {
	st := metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure,
		Message:  msg,
		Reason:   reason,
		Code:     int32(code),
	}
	body, err := json.Marshal(st)
	if err != nil {
		http.Error(w, msg, code)
		return
	}
	w.Header().Set("Content-Type", mediaJSON)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}
