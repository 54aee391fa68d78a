package integration

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-sh/skiff/test/framework"
)

// badCase is one malformed or refused request.
type badCase struct {
	name   string
	method string
	path   string // under /api/v1/namespaces/bad unless it starts with /
	ctype  string
	body   []byte
	hdr    []string
	want   int
	// msg, when set, must appear in the Status message.
	msg string
	// absent names a configmap that must not exist afterwards.
	absent string
}

func cmJSON(name, extra string) []byte {
	return []byte(fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":%q%s}}`, name, extra))
}

func badCases() []badCase {
	const cms = "/configmaps"
	const target = "/configmaps/target"
	nested := nestedJSON(10000)
	big := bytes.Repeat([]byte("x"), 3<<20+1024)
	var patchOps strings.Builder
	patchOps.WriteString("[")
	for i := range 10001 {
		if i > 0 {
			patchOps.WriteString(",")
		}
		patchOps.WriteString(`{"op":"test","path":"/metadata/name","value":"target"}`)
	}
	patchOps.WriteString("]")
	return []badCase{
		{name: "malformed JSON", method: "POST", path: cms, ctype: "application/json",
			body: []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"broken"`), want: 400, absent: "broken"},
		{name: "malformed YAML", method: "POST", path: cms, ctype: "application/yaml",
			body: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken-yaml\n data: [\n"), want: 400, absent: "broken-yaml"},
		{name: "wrong kind for the endpoint", method: "POST", path: cms, ctype: "application/json",
			body: []byte(`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"wrong-kind"}}`), want: 400, absent: "wrong-kind"},
		{name: "wrong group for the endpoint", method: "POST", path: cms, ctype: "application/json",
			body: []byte(`{"apiVersion":"apps/v1","kind":"ConfigMap","metadata":{"name":"wrong-group"}}`), want: 400, absent: "wrong-group"},
		{name: "JSON that is not an object", method: "POST", path: cms, ctype: "application/json",
			body: []byte(`["apiVersion","v1"]`), want: 400},
		{name: "empty body", method: "POST", path: cms, ctype: "application/json", body: []byte{}, want: 400},
		{name: "unknown field, Strict", method: "POST", path: cms + "?fieldValidation=Strict", ctype: "application/json",
			body: cmJSON("strict", `},"bogus":{"x":1`), want: 400, msg: "bogus", absent: "strict"},
		{name: "duplicate field, Strict", method: "POST", path: cms + "?fieldValidation=Strict", ctype: "application/json",
			body: []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup"},"data":{"a":"1"},"data":{"a":"2"}}`), want: 400, absent: "dup"},
		{name: "unknown fieldValidation value", method: "POST", path: cms + "?fieldValidation=Loose", ctype: "application/json",
			body: cmJSON("loose", ""), want: 400, absent: "loose"},
		{name: "body over 3 MiB", method: "POST", path: cms, ctype: "application/json",
			body: append(append(cmJSON("huge", "")[:len(cmJSON("huge", ""))-1], []byte(`,"data":{"k":"`)...), append(big, []byte(`"}}`)...)...),
			want: 413, absent: "huge"},
		{name: "10,000 nested arrays in an annotation", method: "POST", path: cms, ctype: "application/json",
			body: cmJSON("deep-annotation", `,"annotations":{"a":`+nested+`}`), want: 400, absent: "deep-annotation"},
		{name: "10,000 nested arrays in a field", method: "POST", path: cms, ctype: "application/json",
			body: []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"deep-field"},"data":` + nested + `}`), want: 400, absent: "deep-field"},
		{name: "100,000 nested arrays in an unknown field", method: "POST", path: cms + "?fieldValidation=Strict", ctype: "application/json",
			body: []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"deeper"},"extra":` + nestedJSON(100000) + `}`), want: 400, absent: "deeper"},
		{name: "10,000 nested YAML sequences", method: "POST", path: cms, ctype: "application/yaml",
			body: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep-yaml\ndata: " + nested + "\n"), want: 400, absent: "deep-yaml"},
		{name: "10,000 nested arrays in a merge patch", method: "PATCH", path: target, ctype: "application/merge-patch+json",
			body: []byte(`{"data":{"k":` + nested + `}}`), want: 400},
		{name: "uppercase name", method: "POST", path: cms, ctype: "application/json", body: cmJSON("BadName", ""), want: 422, absent: "BadName"},
		{name: "name too long", method: "POST", path: cms, ctype: "application/json",
			body: cmJSON(strings.Repeat("a", 254), ""), want: 422, absent: strings.Repeat("a", 254)},
		{name: "name with a slash", method: "POST", path: cms, ctype: "application/json", body: cmJSON("a/b", ""), want: 422},
		{name: "generateName that makes a bad name", method: "POST", path: cms, ctype: "application/json",
			body: []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"generateName":"Bad_"}}`), want: 422},
		{name: "invalid label value", method: "POST", path: cms, ctype: "application/json",
			body: cmJSON("bad-label", `,"labels":{"app":"not a valid value!"}`), want: 422, absent: "bad-label"},
		{name: "label value too long", method: "POST", path: cms, ctype: "application/json",
			body: cmJSON("long-label", `,"labels":{"app":"`+strings.Repeat("v", 64)+`"}`), want: 422, absent: "long-label"},
		{name: "invalid label key", method: "POST", path: cms, ctype: "application/json",
			body: cmJSON("bad-key", `,"labels":{"-bad-":"x"}`), want: 422, absent: "bad-key"},
		{name: "invalid data key", method: "POST", path: cms, ctype: "application/json",
			body: []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"bad-data-key"},"data":{"no spaces":"x"}}`), want: 422, absent: "bad-data-key"},
		{name: "namespace in body differs from the URL", method: "POST", path: cms, ctype: "application/json",
			body: cmJSON("other-ns", `,"namespace":"default"`), want: 400, absent: "other-ns"},
		{name: "create with a name in the URL", method: "POST", path: cms + "/named", ctype: "application/json", body: cmJSON("named", ""), want: 405, absent: "named"},
		{name: "unsupported body content type", method: "POST", path: cms, ctype: "text/plain", body: cmJSON("plain", ""), want: 415, absent: "plain"},
		{name: "update with a name that differs from the URL", method: "PUT", path: target, ctype: "application/json", body: cmJSON("not-target", ""), want: 400},
		{name: "update with malformed JSON", method: "PUT", path: target, ctype: "application/json", body: []byte(`{"metadata":`), want: 400},
		{name: "unsupported patch content type", method: "PATCH", path: target, ctype: "text/plain", body: []byte(`{"data":{"x":"y"}}`), want: 415},
		{name: "server-side apply without a fieldManager", method: "PATCH", path: target, ctype: "application/apply-patch+yaml",
			body: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: target\ndata:\n  x: \"y\"\n"), want: 422, msg: "fieldManager"},
		{name: "server-side apply of the wrong kind", method: "PATCH", path: target + "?fieldManager=test", ctype: "application/apply-patch+yaml",
			body: []byte("apiVersion: v1\nkind: Secret\nmetadata:\n  name: target\n"), want: 400},
		{name: "server-side apply with a field of the wrong type", method: "PATCH", path: target + "?fieldManager=test", ctype: "application/apply-patch+yaml",
			body: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: target\ndata: [1, 2]\n"), want: 400},
		{name: "server-side apply with malformed YAML", method: "PATCH", path: target + "?fieldManager=test", ctype: "application/apply-patch+yaml",
			body: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: target\n data: [\n"), want: 400},
		{name: "server-side apply creating an invalid object", method: "PATCH", path: cms + "/Bad_Apply?fieldManager=test", ctype: "application/apply-patch+yaml",
			body: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Apply\n"), want: 422, absent: "Bad_Apply"},
		{name: "JSON patch that is not a list", method: "PATCH", path: target, ctype: "application/json-patch+json",
			body: []byte(`{"op":"add","path":"/data/x","value":"y"}`), want: 400},
		{name: "JSON patch with an unknown op", method: "PATCH", path: target, ctype: "application/json-patch+json",
			body: []byte(`[{"op":"frobnicate","path":"/data/x","value":"y"}]`), want: 422},
		{name: "JSON patch removing a missing path", method: "PATCH", path: target, ctype: "application/json-patch+json",
			body: []byte(`[{"op":"remove","path":"/data/nothing/here"}]`), want: 422},
		{name: "JSON patch whose test fails", method: "PATCH", path: target, ctype: "application/json-patch+json",
			body: []byte(`[{"op":"replace","path":"/data/k","value":"changed"},{"op":"test","path":"/metadata/name","value":"other"}]`), want: 422},
		{name: "JSON patch with 10,001 operations", method: "PATCH", path: target, ctype: "application/json-patch+json",
			body: []byte(patchOps.String()), want: 413},
		{name: "JSON patch changing the name", method: "PATCH", path: target, ctype: "application/json-patch+json",
			body: []byte(`[{"op":"replace","path":"/metadata/name","value":"renamed"}]`), want: 400, absent: "renamed"},
		{name: "JSON patch making the object invalid", method: "PATCH", path: target, ctype: "application/json-patch+json",
			body: []byte(`[{"op":"add","path":"/metadata/labels","value":{"app":"no spaces allowed"}}]`), want: 422},
		{name: "malformed merge patch", method: "PATCH", path: target, ctype: "application/merge-patch+json", body: []byte(`{"data":`), want: 400},
		{name: "merge patch with a wrong type", method: "PATCH", path: target, ctype: "application/merge-patch+json", body: []byte(`{"data":{"k":5}}`), want: 400},
		{name: "empty patch", method: "PATCH", path: target, ctype: "application/merge-patch+json", body: []byte{}, want: 400},
		{name: "patch of a missing object", method: "PATCH", path: cms + "/nobody", ctype: "application/merge-patch+json", body: []byte(`{"data":{"a":"b"}}`), want: 404, absent: "nobody"},
		{name: "unknown resource", method: "GET", path: "/frobnicators", want: 404},
		{name: "unknown resource create", method: "POST", path: "/frobnicators", ctype: "application/json", body: []byte(`{"kind":"Frobnicator"}`), want: 404},
		{name: "unknown group", method: "GET", path: "/apis/nope.example.com/v1/things", want: 404},
		{name: "unknown version", method: "GET", path: "/apis/apps/v0/deployments", want: 404},
		{name: "unknown subresource", method: "GET", path: target + "/frobnicate", want: 404},
		{name: "garbage continue token", method: "GET", path: cms + "?limit=1&continue=garbage!!", want: 400},
		{name: "well-encoded but meaningless continue token", method: "GET", path: cms + "?limit=1&continue=eyJmb28iOiJiYXIifQ", want: 400},
		{name: "continue token escaping the prefix", method: "GET",
			path: cms + "?limit=1&continue=" + encodeContinueForTest(5, "../../secrets/bad/"), want: 400},
		{name: "continue with a resourceVersion", method: "GET", path: cms + "?limit=1&resourceVersion=5&continue=" + encodeContinueForTest(5, "a"), want: 400},
		{name: "bad resourceVersion on list", method: "GET", path: cms + "?resourceVersion=abc", want: 400},
		{name: "negative resourceVersion on list", method: "GET", path: cms + "?resourceVersion=-3", want: 400},
		{name: "bad resourceVersion on watch", method: "GET", path: cms + "?watch=true&resourceVersion=abc", want: 400},
		{name: "bad resourceVersionMatch", method: "GET", path: cms + "?resourceVersion=1&resourceVersionMatch=Sometimes", want: 400},
		{name: "Exact without a resourceVersion", method: "GET", path: cms + "?resourceVersionMatch=Exact", want: 400},
		{name: "bad limit", method: "GET", path: cms + "?limit=ten", want: 400},
		{name: "bad timeoutSeconds", method: "GET", path: cms + "?watch=true&timeoutSeconds=soon", want: 400},
		{name: "malformed label selector", method: "GET", path: cms + "?labelSelector=app+in+(", want: 400},
		{name: "malformed field selector", method: "GET", path: cms + "?fieldSelector=metadata.name~~x", want: 400},
		{name: "unsupported field label", method: "GET", path: cms + "?fieldSelector=spec.nodeName%3Dn", want: 400},
		{name: "bad dryRun value on create", method: "POST", path: cms + "?dryRun=Some", ctype: "application/json", body: cmJSON("dry-some", ""), want: 400, absent: "dry-some"},
		{name: "bad dryRun value on update", method: "PUT", path: target + "?dryRun=true", ctype: "application/json", body: cmJSON("target", `},"data":{"k":"changed"`), want: 400},
		{name: "bad dryRun value on delete", method: "DELETE", path: target + "?dryRun=yes", want: 400},
		{name: "malformed DeleteOptions", method: "DELETE", path: target, ctype: "application/json", body: []byte(`{"gracePeriodSeconds":`), want: 400},
		{name: "bad gracePeriodSeconds", method: "DELETE", path: target + "?gracePeriodSeconds=soon", want: 400},
		{name: "bad propagationPolicy", method: "DELETE", path: target + "?propagationPolicy=Sideways", want: 400},
		{name: "delete precondition on a stale uid", method: "DELETE", path: target, ctype: "application/json",
			body: []byte(`{"kind":"DeleteOptions","apiVersion":"v1","preconditions":{"uid":"00000000-0000-0000-0000-000000000000"}}`), want: 409},
		{name: "unsupported Accept", method: "GET", path: target, hdr: []string{"Accept", "application/xml"}, want: 406},
	}
}

// encodeContinueForTest builds a continue token of the server's shape.
func encodeContinueForTest(rev int64, start string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"v":"meta.k8s.io/v1","rv":%d,"start":%q}`, rev, start)))
}

// TestBadInput sends malformed and refused requests: each must get a
// Status with its 4xx code, store nothing, and leave the server serving.
func TestBadInput(t *testing.T) {
	t.Parallel()
	srv := framework.StartServer(t, framework.Options{})
	cs := newClient(t, srv)
	ctx := testCtx(t)
	ns := makeNamespace(t, cs, "bad")
	target, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, configMap("target", map[string]string{"k": "v"}, nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hc, base := srv.HTTPClient()
	nsURL := base + "/api/v1/namespaces/" + ns
	for _, tc := range badCases() {
		t.Run(tc.name, func(t *testing.T) {
			url := nsURL + tc.path
			if strings.HasPrefix(tc.path, "/apis/") {
				url = base + tc.path
			}
			r := do(t, hc, tc.method, url, tc.ctype, tc.body, tc.hdr...)
			if r.code != tc.want {
				t.Errorf("%s %s: %d, want %d: %.300s", tc.method, tc.path, r.code, tc.want, r.body)
			}
			if r.code >= 400 && r.code < 500 {
				st := status(t, r)
				if tc.msg != "" && !strings.Contains(st.Message, tc.msg) {
					t.Errorf("Status message %q does not mention %q", st.Message, tc.msg)
				}
			} else {
				t.Errorf("%s %s answered %d, not a 4xx", tc.method, tc.path, r.code)
			}
			// The server keeps serving, and nothing partial was stored.
			if g := do(t, hc, http.MethodGet, nsURL, "", nil); g.code != http.StatusOK {
				t.Fatalf("server stopped serving after %q: GET namespace answered %d", tc.name, g.code)
			}
			if tc.absent != "" {
				if g := do(t, hc, http.MethodGet, nsURL+"/configmaps/"+tc.absent, "", nil); g.code != http.StatusNotFound {
					t.Errorf("refused request stored configmap %q: GET answered %d", tc.absent, g.code)
				}
			}
			cur, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "target", metav1.GetOptions{})
			if err != nil {
				t.Fatalf("target after %q: %v", tc.name, err)
			}
			if cur.ResourceVersion != target.ResourceVersion || cur.Data["k"] != "v" || len(cur.Data) != 1 || len(cur.Labels) != 0 {
				t.Errorf("refused request changed the target: rv %s -> %s, data %v labels %v",
					target.ResourceVersion, cur.ResourceVersion, cur.Data, cur.Labels)
			}
		})
	}
	list, err := cs.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 {
		t.Errorf("after the bad requests the namespace holds %v, want only target", cmNames(list.Items))
	}
	if r := do(t, hc, http.MethodGet, base+"/healthz", "", nil); r.code != http.StatusOK {
		t.Fatalf("/healthz after the bad requests: %d", r.code)
	}
}

// TestUnknownFieldWarning checks fieldValidation=Warn (the default): the
// object is created and the client is told about the unknown field.
func TestUnknownFieldWarning(t *testing.T) {
	t.Parallel()
	srv := framework.StartServer(t, framework.Options{})
	cs := newClient(t, srv)
	ns := makeNamespace(t, cs, "warn")
	hc, base := srv.HTTPClient()
	for _, q := range []string{"?fieldValidation=Warn", ""} {
		name := "warned" + strings.TrimPrefix(strings.ToLower(q), "?fieldvalidation=")
		r := do(t, hc, http.MethodPost, base+"/api/v1/namespaces/"+ns+"/configmaps"+q, "application/json",
			cmJSON(name, `},"bogus":{"x":1`))
		if r.code != http.StatusCreated {
			t.Fatalf("create with an unknown field%s: %d %s", q, r.code, r.body)
		}
		warnings := strings.Join(r.header.Values("Warning"), "\n")
		if !strings.HasPrefix(warnings, "299 ") || !strings.Contains(warnings, "bogus") {
			t.Fatalf("create with an unknown field%s: Warning header %q, want a 299 warning naming bogus", q, warnings)
		}
	}
	// Ignore drops it silently.
	r := do(t, hc, http.MethodPost, base+"/api/v1/namespaces/"+ns+"/configmaps?fieldValidation=Ignore", "application/json",
		cmJSON("ignored", `},"bogus":{"x":1`))
	if r.code != http.StatusCreated || len(r.header.Values("Warning")) != 0 {
		t.Fatalf("fieldValidation=Ignore: %d, warnings %v", r.code, r.header.Values("Warning"))
	}
	// Patches warn too.
	r = do(t, hc, http.MethodPatch, base+"/api/v1/namespaces/"+ns+"/configmaps/ignored", "application/merge-patch+json", []byte(`{"bogus2":1}`))
	if r.code != http.StatusOK || !strings.Contains(strings.Join(r.header.Values("Warning"), ""), "bogus2") {
		t.Fatalf("patch with an unknown field: %d, warnings %v", r.code, r.header.Values("Warning"))
	}
}
