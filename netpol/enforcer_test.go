package netpol

import (
	"context"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/knftables"
)

// cluster holds the objects a test put into a fake clientset, so the
// expected ruleset can be computed from them.
type cluster struct {
	t    testing.TB
	cs   *fake.Clientset
	pods map[string]*corev1.Pod
	nss  map[string]*corev1.Namespace
	pols map[string]*networkingv1.NetworkPolicy
}

func newCluster(t testing.TB) *cluster {
	return &cluster{t: t, cs: fake.NewClientset(), pods: map[string]*corev1.Pod{},
		nss: map[string]*corev1.Namespace{}, pols: map[string]*networkingv1.NetworkPolicy{}}
}

func (c *cluster) addNamespace(ns *corev1.Namespace) {
	c.t.Helper()
	if _, err := c.cs.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		c.t.Fatal(err)
	}
	c.nss[ns.Name] = ns
}

func (c *cluster) addPod(p *corev1.Pod) {
	c.t.Helper()
	if _, err := c.cs.CoreV1().Pods(p.Namespace).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
		c.t.Fatal(err)
	}
	c.pods[p.Namespace+"/"+p.Name] = p
}

func (c *cluster) updatePod(p *corev1.Pod) {
	c.t.Helper()
	if _, err := c.cs.CoreV1().Pods(p.Namespace).Update(context.Background(), p, metav1.UpdateOptions{}); err != nil {
		c.t.Fatal(err)
	}
	c.pods[p.Namespace+"/"+p.Name] = p
}

func (c *cluster) setPolicy(p *networkingv1.NetworkPolicy) {
	c.t.Helper()
	api := c.cs.NetworkingV1().NetworkPolicies(p.Namespace)
	var err error
	if _, ok := c.pols[p.Namespace+"/"+p.Name]; ok {
		_, err = api.Update(context.Background(), p, metav1.UpdateOptions{})
	} else {
		_, err = api.Create(context.Background(), p, metav1.CreateOptions{})
	}
	if err != nil {
		c.t.Fatal(err)
	}
	c.pols[p.Namespace+"/"+p.Name] = p
}

func (c *cluster) deletePolicy(ns, name string) {
	c.t.Helper()
	if err := c.cs.NetworkingV1().NetworkPolicies(ns).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		c.t.Fatal(err)
	}
	delete(c.pols, ns+"/"+name)
}

// want is the ruleset the enforcer should program for the objects.
func (c *cluster) want(node nodeView, bridge string) *ruleset {
	var pods []*corev1.Pod
	for _, p := range c.pods {
		pods = append(pods, p)
	}
	var nss []*corev1.Namespace
	for _, n := range c.nss {
		nss = append(nss, n)
	}
	var pols []*networkingv1.NetworkPolicy
	for _, p := range c.pols {
		pols = append(pols, p)
	}
	m, _ := compile(node, pols, pods, nss)
	return buildRuleset(bridge, m)
}

// startEnforcer runs an Enforcer on nft until the test ends.
func startEnforcer(t *testing.T, c *cluster, nft knftables.Interface, cfg Config, bridgeNF func() error) *Enforcer {
	t.Helper()
	e, err := newEnforcer(c.cs, nil, cfg, nft)
	if err != nil {
		t.Fatal(err)
	}
	e.bridgeNF = bridgeNF
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return e
}

// waitProgrammed waits until the enforcer has programmed what c describes.
func waitProgrammed(t testing.TB, e *Enforcer, c *cluster) {
	t.Helper()
	want := c.want(e.node, e.cfg.Bridge).String()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if got := e.programmed(); got != nil && got.String() == want {
			return
		}
		if time.Now().After(deadline) {
			got := "<nothing>"
			if p := e.programmed(); p != nil {
				got = p.String()
			}
			t.Fatalf("enforcer did not program the expected rules (stats %+v)\n--- got\n%s\n--- want\n%s", e.Stats(), got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestEnforcerFollowsObjects(t *testing.T) {
	c := newCluster(t)
	pods, nss := world()
	for _, n := range nss {
		c.addNamespace(n)
	}
	for _, p := range pods {
		c.addPod(p)
	}
	nft := knftables.NewFake(knftables.IPv4Family, "netpol-test")
	bridgeNFCalls := 0
	e := startEnforcer(t, c, nft, Config{
		NodeName: "n1", Bridge: testBridge, PodCIDR: netip.MustParsePrefix("10.42.1.0/24"),
		TableName: "netpol-test", MinSyncInterval: time.Millisecond,
	}, func() error { bridgeNFCalls++; return nil })
	waitProgrammed(t, e, c)
	if bridgeNFCalls != 1 {
		t.Errorf("bridge netfilter check ran %d times, want 1", bridgeNFCalls)
	}

	passes := func(p packet) bool {
		nft.RLock()
		defer nft.RUnlock()
		return (&evaluator{t: t, table: nft.Table}).passes(p)
	}
	if !passes(flow(ipA, ipB, 8080)) {
		t.Fatal("no policy, yet a -> b is dropped")
	}

	c.setPolicy(policy("default", "b", sel("app", "b"), ingressRule(peers(podPeer(sel("app", "a"))), port("TCP", 8080))))
	waitProgrammed(t, e, c)
	if !passes(flow(ipA, ipB, 8080)) || passes(flow(ipC, ipB, 8080)) || passes(flow(ipA, ipB, 9090)) {
		t.Error("policy b not enforced as written")
	}

	// A pod gaining the peer label is let in, through set elements only.
	syncs := e.Stats().Syncs
	c2 := pods[2].DeepCopy() // other/c
	c2.Labels = lbl("app", "a")
	c2.ResourceVersion = ""
	c.updatePod(c2)
	c.addNamespace(namespace("new", nil))
	newPod := pod("new", "n", "n1", "10.42.1.30", lbl("app", "b"))
	c.addPod(newPod)
	c.setPolicy(policy("new", "deny", sel()))
	waitProgrammed(t, e, c)
	if e.Stats().Syncs == syncs {
		t.Error("no sync counted")
	}
	if passes(flow(ipC, ipB, 8080)) {
		t.Error("c is in another namespace: a podSelector peer must not match it")
	}
	if passes(flow(ipA, "10.42.1.30", 80)) {
		t.Error("new/deny not enforced")
	}

	// Status churn that policies ignore does not trigger a transaction.
	syncs = e.Stats().Syncs
	b2 := c.pods["default/b"].DeepCopy()
	b2.Status.Conditions = append(b2.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue})
	c.updatePod(b2)
	time.Sleep(50 * time.Millisecond)
	if got := e.Stats().Syncs; got != syncs {
		t.Errorf("a readiness change caused %d syncs", got-syncs)
	}

	c.deletePolicy("default", "b")
	c.deletePolicy("new", "deny")
	waitProgrammed(t, e, c)
	if !passes(flow(ipC, ipB, 8080)) || !passes(flow(ipA, "10.42.1.30", 80)) {
		t.Error("deleting the policies did not open traffic again")
	}
	if st := e.Stats(); st.Failures != 0 || st.LastError != "" || st.Policies != 0 {
		t.Errorf("stats: %+v", st)
	}
}

// failingNFT fails transactions while fail is set.
type failingNFT struct {
	*knftables.Fake
	fail chan bool
}

func (f *failingNFT) Run(ctx context.Context, tx *knftables.Transaction) error {
	select {
	case v := <-f.fail:
		if v {
			return context.DeadlineExceeded
		}
	default:
	}
	return f.Fake.Run(ctx, tx)
}

func TestEnforcerRetriesWithFullRewrite(t *testing.T) {
	c := newCluster(t)
	pods, nss := world()
	for _, n := range nss {
		c.addNamespace(n)
	}
	for _, p := range pods {
		c.addPod(p)
	}
	nft := &failingNFT{Fake: knftables.NewFake(knftables.IPv4Family, "netpol-test"), fail: make(chan bool, 1)}
	nft.fail <- true
	e := startEnforcer(t, c, nft, Config{NodeName: "n1", Bridge: testBridge, TableName: "netpol-test",
		MinSyncInterval: time.Millisecond, SyncPeriod: time.Hour}, func() error { return nil })
	waitProgrammed(t, e, c)
	if st := e.Stats(); st.Failures != 1 || st.LastError != "" {
		t.Errorf("stats after one failure and a retry: %+v", st)
	}
	if sortedDump(nft.Fake) != sortedDump(program(t, c.want(e.node, testBridge))) {
		t.Errorf("table after retry differs from a full write")
	}
}

func TestNewNeedsBridge(t *testing.T) {
	if _, err := newEnforcer(fake.NewClientset(), nil, Config{NodeName: "n1"}, knftables.NewFake(knftables.IPv4Family, "x")); err == nil {
		t.Error("missing Bridge accepted")
	}
}
