package netpol

import (
	"math/bits"
	"net/netip"
	"sort"
)

// span is an inclusive range of IPv4 addresses as 32-bit numbers. Peers of
// a rule (pod addresses and ipBlocks with their exceptions) are reduced to
// a sorted list of disjoint spans, then written as CIDR prefixes into an
// interval set.
type span struct{ lo, hi uint32 }

func addrNum(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func numAddr(n uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// prefixSpan is the span of an IPv4 prefix.
func prefixSpan(p netip.Prefix) span {
	p = p.Masked()
	lo := addrNum(p.Addr())
	hostBits := 32 - p.Bits()
	if hostBits == 32 {
		return span{0, ^uint32(0)}
	}
	return span{lo, lo | (uint32(1)<<hostBits - 1)}
}

func addrSpan(a netip.Addr) span { n := addrNum(a); return span{n, n} }

// mergeSpans sorts spans and joins those that overlap or touch.
func mergeSpans(in []span) []span {
	if len(in) == 0 {
		return nil
	}
	s := append([]span(nil), in...)
	sort.Slice(s, func(i, j int) bool { return s[i].lo < s[j].lo })
	out := []span{s[0]}
	for _, x := range s[1:] {
		last := &out[len(out)-1]
		if last.hi == ^uint32(0) || x.lo <= last.hi+1 {
			if x.hi > last.hi {
				last.hi = x.hi
			}
			continue
		}
		out = append(out, x)
	}
	return out
}

// subtractSpans removes cut from base; both may be unsorted and
// overlapping, the result is merged.
func subtractSpans(base, cut []span) []span {
	cut = mergeSpans(cut)
	var out []span
	for _, b := range mergeSpans(base) {
		cur := []span{b}
		for _, c := range cut {
			var next []span
			for _, x := range cur {
				if c.hi < x.lo || c.lo > x.hi {
					next = append(next, x)
					continue
				}
				if c.lo > x.lo {
					next = append(next, span{x.lo, c.lo - 1})
				}
				if c.hi < x.hi {
					next = append(next, span{c.hi + 1, x.hi})
				}
			}
			cur = next
		}
		out = append(out, cur...)
	}
	return mergeSpans(out)
}

// spanPrefixes writes a span as the fewest CIDR prefixes covering exactly it.
func spanPrefixes(s span) []netip.Prefix {
	var out []netip.Prefix
	lo, hi := uint64(s.lo), uint64(s.hi)
	for lo <= hi {
		// The largest block that starts at lo (alignment) and ends by hi.
		size := uint64(1) << 32
		if lo != 0 {
			size = uint64(1) << bits.TrailingZeros64(lo)
		}
		for lo+size-1 > hi {
			size >>= 1
		}
		out = append(out, netip.PrefixFrom(numAddr(uint32(lo)), 32-bits.TrailingZeros64(size)))
		lo += size
	}
	return out
}

// spansContain reports whether a merged, sorted span list holds n.
func spansContain(spans []span, n uint32) bool {
	i := sort.Search(len(spans), func(i int) bool { return spans[i].hi >= n })
	return i < len(spans) && spans[i].lo <= n
}
