package integration

import (
	"net/http"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiff-sh/skiff/test/framework"
)

// TestEtcdModes runs one CRUD and watch smoke test on the embedded etcd
// and on an external one.
func TestEtcdModes(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"embedded", "external"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			var srv *framework.Server
			if mode == "external" {
				srv, _ = startExternal(t)
			} else {
				srv = framework.StartServer(t, framework.Options{})
			}
			smokeTest(t, srv)
		})
	}
}

func smokeTest(t *testing.T, srv *framework.Server) {
	hc, base := srv.HTTPClient()
	for _, p := range []string{"/healthz", "/readyz", "/livez"} {
		if r := do(t, hc, http.MethodGet, base+p, "", nil); r.code != http.StatusOK {
			t.Fatalf("%s: %d %s", p, r.code, r.body)
		}
	}
	cs := newClient(t, srv)
	ctx := testCtx(t)
	ns := makeNamespace(t, cs, "smoke")
	cms := cs.CoreV1().ConfigMaps(ns)
	created, err := cms.Create(ctx, configMap("smoke", map[string]string{"v": "1"}, nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: created.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	created.Data["v"] = "2"
	updated, err := cms.Update(ctx, created, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ev := expectEvent(t, w, watch.Modified, "smoke")
	if got := ev.Object.(*corev1.ConfigMap); got.Data["v"] != "2" || got.ResourceVersion != updated.ResourceVersion {
		t.Fatalf("MODIFIED carries v=%s rv=%s", got.Data["v"], got.ResourceVersion)
	}
	list, err := cms.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].Data["v"] != "2" || rv(t, list.ResourceVersion) < rv(t, updated.ResourceVersion) {
		t.Fatalf("list: %d items at %s", len(list.Items), list.ResourceVersion)
	}
	if err := cms.Delete(ctx, "smoke", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, w, watch.Deleted, "smoke")
	if _, err := cms.Get(ctx, "smoke", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("get after delete: want 404, got %v", err)
	}
	// The bootstrap objects are there in both modes.
	for _, n := range []string{"default", "kube-system", "kube-public", "kube-node-lease"} {
		if _, err := cs.CoreV1().Namespaces().Get(ctx, n, metav1.GetOptions{}); err != nil {
			t.Fatalf("namespace %s: %v", n, err)
		}
	}
	if _, err := cs.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{}); err != nil {
		t.Fatalf("kubernetes service: %v", err)
	}
}
