package proxy

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/skiff-sh/skiff/internal/nftables"
)

// ruleset is the complete content the proxy wants in its table, as plain
// values that can be compared with what was programmed before.
type ruleset struct {
	chains map[string]*chainSpec
	maps   map[string]*mapSpec
	sets   map[string]*setSpec

	// UDP has no connections to end: the conntrack entries of its flows
	// outlive a change of endpoints (see conntrack.go). udpEndpoints are
	// the endpoints UDP service ports send to; udpRejected the UDP service
	// addresses that reject for want of endpoints.
	udpEndpoints map[netip.AddrPort]bool
	udpRejected  map[netip.AddrPort]bool
}

type chainSpec struct {
	name  string
	base  *baseChain // nil for a regular chain
	rules []string
}

type baseChain struct {
	typ      knftables.BaseChainType
	hook     knftables.BaseChainHook
	priority knftables.BaseChainPriority
}

type mapSpec struct {
	name  string
	typ   string
	elems map[string]element // by joined key
}

type setSpec struct {
	name    string
	typ     string
	flags   []knftables.SetFlag
	timeout time.Duration
	// dynamic sets are filled by the packet path (session affinity): the
	// proxy creates and deletes them but never writes their elements.
	dynamic bool
	elems   map[string]element
}

type element struct {
	key   []string
	value []string // maps only
}

func newRuleset() *ruleset {
	return &ruleset{chains: map[string]*chainSpec{}, maps: map[string]*mapSpec{}, sets: map[string]*setSpec{},
		udpEndpoints: map[netip.AddrPort]bool{}, udpRejected: map[netip.AddrPort]bool{}}
}

// names lists the ruleset's objects the way knftables ListAll does.
func (r *ruleset) names() map[string][]string {
	return map[string][]string{
		"chain": sortedKeys(r.chains),
		"set":   sortedKeys(r.sets),
		"map":   sortedKeys(r.maps),
	}
}

func (r *ruleset) chain(name string, rules ...string) *chainSpec {
	c := &chainSpec{name: name, rules: rules}
	r.chains[name] = c
	return c
}

func (r *ruleset) baseChain(name string, typ knftables.BaseChainType, hook knftables.BaseChainHook, prio knftables.BaseChainPriority, rules ...string) {
	c := r.chain(name, rules...)
	c.base = &baseChain{typ: typ, hook: hook, priority: prio}
}

func (r *ruleset) newMap(name, typ string) *mapSpec {
	m := &mapSpec{name: name, typ: typ, elems: map[string]element{}}
	r.maps[name] = m
	return m
}

func (r *ruleset) newSet(name, typ string) *setSpec {
	s := &setSpec{name: name, typ: typ, elems: map[string]element{}}
	r.sets[name] = s
	return s
}

// add inserts an element unless its key is taken; it reports whether it did.
// The first writer of a key wins, which keeps conflicting Services (two
// LoadBalancers on the same node port, say) from breaking the transaction.
func (m *mapSpec) add(value string, key ...string) bool {
	k := strings.Join(key, " . ")
	if _, taken := m.elems[k]; taken {
		return false
	}
	m.elems[k] = element{key: key, value: []string{value}}
	return true
}

func (s *setSpec) add(key ...string) {
	s.elems[strings.Join(key, " . ")] = element{key: key}
}

// Fixed object names in the table.
const (
	chainNATPrerouting  = "nat-prerouting"
	chainNATOutput      = "nat-output"
	chainNATPostrouting = "nat-postrouting"
	chainFilterInput    = "filter-input"
	chainFilterForward  = "filter-forward"
	chainFilterOutput   = "filter-output"
	chainServices       = "services"
	chainMarkMasq       = "mark-for-masquerade"
	chainMasquerading   = "masquerading"
	chainNoEndpoints    = "no-endpoints-check"
	chainClusterIPs     = "cluster-ips-check"
	chainReject         = "reject-chain"

	mapServiceIPs         = "service-ips"
	mapServiceNodePorts   = "service-nodeports"
	mapNoEndpointServices = "no-endpoint-services"
	mapNoEndpointNodePort = "no-endpoint-nodeports"
	setClusterIPs         = "cluster-ips"
	setNodePortIPs        = "nodeport-ips"

	// masqMark is the packet mark bit that asks nat-postrouting to masquerade.
	masqMark = "0x4000"

	prefixCluster  = "svc-"
	prefixExternal = "ext-"
	prefixEndpoint = "ep-"
	prefixAffinity = "aff-"
)

func clusterChainName(sp *servicePort) string  { return nftables.ObjectName(prefixCluster, sp.key()) }
func externalChainName(sp *servicePort) string { return nftables.ObjectName(prefixExternal, sp.key()) }
func endpointChainName(sp *servicePort, e endpoint) string {
	return nftables.ObjectName(prefixEndpoint, endpointIdentity(sp, e))
}

// endpointIdentity is ns/name/proto/port/ip/targetPort (nft names allow no
// colons).
func endpointIdentity(sp *servicePort, e endpoint) string {
	return sp.key() + "/" + e.ip.String() + "/" + strconv.Itoa(int(e.port))
}

// affinitySetName includes the timeout: a set's timeout cannot be changed
// in place, so a new timeout means a new set.
func affinitySetName(sp *servicePort, e endpoint) string {
	return nftables.ObjectName(prefixAffinity, endpointIdentity(sp, e)+"/"+strconv.Itoa(int(sp.affinityTimeout/time.Second)))
}

func protoName(sp *servicePort) string { return strings.ToLower(string(sp.protocol)) }
