package e2e

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// deployment reads the client's web Deployment.
func (k *kubectl) deployment() appsv1.Deployment {
	k.t.Helper()
	var d appsv1.Deployment
	k.getJSON(&d, "-n", k.ns, "deployment", "web")
	return d
}

func replicas(d appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return -1
	}
	return *d.Spec.Replicas
}

// TestLabelAnnotateScale changes metadata and the scale subresource.
func TestLabelAnnotateScale(t *testing.T) {
	eachClient(t, func(t *testing.T, k *kubectl) {
		k.createNamespace()
		k.ok("create", "-f", k.file("deploy.yaml", webDeployment))
		start := k.deployment()

		wantContains(t, k.ok("label", "-n", k.ns, "deployment", "web", "tier=frontend"), "deployment.apps/web labeled")
		if d := k.deployment(); d.Labels["tier"] != "frontend" || d.Labels["app"] != "web" {
			t.Errorf("labels after label = %v", d.Labels)
		}
		r := k.fails("label", "-n", k.ns, "deployment", "web", "tier=backend")
		wantContains(t, r.stderr, "already has a value")
		k.ok("label", "-n", k.ns, "deployment", "web", "tier=backend", "--overwrite")
		if d := k.deployment(); d.Labels["tier"] != "backend" {
			t.Errorf("labels after --overwrite = %v", d.Labels)
		}
		k.ok("label", "-n", k.ns, "deployment", "web", "tier-")
		if d := k.deployment(); d.Labels["tier"] != "" || d.Labels["app"] != "web" {
			t.Errorf("labels after removing tier = %v", d.Labels)
		}

		k.ok("annotate", "-n", k.ns, "deployment", "web", "owner=team-a", "note=first release")
		d := k.deployment()
		if d.Annotations["owner"] != "team-a" || d.Annotations["note"] != "first release" {
			t.Errorf("annotations = %v", d.Annotations)
		}
		if d.Generation != start.Generation {
			t.Errorf("metadata changes moved generation %d -> %d", start.Generation, d.Generation)
		}
		k.ok("annotate", "-n", k.ns, "deployment", "web", "owner-")
		if d := k.deployment(); d.Annotations["owner"] != "" || d.Annotations["note"] == "" {
			t.Errorf("annotations after removing owner = %v", d.Annotations)
		}

		wantContains(t, k.ok("scale", "-n", k.ns, "deployment", "web", "--replicas=4"), "deployment.apps/web scaled")
		scaled := k.deployment()
		if replicas(scaled) != 4 || scaled.Generation != start.Generation+1 {
			t.Errorf("after scale: replicas %d generation %d, want 4 and %d", replicas(scaled), scaled.Generation, start.Generation+1)
		}
		sc, err := k.srv.Client().AppsV1().Deployments(k.ns).GetScale(context.Background(), "web", metav1.GetOptions{})
		if err != nil || sc.Spec.Replicas != 4 || sc.Status.Selector != "app=web" {
			t.Errorf("scale subresource: %+v, %v; want replicas 4 selector app=web", sc, err)
		}
		// A precondition on the current size that does not hold is refused.
		k.fails("scale", "-n", k.ns, "deployment", "web", "--current-replicas=2", "--replicas=6")
		if d := k.deployment(); replicas(d) != 4 {
			t.Errorf("failed conditional scale changed replicas to %d", replicas(d))
		}
	})
}

// TestPatch patches with each of kubectl's three patch types.
func TestPatch(t *testing.T) {
	eachClient(t, func(t *testing.T, k *kubectl) {
		k.createNamespace()
		k.ok("create", "-f", k.file("app.yaml", docs(webDeployment, webConfigMap)))

		out := k.ok("patch", "-n", k.ns, "deployment", "web", "--type=json",
			"-p", `[{"op":"replace","path":"/spec/replicas","value":3},{"op":"add","path":"/metadata/labels/patched","value":"json"}]`)
		wantContains(t, out, "deployment.apps/web patched")
		d := k.deployment()
		if replicas(d) != 3 || d.Labels["patched"] != "json" {
			t.Errorf("json patch: replicas %d labels %v", replicas(d), d.Labels)
		}
		// A failing test operation rejects the whole patch.
		k.fails("patch", "-n", k.ns, "deployment", "web", "--type=json",
			"-p", `[{"op":"test","path":"/spec/replicas","value":99},{"op":"replace","path":"/spec/replicas","value":9}]`)
		if d := k.deployment(); replicas(d) != 3 {
			t.Errorf("failed json patch changed replicas to %d", replicas(d))
		}

		// Strategic merge (the default) merges the container list by name.
		k.ok("patch", "-n", k.ns, "deployment", "web",
			"-p", `{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox:1.37"}]}}}}`)
		d = k.deployment()
		cs := d.Spec.Template.Spec.Containers
		if got := containerImages(cs); got != "nginx=nginx:1.25,sidecar=busybox:1.37" {
			t.Errorf("strategic patch containers = %s", got)
		} else {
			if len(cs[0].Ports) != 1 || cs[0].Ports[0].ContainerPort != 80 {
				t.Errorf("strategic patch lost nginx's ports: %+v", cs[0].Ports)
			}
			if strings.Join(cs[1].Command, " ") != "sleep 3600" {
				t.Errorf("strategic patch lost sidecar's command: %q", cs[1].Command)
			}
		}
		// A $patch: delete directive removes one element by its key.
		k.ok("patch", "-n", k.ns, "deployment", "web",
			"-p", `{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","$patch":"delete"}]}}}}`)
		if got := containerImages(k.deployment().Spec.Template.Spec.Containers); got != "nginx=nginx:1.25" {
			t.Errorf("strategic delete directive: containers = %s", got)
		}

		// A JSON merge patch replaces lists wholesale and deletes on null.
		k.ok("patch", "-n", k.ns, "deployment", "web", "--type=merge",
			"-p", `{"metadata":{"annotations":{"merged":"yes"}},"spec":{"template":{"spec":{"containers":[{"name":"solo","image":"nginx:1.27"}]}}}}`)
		d = k.deployment()
		if got := containerImages(d.Spec.Template.Spec.Containers); got != "solo=nginx:1.27" || d.Annotations["merged"] != "yes" {
			t.Errorf("merge patch: containers %s annotations %v", got, d.Annotations)
		}
		if p := d.Spec.Template.Spec.Containers[0].Ports; len(p) != 0 {
			t.Errorf("merge patch kept ports from the replaced list: %+v", p)
		}
		k.ok("patch", "-n", k.ns, "configmap", "web-config", "--type=merge", "-p", `{"data":{"greeting":null,"extra":"x"}}`)
		var cm corev1.ConfigMap
		k.getJSON(&cm, "-n", k.ns, "configmap", "web-config")
		if _, ok := cm.Data["greeting"]; ok || cm.Data["extra"] != "x" || cm.Data["mode"] != "test" {
			t.Errorf("merge patch with null: data = %v, want mode and extra only", cm.Data)
		}
	})
}

// TestEdit runs kubectl edit with EDITOR set to scripts.
func TestEdit(t *testing.T) {
	eachClient(t, func(t *testing.T, k *kubectl) {
		k.createNamespace()
		k.ok("create", "-f", k.file("deploy.yaml", webDeployment))
		before := k.deployment()

		editor := k.script("edit-image.sh", `sed -i 's/image: nginx:1.25/image: nginx:1.26/' "$1"`)
		r := k.runWith([]string{"EDITOR=" + editor}, "", "edit", "-n", k.ns, "deployment", "web")
		if r.code != 0 {
			t.Fatalf("edit: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		wantContains(t, r.stdout, "deployment.apps/web edited")
		d := k.deployment()
		if got := containerImages(d.Spec.Template.Spec.Containers); got != "nginx=nginx:1.26,sidecar=busybox:1.36" {
			t.Errorf("after edit: containers = %s", got)
		}
		if d.Generation != before.Generation+1 {
			t.Errorf("edit of the pod template: generation %d -> %d, want +1", before.Generation, d.Generation)
		}

		// An editor that changes nothing cancels the edit.
		noop := k.script("noop.sh", `test -s "$1"`)
		r = k.runWith([]string{"EDITOR=" + noop}, "", "edit", "-n", k.ns, "deployment", "web")
		if r.code != 0 {
			t.Fatalf("no-op edit: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		wantContains(t, r.stdout+r.stderr, "Edit cancelled, no changes made.")
		if again := k.deployment(); again.ResourceVersion != d.ResourceVersion {
			t.Errorf("no-op edit moved resourceVersion %s -> %s", d.ResourceVersion, again.ResourceVersion)
		}
	})
}

// TestDelete deletes by name, by file and by label selector.
func TestDelete(t *testing.T) {
	eachClient(t, func(t *testing.T, k *kubectl) {
		k.createNamespace()
		f := k.file("app.yaml", docs(webDeployment, webService, webConfigMap))
		k.ok("create", "-f", f)

		wantContains(t, k.ok("delete", "-n", k.ns, "deployment", "web"), `deployment.apps "web" deleted`)
		r := k.fails("get", "-n", k.ns, "deployment", "web")
		wantContains(t, r.stderr, "NotFound", `"web" not found`)
		if _, err := k.srv.Client().AppsV1().Deployments(k.ns).Get(context.Background(), "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("client-go get of the deleted deployment: %v, want NotFound", err)
		}

		// delete -f skips what is already gone only with --ignore-not-found.
		r = k.fails("delete", "-f", f)
		wantContains(t, r.stdout, `service "web" deleted`, `configmap "web-config" deleted`)
		k.fails("get", "-n", k.ns, "service", "web")
		k.fails("get", "-n", k.ns, "configmap", "web-config")
		k.ok("delete", "-f", f, "--ignore-not-found")

		for _, name := range []string{"a", "b", "c"} {
			k.ok("create", "configmap", "-n", k.ns, name, "--from-literal=k=v")
		}
		k.ok("label", "-n", k.ns, "configmap", "a", "b", "group=doomed")
		out := k.ok("delete", "-n", k.ns, "configmap", "-l", "group=doomed")
		wantContains(t, out, `configmap "a" deleted`, `configmap "b" deleted`)
		left := oneTable(t, k.ok("get", "-n", k.ns, "configmaps"))
		left.row(t, "NAME", "c")
		for _, row := range left.rows {
			if row[0] == "a" || row[0] == "b" {
				t.Errorf("configmap %s survived delete -l", row[0])
			}
		}
	})
}
