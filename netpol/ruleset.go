package netpol

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/knftables"

	"github.com/skiff-sh/skiff/internal/nftables"
)

// ruleset is the whole content of the enforcer's table, as plain values
// that can be compared with what was programmed before.
type ruleset struct {
	chains map[string]*chainSpec
	sets   map[string]*setSpec
}

type chainSpec struct {
	name  string
	base  bool // a filter chain on the forward hook
	prio  knftables.BaseChainPriority
	rules []string
}

type setSpec struct {
	name     string
	typ      string
	interval bool
	elems    map[string][]string // joined key -> key
}

func newRuleset() *ruleset {
	return &ruleset{chains: map[string]*chainSpec{}, sets: map[string]*setSpec{}}
}

func (r *ruleset) chain(name string, rules ...string) *chainSpec {
	c := &chainSpec{name: name, rules: rules}
	r.chains[name] = c
	return c
}

func (r *ruleset) newSet(name, typ string, interval bool) *setSpec {
	s := &setSpec{name: name, typ: typ, interval: interval, elems: map[string][]string{}}
	r.sets[name] = s
	return s
}

func (s *setSpec) add(key ...string) { s.elems[strings.Join(key, " . ")] = key }

// String renders the ruleset in a stable order, for tests and logs.
func (r *ruleset) String() string {
	var b strings.Builder
	for _, n := range sortedKeys(r.sets) {
		s := r.sets[n]
		fmt.Fprintf(&b, "set %s %s interval=%v {%s}\n", n, s.typ, s.interval, strings.Join(sortedKeys(s.elems), ", "))
	}
	for _, n := range sortedKeys(r.chains) {
		c := r.chains[n]
		fmt.Fprintf(&b, "chain %s base=%v %s\n", n, c.base, c.prio)
		for _, rule := range c.rules {
			fmt.Fprintf(&b, "\t%s\n", rule)
		}
	}
	return b.String()
}

// Fixed object names.
const (
	chainIngress = "policy-ingress"
	chainEgress  = "policy-egress"

	setIngressIsolated = "ingress-isolated"
	setEgressIsolated  = "egress-isolated"
	setSelf            = "self"

	typeAddr      = "ipv4_addr"
	typeAddrPair  = "ipv4_addr . ipv4_addr"
	typeAddrProto = "ipv4_addr . inet_proto . inet_service"

	prefixTargets     = "sel-"
	prefixIngressRule = "ing-"
	prefixEgressRule  = "egr-"
	prefixPeers       = "peer-"
	prefixNamedPorts  = "nport-"
)

// buildRuleset renders the model as the table's content. Two filter
// chains on the forward hook police the pod bridge: policy-egress sees
// packets coming from it (iifname bridge), policy-ingress packets going
// into it (oifname bridge). Either chain accepting lets the other decide;
// a packet passes when both accept.
func buildRuleset(bridge string, m *model) *ruleset {
	r := newRuleset()
	ingIso := r.newSet(setIngressIsolated, typeAddr, false)
	egrIso := r.newSet(setEgressIsolated, typeAddr, false)
	self := r.newSet(setSelf, typeAddrPair, false)

	quoted := strconv.Quote(bridge)
	ingress := r.chain(chainIngress,
		"ct state established,related accept",
		"oifname != "+quoted+" accept",
		"ip daddr != @"+setIngressIsolated+" accept",
		"ip saddr . ip daddr @"+setSelf+" accept")
	egress := r.chain(chainEgress,
		"ct state established,related accept",
		"iifname != "+quoted+" accept",
		"ip saddr != @"+setEgressIsolated+" accept",
		"ip saddr . ip daddr @"+setSelf+" accept")
	ingress.base, ingress.prio = true, knftables.FilterPriority
	egress.base, egress.prio = true, knftables.FilterPriority

	for _, p := range m.policies {
		sel := r.newSet(nftables.ObjectName(prefixTargets, p.key), typeAddr, false)
		for _, ip := range p.targets {
			sel.add(ip.String())
			self.add(ip.String(), ip.String())
		}
		if p.ingress != nil {
			for _, ip := range p.targets {
				ingIso.add(ip.String())
			}
			name := nftables.ObjectName(prefixIngressRule, p.key)
			r.chain(name, policyRules(r, p.key, "ingress", p.ingress)...)
			ingress.rules = append(ingress.rules, "ip daddr @"+sel.name+" jump "+name)
		}
		if p.egress != nil {
			for _, ip := range p.targets {
				egrIso.add(ip.String())
			}
			name := nftables.ObjectName(prefixEgressRule, p.key)
			r.chain(name, policyRules(r, p.key, "egress", p.egress)...)
			egress.rules = append(egress.rules, "ip saddr @"+sel.name+" jump "+name)
		}
	}
	// Isolated and allowed by no policy.
	ingress.rules = append(ingress.rules, "counter drop")
	egress.rules = append(egress.rules, "counter drop")
	return r
}

// policyRules writes one policy's rules for one direction: each allows by
// accepting; a packet that matches none returns to the base chain, which
// tries the next policy selecting the pod. The peer and named-port sets are
// created even when empty, so pods coming and going change set elements,
// not chains.
func policyRules(r *ruleset, key, dir string, rules []compiledRule) []string {
	peerField, destField := "ip saddr", "ip daddr"
	if dir == "egress" {
		peerField = "ip daddr"
	}
	var out []string
	for i, cr := range rules {
		id := key + "/" + dir + "/" + strconv.Itoa(i)
		peer := ""
		if !cr.anyPeer {
			set := r.newSet(nftables.ObjectName(prefixPeers, id), typeAddr, true)
			for _, s := range cr.peers {
				for _, p := range spanPrefixes(s) {
					set.add(prefixElem(p))
				}
			}
			peer = peerField + " @" + set.name + " "
		}
		if cr.anyPort {
			out = append(out, peer+"accept")
			continue
		}
		for _, pr := range cr.ports {
			m := "meta l4proto " + pr.proto
			switch {
			case pr.lo == 0:
			case pr.hi > pr.lo:
				m += fmt.Sprintf(" th dport %d-%d", pr.lo, pr.hi)
			default:
				m += fmt.Sprintf(" th dport %d", pr.lo)
			}
			out = append(out, peer+m+" accept")
		}
		if cr.hasNamed {
			set := r.newSet(nftables.ObjectName(prefixNamedPorts, id), typeAddrProto, false)
			for _, t := range cr.named {
				set.add(t.ip.String(), t.proto, strconv.Itoa(int(t.port)))
			}
			// For egress the tuples are already limited to peer pods.
			match := destField + " . meta l4proto . th dport @" + set.name + " accept"
			if dir == "egress" {
				out = append(out, match)
			} else {
				out = append(out, peer+match)
			}
		}
	}
	return out
}

// prefixElem writes a prefix as nft lists it: single addresses bare.
func prefixElem(p netip.Prefix) string {
	if p.Bits() == 32 {
		return p.Addr().String()
	}
	return p.String()
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
