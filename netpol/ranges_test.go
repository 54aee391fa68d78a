package netpol

import (
	"fmt"
	"net/netip"
	"testing"
)

func TestIPBlockSpans(t *testing.T) {
	for _, tc := range []struct {
		cidr   string
		except []string
		want   string // prefixes
	}{
		{"10.0.0.0/8", nil, "[10.0.0.0/8]"},
		{"10.1.2.3/16", nil, "[10.1.0.0/16]"}, // host bits ignored
		{"10.0.0.0/30", []string{"10.0.0.1/32"}, "[10.0.0.0/32 10.0.0.2/31]"},
		{"10.0.0.0/24", []string{"10.0.0.0/25"}, "[10.0.0.128/25]"},
		{"10.0.0.0/24", []string{"10.0.0.0/24"}, "[]"},
		{"10.0.0.0/24", []string{"10.0.0.64/26", "10.0.0.96/27", "10.0.0.200/32"},
			"[10.0.0.0/26 10.0.0.128/26 10.0.0.192/29 10.0.0.201/32 10.0.0.202/31 10.0.0.204/30 10.0.0.208/28 10.0.0.224/27]"},
		{"0.0.0.0/0", []string{"10.0.0.0/8"},
			"[0.0.0.0/5 8.0.0.0/7 11.0.0.0/8 12.0.0.0/6 16.0.0.0/4 32.0.0.0/3 64.0.0.0/2 128.0.0.0/1]"},
		{"0.0.0.0/0", nil, "[0.0.0.0/0]"},
		{"255.255.255.254/31", []string{"255.255.255.254/32"}, "[255.255.255.255/32]"},
		{"fd00::/8", nil, "[]"}, // IPv6 is not policed
	} {
		t.Run(tc.cidr, func(t *testing.T) {
			ipb := blockPeer(tc.cidr, tc.except...).IPBlock
			spans, err := ipBlockSpans(ipb)
			if err != nil {
				t.Fatal(err)
			}
			var got []netip.Prefix
			for _, s := range spans {
				got = append(got, spanPrefixes(s)...)
			}
			if fmt.Sprint(got) != tc.want {
				t.Errorf("got %v, want %s", got, tc.want)
			}
		})
	}
	if _, err := ipBlockSpans(blockPeer("10.0.0.0/33").IPBlock); err == nil {
		t.Errorf("bad CIDR accepted")
	}
}

func TestMergeSpans(t *testing.T) {
	got := mergeSpans([]span{{10, 20}, {21, 25}, {5, 7}, {8, 8}, {30, 40}, {35, 36}, {^uint32(0), ^uint32(0)}, {100, ^uint32(0) - 1}})
	want := []span{{5, 8}, {10, 25}, {30, 40}, {100, ^uint32(0)}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, c := range []struct {
		n    uint32
		want bool
	}{{4, false}, {5, true}, {8, true}, {9, false}, {25, true}, {26, false}, {40, true}, {^uint32(0), true}} {
		if spansContain(got, c.n) != c.want {
			t.Errorf("contains %d: want %v", c.n, c.want)
		}
	}
}
