package scheduler

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestCacheAssumeConfirmForget(t *testing.T) {
	c := NewCache()
	c.AddNode(mkNode("a"))
	snap := &Snapshot{}
	c.UpdateSnapshot(snap)

	p := mkPod("p", req("cpu", "1"))
	if err := c.Assume(p, "a"); err != nil {
		t.Fatal(err)
	}
	if p.Spec.NodeName != "" {
		t.Fatal("Assume changed the caller's pod")
	}
	if err := c.Assume(p, "a"); err == nil {
		t.Fatal("assuming twice must fail")
	}
	c.UpdateSnapshot(snap)
	if got := snap.Node("a").Requested().MilliCPU; got != 1000 || !c.IsPlaced(p.UID) {
		t.Fatalf("assumed pod not counted: %dm", got)
	}

	// The informer reports the binding: counted once, no longer assumed.
	bound := p.DeepCopy()
	bound.Spec.NodeName = "a"
	c.UpdatePod(bound)
	c.Forget(p) // a late Forget must not undo a confirmed binding
	c.UpdateSnapshot(snap)
	if n := snap.Node("a"); len(n.Pods()) != 1 || n.Requested().MilliCPU != 1000 {
		t.Fatalf("after confirm: %d pods, %dm", len(n.Pods()), n.Requested().MilliCPU)
	}

	// A failed binding is forgotten.
	q := mkPod("q", req("cpu", "1"))
	if err := c.Assume(q, "a"); err != nil {
		t.Fatal(err)
	}
	c.Forget(q)
	c.UpdateSnapshot(snap)
	if n := snap.Node("a"); len(n.Pods()) != 1 || c.IsPlaced(q.UID) {
		t.Fatalf("forgotten pod still counted: %d pods", len(n.Pods()))
	}

	// Deletion and completion free the node.
	c.RemovePod(bound)
	c.UpdateSnapshot(snap)
	if n := snap.Node("a"); len(n.Pods()) != 0 || n.Requested().MilliCPU != 0 {
		t.Fatalf("after delete: %d pods, %dm", len(n.Pods()), n.Requested().MilliCPU)
	}
	done := mkPod("done", on("a"), req("cpu", "1"))
	c.AddPod(done)
	done = done.DeepCopy()
	done.Status.Phase = corev1.PodSucceeded
	c.UpdatePod(done)
	c.UpdateSnapshot(snap)
	if n := snap.Node("a"); len(n.Pods()) != 0 {
		t.Fatal("finished pod still counted")
	}
}

func TestSnapshotIsIncrementalAndImmutable(t *testing.T) {
	c := NewCache()
	for _, n := range nodes(3, "n") {
		c.AddNode(n)
	}
	snap := &Snapshot{}
	c.UpdateSnapshot(snap)
	n0, n1 := snap.Node("n-0"), snap.Node("n-1")

	c.AddPod(mkPod("p", on("n-1"), req("cpu", "1")))
	c.UpdateSnapshot(snap)
	if snap.Node("n-0") != n0 {
		t.Error("an unchanged node was copied")
	}
	if snap.Node("n-1") == n1 {
		t.Fatal("a changed node was not replaced")
	}
	if len(n1.Pods()) != 0 || n1.Requested().MilliCPU != 0 {
		t.Error("the old copy, which a running decision may hold, was changed")
	}
	if got := snap.Node("n-1").Requested().MilliCPU; got != 1000 {
		t.Errorf("new copy has %dm", got)
	}
	if snap.Nodes()[snap.index["n-1"]] != snap.Node("n-1") {
		t.Error("visiting order holds a stale node")
	}
}

func TestCacheNodeLifecycle(t *testing.T) {
	c := NewCache()
	snap := &Snapshot{}
	// A pod seen before its node: counted once the node arrives.
	c.AddPod(mkPod("early", on("a"), req("cpu", "1")))
	c.UpdateSnapshot(snap)
	if snap.NumNodes() != 0 {
		t.Fatal("a node known only from a pod was offered")
	}
	c.AddNode(mkNode("a"))
	c.AddNode(mkNode("b"))
	c.UpdateSnapshot(snap)
	if snap.NumNodes() != 2 || snap.Node("a").Requested().MilliCPU != 1000 {
		t.Fatalf("nodes %d, a has %+v", snap.NumNodes(), snap.Node("a"))
	}
	c.RemoveNode("a")
	c.UpdateSnapshot(snap)
	if snap.NumNodes() != 1 || snap.Node("a") != nil || snap.Nodes()[0].Name() != "b" {
		t.Fatal("removed node still offered")
	}
	// Cordoning shows up in the next snapshot.
	b := mkNode("b", cordoned)
	c.UpdateNode(b)
	c.UpdateSnapshot(snap)
	if !snap.Node("b").Node().Spec.Unschedulable {
		t.Fatal("node update not applied")
	}
}

func TestCacheNominatedPods(t *testing.T) {
	c := NewCache()
	c.AddNode(mkNode("a"))
	snap := &Snapshot{}
	p := mkPod("p", prio(5), req("cpu", "1"))
	c.Nominate(p, "a")
	c.UpdateSnapshot(snap)
	if got := snap.nominated["a"]; len(got) != 1 || got[0].Pod.UID != p.UID {
		t.Fatalf("nominated %v", got)
	}
	// Binding the pod clears its nomination.
	if err := c.Assume(p, "a"); err != nil {
		t.Fatal(err)
	}
	c.UpdateSnapshot(snap)
	if len(snap.nominated["a"]) != 0 {
		t.Fatal("bound pod still nominated")
	}
}

func TestCacheAffinityLists(t *testing.T) {
	c := NewCache()
	for _, n := range nodes(3, "n") {
		c.AddNode(n)
	}
	snap := &Snapshot{}
	c.UpdateSnapshot(snap)
	shy := mkPod("shy", on("n-2"), requiredAnti(podTermOf(labelHostname, selector("app", "x"))))
	c.AddPod(shy)
	c.UpdateSnapshot(snap)
	if len(snap.antiAffinityNodes) != 1 || snap.antiAffinityNodes[0] != snap.Node("n-2") {
		t.Fatalf("anti-affinity nodes %v", snap.antiAffinityNodes)
	}
	c.AddPod(mkPod("plain", on("n-2")))
	c.UpdateSnapshot(snap)
	if snap.antiAffinityNodes[0] != snap.Node("n-2") {
		t.Fatal("list holds a stale copy of the node")
	}
	c.RemovePod(shy)
	c.UpdateSnapshot(snap)
	if len(snap.antiAffinityNodes) != 0 || len(snap.affinityNodes) != 0 {
		t.Fatal("lists not emptied")
	}
}
