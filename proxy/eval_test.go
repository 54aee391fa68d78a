package proxy

import (
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// This file holds a small interpreter of the rule shapes buildRuleset
// emits, run over the content of a knftables.Fake table, so tests can ask
// "where does this packet go" instead of matching rule text. It fails the
// test on any rule it does not understand, so new rule shapes must be
// taught to it.

type packet struct {
	src, dst netip.Addr
	proto    string // tcp, udp, sctp
	dport    int
	srcLocal bool // sent by the node itself (fib saddr type local)
	dstLocal bool // to an address of the node (fib daddr type local)
	sticky   map[string]bool
}

// outcome is where one path through the rules ends.
type outcome struct {
	verdict string // "dnat", "drop", "reject" or "none" (untouched)
	target  string // ip:port for dnat
	masq    bool
	prob    float64 // probability of this path
}

type evaluator struct {
	t  testing.TB
	st tableState
}

var (
	reVmapAddr   = regexp.MustCompile(`^ip daddr \. meta l4proto \. th dport vmap @(\S+)$`)
	reVmapSetNP  = regexp.MustCompile(`^ip daddr @(\S+) meta l4proto \. th dport vmap @(\S+)$`)
	reVmapFibNP  = regexp.MustCompile(`^fib daddr type local ip daddr != 127\.0\.0\.0/8 meta l4proto \. th dport vmap @(\S+)$`)
	reSaddrNot   = regexp.MustCompile(`^ip saddr != (\S+) jump mark-for-masquerade$`)
	reSaddrIn    = regexp.MustCompile(`^ip saddr (\d+\.\d+\.\d+\.\d+/\d+) goto (\S+)$`)
	reSaddrIs    = regexp.MustCompile(`^ip saddr (\d+\.\d+\.\d+\.\d+) jump mark-for-masquerade$`)
	reAffinity   = regexp.MustCompile(`^ip saddr @(\S+) goto (\S+)$`)
	reUpdate     = regexp.MustCompile(`^update @(\S+) \{ ip saddr \}$`)
	reNumgen     = regexp.MustCompile(`^numgen random mod (\d+) == 0 goto (\S+)$`)
	reGoto       = regexp.MustCompile(`^goto (\S+)$`)
	reDnat       = regexp.MustCompile(`^meta l4proto (\S+) dnat to (\S+)$`)
	reSetReject  = regexp.MustCompile(`^ip daddr @(\S+) reject$`)
	reFibSrcJump = regexp.MustCompile(`^fib saddr type local (jump mark-for-masquerade|goto (\S+))$`)
)

// route follows a new connection through nat then filter.
func (ev *evaluator) route(p packet) []outcome {
	outs := ev.chain(chainServices, p, false, 1)
	var final []outcome
	for _, o := range outs {
		if o.verdict != "none" {
			final = append(final, o)
			continue
		}
		// Not DNATed: the filter chains get it.
		f := ev.chain(chainNoEndpoints, p, false, o.prob)
		if len(f) == 1 && f[0].verdict == "none" {
			f = ev.chain(chainClusterIPs, p, false, o.prob)
		}
		final = append(final, f...)
	}
	return final
}

func (ev *evaluator) lookup(mapName, key string) (string, bool) {
	for _, el := range ev.st.maps[mapName] {
		k, v, _ := strings.Cut(el, " : ")
		if k == key {
			return v, true
		}
	}
	return "", false
}

func (ev *evaluator) inSet(set, key string) bool {
	for _, el := range ev.st.sets[set] {
		if el == key {
			return true
		}
	}
	return false
}

// verdict follows a map value or inline vmap entry such as "goto X".
func (ev *evaluator) verdict(v string, p packet, masq bool, prob float64) []outcome {
	if name, ok := strings.CutPrefix(v, "goto "); ok {
		if name == chainReject {
			return []outcome{{verdict: "reject", prob: prob}}
		}
		return ev.chain(name, p, masq, prob)
	}
	ev.t.Fatalf("evaluator: unknown verdict %q", v)
	return nil
}

func (ev *evaluator) chain(name string, p packet, masq bool, prob float64) []outcome {
	rules, ok := ev.st.chains[name]
	if !ok {
		ev.t.Fatalf("evaluator: no chain %q", name)
	}
	return ev.rules(name, rules, p, masq, prob)
}

// rules evaluates a chain's rules in order; a numgen rule forks the path.
func (ev *evaluator) rules(name string, rules []string, p packet, masq bool, prob float64) []outcome {
	for i, r := range rules {
		var m []string
		switch {
		case reVmapAddr.MatchString(r):
			m = reVmapAddr.FindStringSubmatch(r)
			if v, ok := ev.lookup(m[1], p.dst.String()+" . "+p.proto+" . "+strconv.Itoa(p.dport)); ok {
				return ev.verdict(v, p, masq, prob)
			}
		case reVmapSetNP.MatchString(r):
			m = reVmapSetNP.FindStringSubmatch(r)
			if ev.inSet(m[1], p.dst.String()) {
				if v, ok := ev.lookup(m[2], p.proto+" . "+strconv.Itoa(p.dport)); ok {
					return ev.verdict(v, p, masq, prob)
				}
			}
		case reVmapFibNP.MatchString(r):
			m = reVmapFibNP.FindStringSubmatch(r)
			if p.dstLocal && !p.dst.IsLoopback() {
				if v, ok := ev.lookup(m[1], p.proto+" . "+strconv.Itoa(p.dport)); ok {
					return ev.verdict(v, p, masq, prob)
				}
			}
		case reSaddrNot.MatchString(r):
			m = reSaddrNot.FindStringSubmatch(r)
			if !netip.MustParsePrefix(m[1]).Contains(p.src) {
				masq = true
			}
		case reSaddrIn.MatchString(r):
			m = reSaddrIn.FindStringSubmatch(r)
			if netip.MustParsePrefix(m[1]).Contains(p.src) {
				return ev.chain(m[2], p, masq, prob)
			}
		case reSaddrIs.MatchString(r):
			m = reSaddrIs.FindStringSubmatch(r)
			if p.src == netip.MustParseAddr(m[1]) {
				masq = true
			}
		case reFibSrcJump.MatchString(r):
			m = reFibSrcJump.FindStringSubmatch(r)
			if p.srcLocal {
				if m[2] == "" {
					masq = true
				} else {
					return ev.chain(m[2], p, masq, prob)
				}
			}
		case r == "jump "+chainMarkMasq:
			masq = true
		case reAffinity.MatchString(r):
			m = reAffinity.FindStringSubmatch(r)
			if _, ok := ev.st.sets[m[1]]; !ok {
				ev.t.Fatalf("evaluator: affinity set %q missing", m[1])
			}
			if p.sticky[m[1]] {
				return ev.chain(m[2], p, masq, prob)
			}
		case reUpdate.MatchString(r):
			m = reUpdate.FindStringSubmatch(r)
			if _, ok := ev.st.sets[m[1]]; !ok {
				ev.t.Fatalf("evaluator: affinity set %q missing", m[1])
			}
		case reNumgen.MatchString(r):
			m = reNumgen.FindStringSubmatch(r)
			k, _ := strconv.Atoi(m[1])
			if k < 2 {
				ev.t.Fatalf("evaluator: %q never or always matches", r)
			}
			taken := ev.chain(m[2], p, masq, prob/float64(k))
			return append(taken, ev.rules(name, rules[i+1:], p, masq, prob*float64(k-1)/float64(k))...)
		case reGoto.MatchString(r):
			return ev.verdict(r, p, masq, prob)
		case reDnat.MatchString(r):
			m = reDnat.FindStringSubmatch(r)
			if m[1] != p.proto {
				ev.t.Fatalf("evaluator: dnat for %s on a %s packet", m[1], p.proto)
			}
			return []outcome{{verdict: "dnat", target: m[2], masq: masq, prob: prob}}
		case reSetReject.MatchString(r):
			m = reSetReject.FindStringSubmatch(r)
			if ev.inSet(m[1], p.dst.String()) {
				return []outcome{{verdict: "reject", prob: prob}}
			}
		case r == "drop":
			return []outcome{{verdict: "drop", prob: prob}}
		case r == "reject":
			return []outcome{{verdict: "reject", prob: prob}}
		default:
			ev.t.Fatalf("evaluator: rule %q in chain %q not understood", r, name)
		}
	}
	return []outcome{{verdict: "none", prob: prob}}
}

// summary renders outcomes compactly and order-independently, e.g.
// "dnat 10.42.1.2:8080 masq | dnat 10.42.1.3:8080 masq" or "reject".
func summary(outs []outcome) string {
	var parts []string
	for _, o := range outs {
		s := o.verdict
		if o.verdict == "dnat" {
			s += " " + o.target
			if o.masq {
				s += " masq"
			}
		}
		parts = append(parts, s)
	}
	sort.Strings(parts)
	return strings.Join(parts, " | ")
}
