package serviceaccount

import (
	"context"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/test/framework"
)

const testCA = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n"

// start runs a server and the controller against it.
func start(t *testing.T, workers int) kubernetes.Interface {
	t.Helper()
	srv := framework.StartServer(t, framework.Options{})
	client := srv.Client()
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := New(client, factory, Options{Workers: workers, RootCA: []byte(testCA), Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	done := make(chan error, 1)
	go func() { done <- c.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start: %v", err)
		}
		factory.Shutdown()
	})
	return client
}

// eventually polls cond until it holds or 15s pass.
func eventually(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	var last error
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		ok, err := cond()
		if ok {
			return
		}
		last = err
	}
	t.Fatalf("%s: not within 15s (last error: %v)", what, last)
}

func hasBoth(ctx context.Context, client kubernetes.Interface, ns string) func() (bool, error) {
	return func() (bool, error) {
		if _, err := client.CoreV1().ServiceAccounts(ns).Get(ctx, DefaultName, metav1.GetOptions{}); err != nil {
			return false, err
		}
		cm, err := client.CoreV1().ConfigMaps(ns).Get(ctx, RootCAName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return cm.Data[RootCAKey] == testCA, nil
	}
}

func TestEveryNamespaceGetsAccountAndCA(t *testing.T) {
	client := start(t, 0)
	ctx := context.Background()

	// The namespaces the server made at bootstrap.
	for _, ns := range []string{"default", "kube-system", "kube-public", "kube-node-lease"} {
		eventually(t, "account and CA in "+ns, hasBoth(ctx, client, ns))
	}
	// A new one.
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "account and CA in team-a", hasBoth(ctx, client, "team-a"))

	// Deleted objects come back.
	old, err := client.CoreV1().ServiceAccounts("team-a").Get(ctx, DefaultName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.CoreV1().ServiceAccounts("team-a").Delete(ctx, DefaultName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := client.CoreV1().ConfigMaps("team-a").Delete(ctx, RootCAName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "recreated account", func() (bool, error) {
		sa, err := client.CoreV1().ServiceAccounts("team-a").Get(ctx, DefaultName, metav1.GetOptions{})
		return err == nil && sa.UID != old.UID, err
	})
	eventually(t, "recreated CA", hasBoth(ctx, client, "team-a"))

	// An edited ConfigMap is put back.
	cm, err := client.CoreV1().ConfigMaps("team-a").Get(ctx, RootCAName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data[RootCAKey] = "not a CA"
	if _, err := client.CoreV1().ConfigMaps("team-a").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "restored CA", hasBoth(ctx, client, "team-a"))
}

func TestTerminatingNamespaceIsLeftAlone(t *testing.T) {
	// One worker: keys are reconciled one at a time, in the order their
	// events came.
	client := start(t, 1)
	ctx := context.Background()
	for _, name := range []string{"going", "staying"} {
		if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "account and CA in "+name, hasBoth(ctx, client, name))
	}
	// No namespace controller runs, so the namespace stays Terminating
	// with its content; a deleted account must not come back.
	if err := client.CoreV1().Namespaces().Delete(ctx, "going", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "namespace terminating", func() (bool, error) {
		ns, err := client.CoreV1().Namespaces().Get(ctx, "going", metav1.GetOptions{})
		return err == nil && ns.Status.Phase == corev1.NamespaceTerminating, err
	})
	// Delete the account in the terminating namespace, then in a live
	// one: once the second is back, the first was reconciled too.
	staying, err := client.CoreV1().ServiceAccounts("staying").Get(ctx, DefaultName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"going", "staying"} {
		if err := client.CoreV1().ServiceAccounts(ns).Delete(ctx, DefaultName, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "account back in staying", func() (bool, error) {
		sa, err := client.CoreV1().ServiceAccounts("staying").Get(ctx, DefaultName, metav1.GetOptions{})
		return err == nil && sa.UID != staying.UID, err
	})
	if _, err := client.CoreV1().ServiceAccounts("going").Get(ctx, DefaultName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("account in a terminating namespace: err = %v, want NotFound", err)
	}
}
