package deployment

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiff-sh/skiff/controllers/replicaset/fakenode"
)

// randomReadiness makes each pod ready after a random delay in [lo, hi).
func randomReadiness(seed uint64, lo, hi time.Duration) func(*corev1.Pod) (time.Duration, bool) {
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, 1))
	delays := map[types.UID]time.Duration{}
	return func(p *corev1.Pod) (time.Duration, bool) {
		mu.Lock()
		defer mu.Unlock()
		d, ok := delays[p.UID]
		if !ok {
			d = lo + time.Duration(rng.Int64N(int64(hi-lo)))
			delays[p.UID] = d
		}
		return d, true
	}
}

func TestRollingUpdateHoldsItsBoundsAtEveryEvent(t *testing.T) {
	c := startCluster(t, fakenode.Options{
		ReadyAfter:       randomReadiness(1, 50*time.Millisecond, 600*time.Millisecond),
		TerminationDelay: 200 * time.Millisecond,
	})

	t.Run("6 replicas, 25% surge and unavailable, kubectl set image", func(t *testing.T) {
		c.t = t
		d := c.create(rolling(webDeployment("web", 6, "nginx:1"), intstr.FromString("25%"), intstr.FromString("25%")))
		c.waitRolledOut("web", 30*time.Second)
		m := c.monitor("web", 0, 6+2, 6-1) // surge rounds 1.5 up, unavailable down
		c.mustKubectl("1.33", "set", "image", "deployment/web", "app=nginx:2")
		c.waitRolledOut("web", 60*time.Second)
		eventually(t, 20*time.Second, "old pods gone", func() (bool, string) {
			pods := c.activePods("web")
			for _, p := range pods {
				if p.Spec.Containers[0].Image != "nginx:2" {
					return false, p.Name
				}
			}
			return len(pods) == 6, fmt.Sprint(len(pods))
		})
		m.report(t)
		rss := c.replicaSets(d)
		old, nw := byImage(rss, "nginx:1"), byImage(rss, "nginx:2")
		if len(rss) != 2 || old == nil || nw == nil || *old.Spec.Replicas != 0 || *nw.Spec.Replicas != 6 {
			t.Fatalf("replica sets after the rollout: %v", rsSummary(rss))
		}
		// Events are written asynchronously, and similar ones are combined
		// ("(combined from similar events): ...") as client-go does.
		wants := []string{
			fmt.Sprintf("Scaled up replica set %s to 6", old.Name),
			fmt.Sprintf("Scaled up replica set %s to 2", nw.Name),
			fmt.Sprintf("Scaled down replica set %s to 5 from 6", old.Name),
			fmt.Sprintf("Scaled down replica set %s to 0 from ", old.Name),
		}
		eventually(t, 10*time.Second, "scaling events", func() (bool, string) {
			ev := strings.Join(c.events("web"), "\n")
			for _, want := range wants {
				if !strings.Contains(ev, "ScalingReplicaSet ") || !strings.Contains(ev, want) {
					return false, "no " + want + " in:\n" + ev
				}
			}
			return true, ""
		})
	})

	t.Run("4 replicas, surge 1, none unavailable, minReadySeconds 1", func(t *testing.T) {
		c.t = t
		d := rolling(webDeployment("strict", 4, "nginx:1"), intstr.FromInt32(1), intstr.FromInt32(0))
		d.Spec.MinReadySeconds = 1
		d = c.create(d)
		c.waitRolledOut("strict", 30*time.Second)
		m := c.monitor("strict", 1, 4+1, 4)
		d = c.get("strict")
		d.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "VERSION", Value: "2"}}
		if _, err := c.client.AppsV1().Deployments(c.ns).Update(c.ctx, d, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		c.waitRolledOut("strict", 60*time.Second)
		m.report(t)
	})
}

func rsSummary(rss []appsv1.ReplicaSet) string {
	var out []string
	for _, rs := range rss {
		out = append(out, fmt.Sprintf("%s x%d rev %s", rs.Name, *rs.Spec.Replicas, rs.Annotations[RevisionAnnotation]))
	}
	return strings.Join(out, ", ")
}

func TestRecreateRemovesOldPodsBeforeCreatingNew(t *testing.T) {
	c := startCluster(t, fakenode.Options{ReadyDelay: 100 * time.Millisecond, TerminationDelay: 300 * time.Millisecond})
	d := webDeployment("batch", 3, "worker:1")
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	c.create(d)
	c.waitRolledOut("batch", 30*time.Second)

	// Never an old pod (even one terminating) and a new pod at once.
	mixed := func(pods []*corev1.Pod) string {
		images := map[string]int{}
		for _, p := range pods {
			images[p.Spec.Containers[0].Image]++
		}
		if images["worker:1"] > 0 && images["worker:2"] > 0 {
			return fmt.Sprintf("old and new pods together: %v", images)
		}
		return ""
	}
	m := c.monitorWith("batch", 0, 3, 0, mixed)
	c.mustKubectl("1.33", "set", "image", "deployment/batch", "app=worker:2")
	c.waitRolledOut("batch", 30*time.Second)
	m.report(t)
	m.mu.Lock()
	seen := m.events
	m.mu.Unlock()
	if seen < 6 {
		t.Errorf("the monitor saw only %d events", seen)
	}
	rss := c.replicaSets(c.get("batch"))
	if nw, old := byImage(rss, "worker:2"), byImage(rss, "worker:1"); len(rss) != 2 || nw == nil || old == nil ||
		*nw.Spec.Replicas != 3 || *old.Spec.Replicas != 0 {
		t.Errorf("replica sets: %s", rsSummary(rss))
	}
}
