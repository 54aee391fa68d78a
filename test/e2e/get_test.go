package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestGet reads objects back in each output format kubectl offers.
func TestGet(t *testing.T) {
	eachClient(t, func(t *testing.T, k *kubectl) {
		k.createNamespace()
		k.ok("create", "-f", k.file("app.yaml", docs(webDeployment, webService, webConfigMap, soloPod)))

		var d appsv1.Deployment
		k.getYAML(&d, "-n", k.ns, "deployment", "web")
		if d.Kind != "Deployment" || d.APIVersion != "apps/v1" || d.Name != "web" || d.Namespace != k.ns {
			t.Errorf("-o yaml: %s %s %s/%s", d.APIVersion, d.Kind, d.Namespace, d.Name)
		}
		if got := containerImages(d.Spec.Template.Spec.Containers); got != "nginx=nginx:1.25,sidecar=busybox:1.36" {
			t.Errorf("-o yaml containers = %s", got)
		}

		var svc corev1.Service
		k.getJSON(&svc, "-n", k.ns, "service", "web")
		if svc.Kind != "Service" || svc.APIVersion != "v1" || svc.Spec.Selector["app"] != "web" {
			t.Errorf("-o json: %s %s selector %v", svc.APIVersion, svc.Kind, svc.Spec.Selector)
		}

		if out := strings.TrimSpace(k.ok("get", "-n", k.ns, "deployment", "web", "-o", "name")); out != "deployment.apps/web" {
			t.Errorf("-o name = %q", out)
		}

		// Wide adds the deployment's containers, images and selector.
		wide := oneTable(t, k.ok("get", "-n", k.ns, "deployments", "-o", "wide"))
		row := wide.row(t, "NAME", "web")
		want := map[string]string{"READY": "0/2", "CONTAINERS": "nginx,sidecar", "IMAGES": "nginx:1.25,busybox:1.36", "SELECTOR": "app=web"}
		for col, v := range want {
			if row[col] != v {
				t.Errorf("get deployments -o wide: %s = %q, want %q (header %v)", col, row[col], v, wide.header)
			}
		}
		narrow := oneTable(t, k.ok("get", "-n", k.ns, "deployments"))
		if narrow.col("IMAGES") >= 0 || narrow.col("READY") < 0 {
			t.Errorf("plain get deployments header = %v, want READY and no IMAGES", narrow.header)
		}

		wide = oneTable(t, k.ok("get", "-n", k.ns, "services", "-o", "wide"))
		row = wide.row(t, "NAME", "web")
		want = map[string]string{"TYPE": "ClusterIP", "CLUSTER-IP": svc.Spec.ClusterIP, "PORT(S)": "80/TCP", "SELECTOR": "app=web"}
		for col, v := range want {
			if row[col] != v {
				t.Errorf("get services -o wide: %s = %q, want %q (header %v)", col, row[col], v, wide.header)
			}
		}

		// Several kinds at once: one table per kind, names kind-qualified.
		tables := parseTables(k.ok("get", "-n", k.ns, "pods,deployments"))
		if len(tables) != 2 {
			t.Fatalf("get pods,deployments: %d tables, want 2", len(tables))
		}
		if row := tables[0].row(t, "NAME", "pod/solo"); row["STATUS"] != "Pending" {
			t.Errorf("get pods,deployments: pod/solo STATUS = %q, want Pending", row["STATUS"])
		}
		tables[1].row(t, "NAME", "deployment.apps/web")
		tables = parseTables(k.ok("get", "-n", k.ns, "deploy,svc"))
		if len(tables) != 2 {
			t.Fatalf("get deploy,svc: %d tables, want 2", len(tables))
		}
		tables[0].row(t, "NAME", "deployment.apps/web")
		if row := tables[1].row(t, "NAME", "service/web"); row["CLUSTER-IP"] != svc.Spec.ClusterIP {
			t.Errorf("get deploy,svc: service CLUSTER-IP = %q, want %q", row["CLUSTER-IP"], svc.Spec.ClusterIP)
		}

		// All namespaces: the first column names each row's namespace.
		for _, kind := range []string{"configmaps", "pods"} {
			all := oneTable(t, k.ok("get", kind, "-A"))
			if len(all.header) == 0 || all.header[0] != "NAMESPACE" {
				t.Fatalf("get %s -A header = %v, want NAMESPACE first", kind, all.header)
			}
			name := map[string]string{"configmaps": "web-config", "pods": "solo"}[kind]
			found := false
			for _, r := range all.rows {
				if r[0] == "" {
					t.Errorf("get %s -A: row with an empty NAMESPACE: %v", kind, r)
				}
				if r[0] == k.ns && r[1] == name {
					found = true
				}
			}
			if !found {
				t.Errorf("get %s -A: no row %s %s in %v", kind, k.ns, name, all.rows)
			}
		}

		// Label selectors filter server side.
		sel := oneTable(t, k.ok("get", "-n", k.ns, "pods", "-l", "app=solo"))
		sel.row(t, "NAME", "solo")
		if out := k.run("get", "-n", k.ns, "pods", "-l", "app=none"); out.code != 0 || !strings.Contains(out.stderr, "No resources found") {
			t.Errorf("get with a selector that matches nothing: exit %d stderr %q", out.code, out.stderr)
		}
	})
}

// TestGetWatch starts `get -w`, changes the object from elsewhere, and
// expects the watch to print the changed row.
func TestGetWatch(t *testing.T) {
	eachClient(t, func(t *testing.T, k *kubectl) {
		k.createNamespace()
		k.ok("create", "-f", k.file("deploy.yaml", webDeployment))
		w := k.start("get", "-n", k.ns, "deployment", "web", "-w")
		row := func(ready string) func(string) bool {
			return func(line string) bool {
				f := strings.Fields(line)
				return len(f) >= 2 && f[0] == "web" && f[1] == ready
			}
		}
		w.waitFor(t, "initial row web 0/2", 30*time.Second, row("0/2"))

		// kubectl watches one named object from resourceVersion 0 and
		// hides the watch's first event, the synthetic ADDED of the state
		// it already printed. A change made before its watch is registered
		// is folded into that hidden event (against any Kubernetes API
		// server), so change again until one shows.
		cs := k.srv.Client()
		shown := false
		for _, n := range []int{5, 6, 8} {
			patch := []byte(fmt.Sprintf(`{"spec":{"replicas":%d}}`, n))
			if _, err := cs.AppsV1().Deployments(k.ns).Patch(context.Background(), "web", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
				t.Fatalf("scale through client-go: %v", err)
			}
			if w.tryFor(10*time.Second, row(fmt.Sprintf("0/%d", n))) {
				shown = true
				break
			}
		}
		if !shown {
			t.Fatalf("no updated row for three changes made through client-go; output so far:\n%s", strings.Join(w.seen, "\n"))
		}

		// A change made by kubectl itself shows up too.
		k.ok("scale", "-n", k.ns, "deployment", "web", "--replicas=7")
		w.waitFor(t, "updated row web 0/7", 30*time.Second, row("0/7"))
	})
}
