package netpol

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/knftables"
)

// A small interpreter of the rule shapes buildRuleset writes, run over a
// knftables.Fake table, so tests can ask whether a packet passes instead of
// matching rule text. Any token it does not know fails the test: new rule
// shapes must be taught to it.

type packet struct {
	src, dst    netip.Addr
	proto       string // tcp, udp, sctp, icmp
	dport       int
	iif, oif    string
	established bool // ct state established or related
}

type evaluator struct {
	t     testing.TB
	table *knftables.FakeTable
}

// passes runs the packet through every base chain; it passes when none
// drops it.
func (ev *evaluator) passes(p packet) bool {
	ev.t.Helper()
	for _, name := range sortedKeys(ev.table.Chains) {
		ch := ev.table.Chains[name]
		if ch.Hook == nil {
			continue
		}
		if *ch.Hook != knftables.ForwardHook {
			ev.t.Fatalf("chain %s on unexpected hook %s", name, *ch.Hook)
		}
		if v := ev.chain(name, p, 0); v == "drop" {
			return false
		}
	}
	return true
}

// chain returns "accept", "drop" or "" (fell off the end / returned).
func (ev *evaluator) chain(name string, p packet, depth int) string {
	ev.t.Helper()
	if depth > 8 {
		ev.t.Fatalf("jump loop at %s", name)
	}
	ch := ev.table.Chains[name]
	if ch == nil {
		ev.t.Fatalf("no chain %s", name)
	}
	for _, r := range ch.Rules {
		verdict, target, ok := ev.rule(r.Rule, p)
		if !ok {
			continue
		}
		switch verdict {
		case "accept", "drop":
			return verdict
		case "return":
			return ""
		case "jump":
			if v := ev.chain(target, p, depth+1); v != "" {
				return v
			}
		default:
			ev.t.Fatalf("rule %q: verdict %q", r.Rule, verdict)
		}
	}
	return ""
}

// rule reports whether the packet matches and the rule's verdict.
func (ev *evaluator) rule(rule string, p packet) (verdict, target string, matched bool) {
	ev.t.Helper()
	tok := strings.Fields(rule)
	matched = true
	for i := 0; i < len(tok); i++ {
		rest := tok[i:]
		switch {
		case rest[0] == "accept" || rest[0] == "drop" || rest[0] == "return":
			if i != len(tok)-1 {
				ev.t.Fatalf("rule %q: verdict before the end", rule)
			}
			return rest[0], "", matched
		case rest[0] == "jump" && len(rest) == 2:
			return "jump", rest[1], matched
		case rest[0] == "counter":
		case len(rest) >= 3 && rest[0] == "ct" && rest[1] == "state" && rest[2] == "established,related":
			matched = matched && p.established
			i += 2
		case len(rest) >= 3 && (rest[0] == "iifname" || rest[0] == "oifname") && rest[1] == "!=":
			dev := p.iif
			if rest[0] == "oifname" {
				dev = p.oif
			}
			matched = matched && strconv.Quote(dev) != rest[2]
			i += 2
		case len(rest) >= 6 && strings.Join(rest[:5], " ") == "ip saddr . ip daddr":
			matched = matched && ev.inSet(rule, rest[5], p.src.String(), p.dst.String())
			i += 5
		case len(rest) >= 9 && strings.Join(rest[:8], " ") == "ip daddr . meta l4proto . th dport":
			matched = matched && ev.inSet(rule, rest[8], p.dst.String(), p.proto, strconv.Itoa(p.dport))
			i += 8
		case len(rest) >= 3 && rest[0] == "ip" && (rest[1] == "saddr" || rest[1] == "daddr"):
			a := p.src
			if rest[1] == "daddr" {
				a = p.dst
			}
			if rest[2] == "!=" && len(rest) >= 4 {
				matched = matched && !ev.inSet(rule, rest[3], a.String())
				i += 3
			} else {
				matched = matched && ev.inSet(rule, rest[2], a.String())
				i += 2
			}
		case len(rest) >= 3 && rest[0] == "meta" && rest[1] == "l4proto":
			matched = matched && p.proto == rest[2]
			i += 2
		case len(rest) >= 3 && rest[0] == "th" && rest[1] == "dport":
			lo, hi, ok := strings.Cut(rest[2], "-")
			if !ok {
				hi = lo
			}
			l, err1 := strconv.Atoi(lo)
			h, err2 := strconv.Atoi(hi)
			if err1 != nil || err2 != nil {
				ev.t.Fatalf("rule %q: bad port %q", rule, rest[2])
			}
			matched = matched && p.dport >= l && p.dport <= h && p.proto != "icmp"
			i += 2
		default:
			ev.t.Fatalf("rule %q: cannot interpret %q", rule, strings.Join(rest, " "))
		}
	}
	ev.t.Fatalf("rule %q has no verdict", rule)
	return "", "", false
}

// inSet looks key up in the set named by ref ("@name").
func (ev *evaluator) inSet(rule, ref string, key ...string) bool {
	ev.t.Helper()
	name, ok := strings.CutPrefix(ref, "@")
	if !ok {
		ev.t.Fatalf("rule %q: %q is not a set reference", rule, ref)
	}
	s := ev.table.Sets[name]
	if s == nil {
		ev.t.Fatalf("rule %q: no set %s", rule, name)
	}
	if s.Type != typeAddr {
		return s.FindElement(key...) != nil
	}
	a := netip.MustParseAddr(key[0])
	for _, e := range s.Elements {
		if strings.Contains(e.Key[0], "/") {
			if netip.MustParsePrefix(e.Key[0]).Contains(a) {
				return true
			}
		} else if netip.MustParseAddr(e.Key[0]) == a {
			return true
		}
	}
	return false
}
