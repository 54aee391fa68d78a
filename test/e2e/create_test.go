package e2e

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestCreateMultiDocument creates a Namespace and the objects in it from
// one multi-document file and reads every object back.
func TestCreateMultiDocument(t *testing.T) {
	eachClient(t, func(t *testing.T, k *kubectl) {
		f := k.file("app.yaml", docs(namespaceDoc, webDeployment, webService, webConfigMap, webSecretStringData))
		out := k.ok("create", "-f", f)
		wantContains(t, out,
			"namespace/"+k.ns+" created",
			"deployment.apps/web created",
			"service/web created",
			"configmap/web-config created",
			"secret/web-secret created")

		var d appsv1.Deployment
		k.getJSON(&d, "-n", k.ns, "deployment", "web")
		if d.Namespace != k.ns || d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
			t.Errorf("deployment: namespace %q replicas %v, want %q and 2", d.Namespace, d.Spec.Replicas, k.ns)
		}
		if got := containerImages(d.Spec.Template.Spec.Containers); got != "nginx=nginx:1.25,sidecar=busybox:1.36" {
			t.Errorf("deployment containers = %s", got)
		}
		if d.Generation != 1 || d.UID == "" || d.CreationTimestamp.IsZero() {
			t.Errorf("deployment metadata: generation %d uid %q created %v", d.Generation, d.UID, d.CreationTimestamp)
		}

		var svc corev1.Service
		k.getJSON(&svc, "-n", k.ns, "service", "web")
		if svc.Spec.Type != corev1.ServiceTypeClusterIP || svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
			t.Errorf("service: type %q clusterIP %q, want ClusterIP with an allocated address", svc.Spec.Type, svc.Spec.ClusterIP)
		}
		if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 80 || svc.Spec.Ports[0].Protocol != corev1.ProtocolTCP {
			t.Errorf("service ports = %+v, want one TCP port 80", svc.Spec.Ports)
		}

		var cm corev1.ConfigMap
		k.getJSON(&cm, "-n", k.ns, "configmap", "web-config")
		if cm.Data["greeting"] != "hello" || cm.Data["mode"] != "test" {
			t.Errorf("configmap data = %v", cm.Data)
		}

		// JSON decoding of Secret.data undoes the base64 encoding.
		var sec corev1.Secret
		k.getJSON(&sec, "-n", k.ns, "secret", "web-secret")
		if string(sec.Data["user"]) != "admin" || string(sec.Data["password"]) != "s3cr3t" || len(sec.Data) != 2 {
			t.Errorf("secret data = %q, want user=admin password=s3cr3t", sec.Data)
		}
		if len(sec.StringData) != 0 || sec.Type != corev1.SecretTypeOpaque {
			t.Errorf("secret: stringData %v type %q, want none and Opaque", sec.StringData, sec.Type)
		}

		// An independent reader sees the same objects.
		cs := k.srv.Client()
		if _, err := cs.AppsV1().Deployments(k.ns).Get(context.Background(), "web", metav1.GetOptions{}); err != nil {
			t.Errorf("client-go get deployment: %v", err)
		}

		// Creating again is refused object by object.
		r := k.fails("create", "-f", f)
		wantContains(t, r.stderr, "already exists")
	})
}

// TestCreateInvalid sends objects the server must reject and checks the
// error names the offending field and nothing was stored.
func TestCreateInvalid(t *testing.T) {
	cases := []struct {
		name, kind, object string
		manifest           string
		fieldPath          string
	}{{
		name: "deployment-selector", kind: "deployment", object: "bad-selector",
		fieldPath: "spec.template.metadata.labels",
		manifest: `apiVersion: apps/v1
kind: Deployment
metadata:
  name: bad-selector
  namespace: NAMESPACE
spec:
  replicas: 1
  selector:
    matchLabels:
      app: one
  template:
    metadata:
      labels:
        app: other
    spec:
      containers:
      - name: main
        image: nginx:1.25
`,
	}, {
		name: "service-port", kind: "service", object: "bad-port",
		fieldPath: "spec.ports[0].port",
		manifest: `apiVersion: v1
kind: Service
metadata:
  name: bad-port
  namespace: NAMESPACE
spec:
  selector:
    app: web
  ports:
  - port: 70000
`,
	}}
	eachClient(t, func(t *testing.T, k *kubectl) {
		k.createNamespace()
		for _, tc := range cases {
			r := k.fails("create", "-f", k.file(tc.name+".yaml", tc.manifest))
			if !strings.Contains(r.stderr, tc.fieldPath) || !strings.Contains(r.stderr, "is invalid") {
				t.Errorf("%s: stderr does not say the object is invalid at %s:\n%s", tc.name, tc.fieldPath, r.stderr)
			}
			r = k.run("get", "-n", k.ns, tc.kind, tc.object)
			if r.code == 0 {
				t.Errorf("%s: rejected object was stored:\n%s", tc.name, r.stdout)
			}
			if !strings.Contains(r.stderr, "NotFound") && !strings.Contains(r.stderr, "not found") {
				t.Errorf("%s: get of the rejected object: %s", tc.name, r.stderr)
			}
		}
	})
}

// containerImages renders containers as name=image pairs, in order.
func containerImages(cs []corev1.Container) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.Name + "=" + c.Image
	}
	return strings.Join(parts, ",")
}
