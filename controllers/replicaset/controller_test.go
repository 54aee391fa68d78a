package replicaset

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
)

// lagging is a controller over a fake API whose informers never run: the
// test fills the caches by hand, so the cache lags the API exactly as much
// as the test wants.
type lagging struct {
	c        *Controller
	client   *fake.Clientset
	factory  informers.SharedInformerFactory
	clock    *clocktesting.FakeClock
	rec      *record.FakeRecorder
	observer cache.ResourceEventHandler
}

func newLagging(t *testing.T, rs *appsv1.ReplicaSet) *lagging {
	t.Helper()
	client := fake.NewClientset(rs)
	var n atomic.Int32
	client.PrependReactor("create", "pods", func(a clienttesting.Action) (bool, runtime.Object, error) {
		pod := a.(clienttesting.CreateAction).GetObject().(*corev1.Pod)
		if pod.Name == "" {
			pod.Name = fmt.Sprintf("%s%d", pod.GenerateName, n.Add(1))
			pod.UID = types.UID("uid-" + pod.Name)
		}
		return false, nil, nil
	})
	factory := informers.NewSharedInformerFactory(client, 0)
	l := &lagging{client: client, factory: factory, clock: clocktesting.NewFakeClock(t0), rec: record.NewFakeRecorder(100)}
	c, err := New(client, factory, Options{Recorder: l.rec, Clock: l.clock, ExpectationsTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	l.c, l.observer = c, c.observer()
	if err := factory.Apps().V1().ReplicaSets().Informer().GetStore().Add(rs); err != nil {
		t.Fatal(err)
	}
	return l
}

func (l *lagging) reconcile(t *testing.T) {
	t.Helper()
	if _, err := l.c.Reconcile(context.Background(), "ns/web"); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
}

// count counts the API actions with this verb on pods, and forgets them.
func (l *lagging) count(verb string) int {
	n := 0
	for _, a := range l.client.Actions() {
		if a.GetVerb() == verb && a.GetResource().Resource == "pods" {
			n++
		}
	}
	l.client.ClearActions()
	return n
}

// observe puts the API's pods into the cache, telling the observer.
func (l *lagging) observeCreations(t *testing.T) {
	t.Helper()
	list, err := l.client.CoreV1().Pods("ns").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	store := l.factory.Core().V1().Pods().Informer().GetStore()
	for i := range list.Items {
		p := &list.Items[i]
		if _, exists, _ := store.Get(p); exists {
			continue
		}
		if err := store.Add(p); err != nil {
			t.Fatal(err)
		}
		l.observer.OnAdd(p, false)
	}
	l.client.ClearActions()
}

func TestExpectationsKeepALaggingCacheFromDoubleActing(t *testing.T) {
	rs := replicaSet("web", 3, map[string]string{"app": "web"})
	rs.Namespace, rs.UID = "ns", "rs-uid"
	l := newLagging(t, rs)

	l.reconcile(t)
	if n := l.count("create"); n != 3 {
		t.Fatalf("first reconcile created %d pods, want 3", n)
	}
	// The cache has seen none of them yet: a second reconcile must not
	// create them again.
	l.reconcile(t)
	if n := l.count("create"); n != 0 {
		t.Fatalf("reconcile with a lagging cache created %d more pods", n)
	}
	l.observeCreations(t)
	l.reconcile(t)
	if n := l.count("create"); n != 0 {
		t.Fatalf("reconcile after the cache caught up created %d pods", n)
	}
	var events []string
	for len(l.rec.Events) > 0 {
		events = append(events, <-l.rec.Events)
	}
	if len(events) != 3 || !strings.HasPrefix(events[0], "Normal SuccessfulCreate Created pod: web-") {
		t.Errorf("events = %q, want three SuccessfulCreate", events)
	}

	// Scale down to 1 with all three in the cache: two deletions, and no
	// more while the cache still shows the pods.
	rs = rs.DeepCopy()
	one := int32(1)
	rs.Spec.Replicas = &one
	if err := l.factory.Apps().V1().ReplicaSets().Informer().GetStore().Update(rs); err != nil {
		t.Fatal(err)
	}
	l.reconcile(t)
	if n := l.count("delete"); n != 2 {
		t.Fatalf("scale down deleted %d pods, want 2", n)
	}
	l.reconcile(t)
	if n := l.count("delete"); n != 0 {
		t.Fatalf("reconcile with a lagging cache deleted %d more pods", n)
	}

	// Were the deletions lost, the expectations would expire after the TTL
	// and the set would act again rather than wait for ever.
	l.clock.Step(2 * time.Minute)
	l.reconcile(t)
	if n := l.count("delete"); n != 2 {
		t.Fatalf("after the expectations expired the set deleted %d pods, want 2 again", n)
	}
}
