package nodeipam

import (
	"net/netip"
	"testing"
)

func TestAllocator(t *testing.T) {
	a, err := newAllocator(netip.MustParsePrefix("10.42.0.0/22"), 24)
	if err != nil {
		t.Fatal(err)
	}
	if !a.occupy(netip.MustParsePrefix("10.42.1.0/24"), "b") {
		t.Fatal("occupy of a free subnet refused")
	}
	if a.occupy(netip.MustParsePrefix("10.42.1.0/24"), "c") {
		t.Fatal("occupy of a held subnet allowed")
	}
	if a.occupy(netip.MustParsePrefix("10.43.0.0/24"), "c") || a.occupy(netip.MustParsePrefix("10.42.2.0/25"), "c") {
		t.Fatal("foreign subnet accepted")
	}
	want := []string{"10.42.0.0/24", "10.42.2.0/24", "10.42.3.0/24"}
	for i, w := range want {
		p, err := a.next(string(rune('x' + i)))
		if err != nil || p.String() != w {
			t.Fatalf("next %d = %v, %v; want %s", i, p, err, w)
		}
	}
	if _, err := a.next("full"); err == nil {
		t.Fatal("exhausted allocator handed out a subnet")
	}
	a.release(netip.MustParsePrefix("10.42.2.0/24"), "not-owner")
	if _, err := a.next("full"); err == nil {
		t.Fatal("release by a non-owner freed the subnet")
	}
	a.release(netip.MustParsePrefix("10.42.2.0/24"), "y")
	if p, err := a.next("z"); err != nil || p.String() != "10.42.2.0/24" {
		t.Fatalf("after release next = %v, %v", p, err)
	}
	if _, err := newAllocator(netip.MustParsePrefix("10.42.0.0/16"), 8); err == nil {
		t.Fatal("node mask wider than the cluster accepted")
	}
}
