package e2e

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestNamespaceTerminating deletes a namespace that still has content.
// With no namespace controller running it stays Terminating, its content
// stays readable, and new content is refused.
func TestNamespaceTerminating(t *testing.T) {
	eachClient(t, func(t *testing.T, k *kubectl) {
		k.createNamespace()
		k.ok("create", "configmap", "-n", k.ns, "before", "--from-literal=k=v")

		// --wait=false: kubectl would otherwise wait for a deletion that
		// only a namespace controller can finish.
		wantContains(t, k.ok("delete", "namespace", k.ns, "--wait=false"), `namespace "`+k.ns+`" deleted`)

		var ns corev1.Namespace
		k.getJSON(&ns, "namespace", k.ns)
		if ns.Status.Phase != corev1.NamespaceTerminating || ns.DeletionTimestamp == nil {
			t.Errorf("deleted namespace: phase %q deletionTimestamp %v, want Terminating and set", ns.Status.Phase, ns.DeletionTimestamp)
		}
		if len(ns.Spec.Finalizers) == 0 {
			t.Errorf("deleted namespace has no spec.finalizers; nothing would hold it")
		}
		row := oneTable(t, k.ok("get", "namespaces")).row(t, "NAME", k.ns)
		if row["STATUS"] != "Terminating" {
			t.Errorf("get namespaces: STATUS = %q, want Terminating", row["STATUS"])
		}

		r := k.fails("create", "configmap", "-n", k.ns, "after", "--from-literal=k=v")
		low := strings.ToLower(r.stderr)
		if !strings.Contains(low, "forbidden") || !strings.Contains(low, "being terminated") {
			t.Errorf("create in a terminating namespace: want a Forbidden error saying it is being terminated, got:\n%s", r.stderr)
		}
		r = k.fails("apply", "-f", k.file("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\n  namespace: NAMESPACE\n"))
		wantContains(t, r.stderr, "being terminated")
		k.fails("get", "-n", k.ns, "configmap", "after")

		// Existing content can still be read and changed.
		var cm corev1.ConfigMap
		k.getJSON(&cm, "-n", k.ns, "configmap", "before")
		if cm.Data["k"] != "v" {
			t.Errorf("configmap in the terminating namespace: data %v", cm.Data)
		}
		k.ok("label", "-n", k.ns, "configmap", "before", "still=here")

		// Deleting it again is accepted and changes nothing.
		k.ok("delete", "namespace", k.ns, "--wait=false")
		var again corev1.Namespace
		k.getJSON(&again, "namespace", k.ns)
		if again.Status.Phase != corev1.NamespaceTerminating {
			t.Errorf("after a second delete: phase %q", again.Status.Phase)
		}
	})
}
