package sim

import (
	"strconv"
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

func TestIPAM(t *testing.T) {
	n1, n2 := newSimNode("sim-", 1), newSimNode("sim-", 2)
	m := newIPAM()
	assign := func(n simNode, key, uid, have, want string) {
		t.Helper()
		got, err := m.assign(n, key, types.UID(uid), have)
		if err != nil || got != want {
			t.Fatalf("assign(%s, %s, %s, %q) = %q, %v; want %q", n.name, key, uid, have, got, err, want)
		}
	}
	assign(n1, "ns/a", "a1", "", "10.42.1.2")
	assign(n1, "ns/b", "b1", "", "10.42.1.3")
	assign(n2, "ns/c", "c1", "", "10.42.2.2")
	assign(n1, "ns/a", "a1", "", "10.42.1.2") // the same pod keeps its address
	m.release("ns/a")
	assign(n1, "ns/d", "d1", "", "10.42.1.2") // lowest free again
	assign(n2, "ns/b", "b2", "", "10.42.2.3") // same name, new pod elsewhere
	assign(n1, "ns/e", "e1", "", "10.42.1.3") // b1's address was freed
	// Relearning after a restart: a pod keeps the address in its status
	// when it is free and in the node's range.
	assign(n2, "ns/f", "f1", "10.42.2.77", "10.42.2.77")
	assign(n2, "ns/g", "g1", "10.42.2.77", "10.42.2.4")  // taken
	assign(n2, "ns/h", "h1", "10.42.9.9", "10.42.2.5")   // another node's range
	assign(n2, "ns/i", "i1", "10.42.2.255", "10.42.2.6") // broadcast
	assign(n2, "ns/j", "j1", "garbage", "10.42.2.7")
	m.release("ns/unknown") // no-op
}

func TestIPAMExhaustion(t *testing.T) {
	n := newSimNode("sim-", 0)
	m := newIPAM()
	for i := 0; i < maxPodsPerNode; i++ {
		if _, err := m.assign(n, "ns/p"+strconv.Itoa(i), "u", ""); err != nil {
			t.Fatalf("pod %d: %v", i, err)
		}
	}
	if _, err := m.assign(n, "ns/one-too-many", "u", ""); err == nil {
		t.Error("a full /24 handed out another address")
	}
}
