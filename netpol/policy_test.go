package netpol

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The test world. Node n1 (this node) has podCIDR 10.42.1.0/24; n2 is
// another node.
const (
	ipA     = "10.42.1.2" // default/a on n1, app=a, http=8080
	ipB     = "10.42.1.3" // default/b on n1, app=b, http=8080 metrics=9090 dns=53/UDP
	ipC     = "10.42.1.4" // other/c on n1, app=c
	ipR     = "10.42.2.5" // default/r on n2, app=a, http=8081
	ipD     = "10.42.2.6" // other/d on n2, app=d, http=8082
	ipG     = "10.42.2.7" // ghost/g on n2 (no Namespace object), app=g
	ipDone  = "10.42.1.9" // default/done on n1, app=b, Succeeded
	ipNode  = "192.0.2.10"
	ipOuter = "8.8.8.8"
)

func world() ([]*corev1.Pod, []*corev1.Namespace) {
	done := pod("default", "done", "n1", ipDone, lbl("app", "b"), "http:8080")
	done.Status.Phase = corev1.PodSucceeded
	host := pod("default", "host", "n1", ipNode, lbl("app", "b"), "http:8080")
	host.Spec.HostNetwork = true
	pods := []*corev1.Pod{
		pod("default", "a", "n1", ipA, lbl("app", "a"), "http:8080"),
		pod("default", "b", "n1", ipB, lbl("app", "b"), "http:8080", "metrics:9090", "dns:53/UDP"),
		pod("other", "c", "n1", ipC, lbl("app", "c")),
		pod("default", "r", "n2", ipR, lbl("app", "a"), "http:8081"),
		pod("other", "d", "n2", ipD, lbl("app", "d"), "http:8082"),
		pod("ghost", "g", "n2", ipG, lbl("app", "g")),
		pod("default", "noip", "n1", "", lbl("app", "b"), "http:8080"),
		done, host,
	}
	nss := []*corev1.Namespace{
		namespace("default", lbl("team", "x")),
		namespace("other", lbl("team", "y")),
	}
	return pods, nss
}

type check struct {
	p    packet
	pass bool
}

func allow(p packet) check { return check{p, true} }
func deny(p packet) check  { return check{p, false} }

func TestPolicies(t *testing.T) {
	appA, appB := sel("app", "a"), sel("app", "b")
	for _, tc := range []struct {
		name     string
		policies []*networkingv1.NetworkPolicy
		checks   []check
	}{
		{
			name: "no policies: everything passes",
			checks: []check{
				allow(flow(ipA, ipB, 8080)), allow(flow(ipR, ipB, 8080)), allow(flow(ipB, ipR, 80)),
				allow(flow(ipC, ipOuter, 443)),
			},
		},
		{
			name:     "default deny ingress for one pod",
			policies: []*networkingv1.NetworkPolicy{policy("default", "deny-b", appB)},
			checks: []check{
				deny(flow(ipA, ipB, 8080)), deny(flow(ipR, ipB, 8080)), deny(flow(ipC, ipB, 8080)),
				deny(flow(ipOuter, ipB, 8080)), deny(flowProto(ipA, ipB, "icmp", 0)),
				allow(established(flow(ipA, ipB, 8080))),                 // replies and ongoing connections
				allow(flow(ipB, ipB, 8080)),                              // itself, through a Service
				allow(flow(ipB, ipA, 8080)), allow(flow(ipB, ipR, 8080)), // egress not isolated
				allow(flow(ipA, ipC, 8080)), allow(flow(ipA, ipDone, 8080)), // unselected pods
			},
		},
		{
			name:     "empty podSelector isolates the whole namespace, not others",
			policies: []*networkingv1.NetworkPolicy{policy("default", "deny-all", sel())},
			checks: []check{
				deny(flow(ipA, ipB, 8080)), deny(flow(ipB, ipA, 8080)), deny(flow(ipC, ipA, 8080)),
				allow(flow(ipA, ipC, 8080)), allow(flow(ipB, ipOuter, 53)),
			},
		},
		{
			name: "allow from a pod selector, same namespace only, on any node",
			policies: []*networkingv1.NetworkPolicy{policy("default", "from-a", appB,
				ingressRule(peers(podPeer(appA))))},
			checks: []check{
				allow(flow(ipA, ipB, 8080)), allow(flow(ipA, ipB, 9999)), allow(flow(ipR, ipB, 8080)),
				deny(flow(ipC, ipB, 8080)), deny(flow(ipD, ipB, 8080)), deny(flow(ipOuter, ipB, 8080)),
			},
		},
		{
			name: "allow from a namespace selector",
			policies: []*networkingv1.NetworkPolicy{policy("default", "from-y", appB,
				ingressRule(peers(nsPeer(sel("team", "y")))))},
			checks: []check{
				allow(flow(ipC, ipB, 8080)), allow(flow(ipD, ipB, 8080)),
				deny(flow(ipA, ipB, 8080)), deny(flow(ipR, ipB, 8080)),
			},
		},
		{
			name: "namespace and pod selector in one peer: both must match",
			policies: []*networkingv1.NetworkPolicy{policy("default", "from-y-d", appB,
				ingressRule(peers(bothPeer(sel("team", "y"), sel("app", "d")))))},
			checks: []check{
				allow(flow(ipD, ipB, 8080)),
				deny(flow(ipC, ipB, 8080)), deny(flow(ipA, ipB, 8080)),
			},
		},
		{
			name: "namespace and pod selector as two peers: either matches",
			policies: []*networkingv1.NetworkPolicy{policy("default", "from-y-or-a", appB,
				ingressRule(peers(nsPeer(sel("team", "y")), podPeer(appA))))},
			checks: []check{
				allow(flow(ipD, ipB, 8080)), allow(flow(ipC, ipB, 8080)), allow(flow(ipA, ipB, 8080)),
				allow(flow(ipR, ipB, 8080)), deny(flow(ipG, ipB, 8080)),
			},
		},
		{
			name: "empty namespace selector means every namespace",
			policies: []*networkingv1.NetworkPolicy{policy("default", "from-all", appB,
				ingressRule(peers(nsPeer(sel()))))},
			checks: []check{
				allow(flow(ipC, ipB, 8080)), allow(flow(ipG, ipB, 8080)), allow(flow(ipA, ipB, 8080)),
				deny(flow(ipOuter, ipB, 8080)), deny(flow(ipNode, ipB, 8080)),
			},
		},
		{
			name: "namespace without a Namespace object still has its name label",
			policies: []*networkingv1.NetworkPolicy{policy("default", "from-ghost", appB,
				ingressRule(peers(nsPeer(sel(corev1.LabelMetadataName, "ghost")))))},
			checks: []check{allow(flow(ipG, ipB, 8080)), deny(flow(ipD, ipB, 8080))},
		},
		{
			name: "ipBlock with except",
			policies: []*networkingv1.NetworkPolicy{policy("default", "from-block", appB,
				ingressRule(peers(blockPeer("10.42.2.0/24", "10.42.2.6/32"), blockPeer("8.8.0.0/16"))))},
			checks: []check{
				allow(flow(ipR, ipB, 8080)), allow(flow(ipG, ipB, 8080)), allow(flow(ipOuter, ipB, 1)),
				deny(flow(ipD, ipB, 8080)), deny(flow(ipA, ipB, 8080)), deny(flow("8.9.0.1", ipB, 8080)),
			},
		},
		{
			name: "numeric port and protocol",
			policies: []*networkingv1.NetworkPolicy{policy("default", "port", appB,
				ingressRule(nil, port("TCP", 8080)))},
			checks: []check{
				allow(flow(ipA, ipB, 8080)), allow(flow(ipOuter, ipB, 8080)),
				deny(flow(ipA, ipB, 9090)), deny(flowProto(ipA, ipB, "udp", 8080)),
				deny(flowProto(ipA, ipB, "icmp", 0)),
			},
		},
		{
			name: "port range with endPort",
			policies: []*networkingv1.NetworkPolicy{policy("default", "range", appB,
				ingressRule(peers(podPeer(appA)), port("TCP", 9000, 9100)))},
			checks: []check{
				allow(flow(ipA, ipB, 9000)), allow(flow(ipA, ipB, 9090)), allow(flow(ipA, ipB, 9100)),
				deny(flow(ipA, ipB, 8999)), deny(flow(ipA, ipB, 9101)), deny(flow(ipC, ipB, 9090)),
			},
		},
		{
			name: "protocol without port",
			policies: []*networkingv1.NetworkPolicy{policy("default", "udp", appB,
				ingressRule(nil, protoOnly("UDP")))},
			checks: []check{
				allow(flowProto(ipA, ipB, "udp", 1234)), allow(flowProto(ipA, ipB, "udp", 53)),
				deny(flow(ipA, ipB, 1234)), deny(flowProto(ipA, ipB, "sctp", 1234)),
			},
		},
		{
			name: "named ports resolve on the selected pod",
			policies: []*networkingv1.NetworkPolicy{policy("default", "named", sel(),
				ingressRule(peers(podPeer(appA)), namedPort("TCP", "metrics"), namedPort("UDP", "dns"), namedPort("TCP", "http")))},
			checks: []check{
				allow(flow(ipA, ipB, 9090)), allow(flowProto(ipA, ipB, "udp", 53)), allow(flow(ipA, ipB, 8080)),
				deny(flow(ipA, ipB, 53)), deny(flowProto(ipA, ipB, "udp", 9090)),
				allow(flow(ipR, ipA, 8080)), deny(flow(ipR, ipA, 9090)), // a has only http
				deny(flow(ipC, ipB, 9090)),
			},
		},
		{
			name: "named port no pod declares selects nothing",
			policies: []*networkingv1.NetworkPolicy{policy("default", "nope", appB,
				ingressRule(nil, namedPort("TCP", "grpc")))},
			checks: []check{deny(flow(ipA, ipB, 8080)), deny(flow(ipA, ipB, 9090))},
		},
		{
			name: "ingress rule {} allows everything",
			policies: []*networkingv1.NetworkPolicy{policy("default", "all", appB,
				ingressRule(nil))},
			checks: []check{allow(flow(ipC, ipB, 8080)), allow(flowProto(ipOuter, ipB, "icmp", 0))},
		},
		{
			name: "egress to a pod selector and port",
			policies: []*networkingv1.NetworkPolicy{policy("default", "a-out", appA, types(egr),
				egressRule(peers(podPeer(appB)), port("TCP", 8080)))},
			checks: []check{
				allow(flow(ipA, ipB, 8080)), deny(flow(ipA, ipB, 9090)), deny(flow(ipA, ipC, 8080)),
				deny(flow(ipA, ipR, 8080)), deny(flow(ipA, ipOuter, 8080)),
				allow(flow(ipB, ipA, 8080)), allow(flow(ipR, ipA, 8080)), // ingress not isolated
				allow(established(flow(ipA, ipOuter, 443))),
			},
		},
		{
			name: "egress named port resolves per destination pod",
			policies: []*networkingv1.NetworkPolicy{policy("default", "a-http", appA, types(egr),
				egressRule(peers(podPeer(appA), nsPeer(sel("team", "y"))), namedPort("TCP", "http")))},
			checks: []check{
				allow(flow(ipA, ipR, 8081)), deny(flow(ipA, ipR, 8080)),
				allow(flow(ipA, ipD, 8082)), deny(flow(ipA, ipD, 8081)),
				deny(flow(ipA, ipC, 8080)), // c declares no ports
				deny(flow(ipA, ipB, 8080)), // b is not a peer
			},
		},
		{
			name: "egress named port without peers: any pod declaring it",
			policies: []*networkingv1.NetworkPolicy{policy("default", "any-http", appA, types(egr),
				egressRule(nil, namedPort("TCP", "http")))},
			checks: []check{
				allow(flow(ipA, ipB, 8080)), allow(flow(ipA, ipD, 8082)), deny(flow(ipA, ipD, 8080)),
				deny(flow(ipA, ipOuter, 8080)), deny(flow(ipA, ipDone, 8080)),
			},
		},
		{
			name: "egress named port through an ipBlock covering pods",
			policies: []*networkingv1.NetworkPolicy{policy("default", "block-http", appA, types(egr),
				egressRule(peers(blockPeer("10.42.2.0/24")), namedPort("TCP", "http")))},
			checks: []check{allow(flow(ipA, ipD, 8082)), deny(flow(ipA, ipB, 8080))},
		},
		{
			name: "egress to the world but the cluster",
			policies: []*networkingv1.NetworkPolicy{policy("default", "internet", appA, types(egr),
				egressRule(peers(blockPeer("0.0.0.0/0", "10.0.0.0/8"))))},
			checks: []check{
				allow(flow(ipA, ipOuter, 443)), allow(flow(ipA, ipNode, 6443)),
				deny(flow(ipA, ipR, 8080)), deny(flow(ipA, ipB, 8080)),
			},
		},
		{
			name:     "default deny egress",
			policies: []*networkingv1.NetworkPolicy{policy("default", "deny-out", appA, types(egr))},
			checks: []check{
				deny(flow(ipA, ipB, 8080)), deny(flow(ipA, ipOuter, 53)), deny(flowProto(ipA, ipOuter, "udp", 53)),
				allow(flow(ipA, ipA, 8080)), allow(established(flow(ipA, ipOuter, 53))),
				allow(flow(ipB, ipA, 8080)),
			},
		},
		{
			name: "policyTypes default to Ingress plus Egress when egress rules exist",
			policies: []*networkingv1.NetworkPolicy{policy("default", "implicit", appA,
				egressRule(peers(podPeer(appB))))},
			checks: []check{
				allow(flow(ipA, ipB, 8080)), deny(flow(ipA, ipC, 8080)),
				deny(flow(ipB, ipA, 8080)), // ingress isolated, no ingress rule
			},
		},
		{
			name: "policyTypes Egress only leaves ingress open",
			policies: []*networkingv1.NetworkPolicy{policy("default", "egress-only", appA, types(egr),
				ingressRule(nil))},
			checks: []check{allow(flow(ipC, ipA, 8080)), deny(flow(ipA, ipC, 8080))},
		},
		{
			name: "policies add up",
			policies: []*networkingv1.NetworkPolicy{
				policy("default", "p1", appB, ingressRule(peers(podPeer(appA)), port("TCP", 8080))),
				policy("default", "p2", appB, ingressRule(peers(nsPeer(sel("team", "y"))), port("TCP", 9090))),
			},
			checks: []check{
				allow(flow(ipA, ipB, 8080)), deny(flow(ipA, ipB, 9090)),
				allow(flow(ipC, ipB, 9090)), deny(flow(ipC, ipB, 8080)),
				deny(flow(ipG, ipB, 8080)),
			},
		},
		{
			name: "ingress and egress both checked within the node",
			policies: []*networkingv1.NetworkPolicy{
				policy("default", "a-out", appA, types(egr), egressRule(peers(podPeer(appB)))),
				policy("default", "b-in", appB, ingressRule(peers(podPeer(appA)), port("TCP", 8080))),
			},
			checks: []check{allow(flow(ipA, ipB, 8080)), deny(flow(ipA, ipB, 9090)), deny(flow(ipA, ipC, 8080))},
		},
		{
			name: "pods on other nodes are not policed here",
			policies: []*networkingv1.NetworkPolicy{
				policy("other", "deny-d", sel("app", "d"), types(ing, egr)),
				policy("default", "deny-r", appA, types(ing)),
			},
			checks: []check{
				allow(flow(ipA, ipD, 8080)), allow(flow(ipD, ipC, 8080)),
				deny(flow(ipR, ipA, 8080)), // a is selected too
			},
		},
		{
			name: "finished, hostNetwork and address-less pods are no peers",
			policies: []*networkingv1.NetworkPolicy{policy("default", "from-b", appA,
				ingressRule(peers(podPeer(appB))))},
			checks: []check{
				allow(flow(ipB, ipA, 8080)),
				deny(flow(ipDone, ipA, 8080)), deny(flow(ipNode, ipA, 8080)),
			},
		},
		{
			name:     "traffic not crossing the bridge is left alone",
			policies: []*networkingv1.NetworkPolicy{policy("default", "deny-all", sel(), types(ing, egr))},
			checks:   []check{allow(flow(ipOuter, ipR, 80)), allow(flow(ipR, ipOuter, 80))},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pods, nss := world()
			m, warnings := compile(testNode, tc.policies, pods, nss)
			if len(warnings) > 0 {
				t.Fatalf("warnings: %v", warnings)
			}
			rs := buildRuleset(testBridge, m)
			fake := program(t, rs)
			ev := &evaluator{t: t, table: fake.Table}
			for _, c := range tc.checks {
				if got := ev.passes(c.p); got != c.pass {
					t.Errorf("%s %s -> %s:%d (established=%v): passes=%v, want %v",
						c.p.proto, c.p.src, c.p.dst, c.p.dport, c.p.established, got, c.pass)
				}
			}
			if t.Failed() {
				t.Logf("ruleset:\n%s", rs)
			}
		})
	}
}

func TestSelectionSkipsIneligiblePods(t *testing.T) {
	pods, nss := world()
	// A local pod whose address is outside the node's podCIDR is stale or
	// foreign: not policed.
	pods = append(pods, pod("default", "stray", "n1", "10.99.0.1", lbl("app", "b")))
	m, _ := compile(testNode, []*networkingv1.NetworkPolicy{policy("default", "b", sel("app", "b"))}, pods, nss)
	if len(m.policies) != 1 {
		t.Fatalf("want one policy, got %d", len(m.policies))
	}
	if got := fmt.Sprint(m.policies[0].targets); got != "["+ipB+"]" {
		t.Errorf("targets = %s, want only b (not done, noip, hostNetwork, stray)", got)
	}
	m, _ = compile(testNode, []*networkingv1.NetworkPolicy{policy("other", "d", sel("app", "d"))}, pods, nss)
	if len(m.policies) != 0 {
		t.Errorf("a policy selecting only remote pods must cost nothing here, got %d", len(m.policies))
	}
	rs := buildRuleset(testBridge, m)
	if len(rs.chains) != 2 || len(rs.sets) != 3 {
		t.Errorf("empty model: want the 2 base chains and 3 fixed sets, got\n%s", rs)
	}
}

func TestInvalidSelectorIgnoredWithWarning(t *testing.T) {
	pods, nss := world()
	bad := policy("default", "bad", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Sideways"}}})
	good := policy("default", "good", sel("app", "b"))
	m, warnings := compile(testNode, []*networkingv1.NetworkPolicy{bad, good}, pods, nss)
	if len(warnings) != 1 || !strings.Contains(warnings[0], "default/bad") {
		t.Errorf("warnings = %v", warnings)
	}
	if len(m.policies) != 1 || m.policies[0].key != "default/good" {
		t.Errorf("policies = %+v", m.policies)
	}
}

func TestRulesetStableUnderPodChurn(t *testing.T) {
	pods, nss := world()
	pols := []*networkingv1.NetworkPolicy{
		policy("default", "p", sel("app", "b"), ingressRule(peers(podPeer(sel("app", "a"))), namedPort("TCP", "http"))),
	}
	m1, _ := compile(testNode, pols, pods, nss)
	more := append(pods, pod("default", "a2", "n2", "10.42.2.50", lbl("app", "a")))
	m2, _ := compile(testNode, pols, more, nss)
	r1, r2 := buildRuleset(testBridge, m1), buildRuleset(testBridge, m2)
	for name, c := range r1.chains {
		if !slices.Equal(c.rules, r2.chains[name].rules) {
			t.Errorf("chain %s changed with a new peer pod", name)
		}
	}
	if r1.String() == r2.String() {
		t.Errorf("the new peer is missing from the sets")
	}
}
