package clusterdns

import (
	"net/netip"
	"sort"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// schemaVersion is the version of the Kubernetes DNS schema served in the
// dns-version TXT record.
const schemaVersion = "1.1.0"

// serviceKey names a Service.
type serviceKey struct{ namespace, name string }

// result is the outcome of a lookup in the cluster zone.
type result struct {
	// forward is set when the name is not answered by the cluster data and
	// must go to the upstreams; every other field is then unset.
	forward bool
	rcode   int
	answer  []dns.RR
	extra   []dns.RR
	// soa asks for the zone SOA in the authority section (NXDOMAIN/NODATA).
	soa bool
	// chase is a CNAME target (FQDN) whose records of the question type the
	// server must append to the answer.
	chase string
}

// zone is the cluster's DNS data: one entry per Service plus indexes. It is
// safe for concurrent use: lookups share a read lock, updates are rare.
type zone struct {
	domain string // lower-case FQDN, e.g. "cluster.local."
	ttl    uint32

	mu       sync.RWMutex
	services map[serviceKey]*serviceEntry
	// namespaces counts Services per namespace, for <ns>.svc.<zone>.
	namespaces map[string]int
	// reverse maps an address to its PTR targets (FQDNs).
	reverse map[netip.Addr]map[string]struct{}
	serial  uint32
}

func newZone(domain string, ttl uint32) *zone {
	return &zone{
		domain:     strings.ToLower(dns.Fqdn(domain)),
		ttl:        ttl,
		services:   map[serviceKey]*serviceEntry{},
		namespaces: map[string]int{},
		reverse:    map[netip.Addr]map[string]struct{}{},
		serial:     1,
	}
}

// ptrTargets lists the reverse records an entry contributes.
func (z *zone) ptrTargets(e *serviceEntry) map[netip.Addr]string {
	out := map[netip.Addr]string{}
	switch e.kind {
	case kindClusterIP:
		for _, ip := range e.clusterIPs {
			out[ip] = e.fqdn(z.domain)
		}
	case kindHeadless:
		for _, ep := range e.endpoints {
			out[ep.ip] = ep.host + "." + e.fqdn(z.domain)
		}
	}
	return out
}

// set stores (e != nil) or removes (e == nil) the entry of a Service.
func (z *zone) set(k serviceKey, e *serviceEntry) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if old, ok := z.services[k]; ok {
		for ip, target := range z.ptrTargets(old) {
			delete(z.reverse[ip], target)
			if len(z.reverse[ip]) == 0 {
				delete(z.reverse, ip)
			}
		}
		z.namespaces[k.namespace]--
		if z.namespaces[k.namespace] <= 0 {
			delete(z.namespaces, k.namespace)
		}
		delete(z.services, k)
	}
	if e != nil {
		z.services[k] = e
		z.namespaces[k.namespace]++
		for ip, target := range z.ptrTargets(e) {
			if z.reverse[ip] == nil {
				z.reverse[ip] = map[string]struct{}{}
			}
			z.reverse[ip][target] = struct{}{}
		}
	}
	z.serial++
}

// replaceAll swaps the whole content of the zone (initial sync).
func (z *zone) replaceAll(entries map[serviceKey]*serviceEntry) {
	fresh := newZone(z.domain, z.ttl)
	for k, e := range entries {
		fresh.set(k, e)
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	z.services, z.namespaces, z.reverse = fresh.services, fresh.namespaces, fresh.reverse
	z.serial++
}

// soaRecord is the zone's SOA; its minimum (negative TTL) is the record TTL.
func (z *zone) soaRecord() *dns.SOA {
	z.mu.RLock()
	defer z.mu.RUnlock()
	return z.soaRecordLocked()
}

// inZone reports whether a lower-case FQDN is the zone or below it, and
// returns its labels relative to the zone.
func (z *zone) inZone(lname string) ([]string, bool) {
	if lname == z.domain {
		return nil, true
	}
	if !strings.HasSuffix(lname, "."+z.domain) {
		return nil, false
	}
	return strings.Split(strings.TrimSuffix(lname, "."+z.domain), "."), true
}

// lookup answers qname/qtype from the cluster data. qname keeps the client's
// spelling, which answers echo as owner name.
func (z *zone) lookup(qname string, qtype uint16) result {
	lname := strings.ToLower(dns.Fqdn(qname))
	if rel, ok := z.inZone(lname); ok {
		z.mu.RLock()
		defer z.mu.RUnlock()
		return z.lookupZone(qname, rel, qtype)
	}
	if qtype == dns.TypePTR {
		if ip, ok := parseReverseName(lname); ok {
			z.mu.RLock()
			defer z.mu.RUnlock()
			if targets := z.reverse[ip]; len(targets) > 0 {
				names := make([]string, 0, len(targets))
				for t := range targets {
					names = append(names, t)
				}
				sort.Strings(names)
				var r result
				for _, t := range names {
					r.answer = append(r.answer, &dns.PTR{Hdr: z.hdr(qname, dns.TypePTR), Ptr: t})
				}
				return r
			}
		}
	}
	return result{forward: true}
}

func (z *zone) hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: z.ttl}
}

var (
	nxdomain = result{rcode: dns.RcodeNameError, soa: true}
	nodata   = result{rcode: dns.RcodeSuccess, soa: true}
)

// lookupZone answers a name inside the zone; rel are its labels above the
// zone, e.g. [web default svc]. The read lock is held.
func (z *zone) lookupZone(qname string, rel []string, qtype uint16) result {
	n := len(rel)
	switch {
	case n == 0:
		if qtype == dns.TypeSOA {
			soa := z.soaRecordLocked()
			soa.Hdr.Name = qname
			return result{answer: []dns.RR{soa}}
		}
		return nodata
	case n == 1 && rel[0] == "dns-version":
		if qtype == dns.TypeTXT {
			return result{answer: []dns.RR{&dns.TXT{Hdr: z.hdr(qname, dns.TypeTXT), Txt: []string{schemaVersion}}}}
		}
		return nodata
	case rel[n-1] == "svc":
		return z.lookupSvc(qname, rel[:n-1], qtype)
	case rel[n-1] == "pod":
		return z.lookupPod(qname, rel[:n-1], qtype)
	}
	return nxdomain
}

// soaRecordLocked is soaRecord with the lock already held.
func (z *zone) soaRecordLocked() *dns.SOA {
	return &dns.SOA{
		Hdr:     z.hdr(z.domain, dns.TypeSOA),
		Ns:      "ns.dns." + z.domain,
		Mbox:    "hostmaster." + z.domain,
		Serial:  z.serial,
		Refresh: 7200,
		Retry:   1800,
		Expire:  86400,
		Minttl:  z.ttl,
	}
}

// lookupPod answers <a-b-c-d>.<ns>.pod.<zone> (rel without "pod").
func (z *zone) lookupPod(qname string, rel []string, qtype uint16) result {
	switch len(rel) {
	case 0, 1:
		return nodata // pod.<zone> and <ns>.pod.<zone> are empty non-terminals
	case 2:
		ip, ok := parseDashedAddr(rel[0])
		if !ok {
			return nxdomain
		}
		if rr := z.addrRecord(qname, ip, qtype); rr != nil {
			return result{answer: []dns.RR{rr}}
		}
		return nodata
	}
	return nxdomain
}

// addrRecord is an A or AAAA record for ip when it matches qtype (ANY
// matches both), else nil.
func (z *zone) addrRecord(name string, ip netip.Addr, qtype uint16) dns.RR {
	anyType := qtype == dns.TypeANY
	switch {
	case (qtype == dns.TypeA || anyType) && ip.Is4():
		return &dns.A{Hdr: z.hdr(name, dns.TypeA), A: ip.AsSlice()}
	case (qtype == dns.TypeAAAA || anyType) && ip.Is6():
		return &dns.AAAA{Hdr: z.hdr(name, dns.TypeAAAA), AAAA: ip.AsSlice()}
	}
	return nil
}

// lookupSvc answers names under svc.<zone> (rel without "svc").
func (z *zone) lookupSvc(qname string, rel []string, qtype uint16) result {
	n := len(rel)
	switch n {
	case 0:
		return nodata
	case 1:
		if z.namespaces[rel[0]] > 0 {
			return nodata
		}
		return nxdomain
	}
	e := z.services[serviceKey{namespace: rel[n-1], name: rel[n-2]}]
	if e == nil {
		return nxdomain
	}
	switch n {
	case 2:
		return z.serviceRecords(qname, e, qtype)
	case 3:
		if strings.HasPrefix(rel[0], "_") {
			// _<proto>.<svc>: an empty non-terminal when some port uses it.
			for _, p := range e.ports {
				if "_"+p.proto == rel[0] && e.kind != kindExternalName {
					return nodata
				}
			}
			return nxdomain
		}
		return z.endpointRecords(qname, e, rel[0], qtype)
	case 4:
		if !strings.HasPrefix(rel[0], "_") || !strings.HasPrefix(rel[1], "_") || e.kind == kindExternalName {
			return nxdomain
		}
		return z.srvRecords(qname, e, rel[0][1:], rel[1][1:], qtype)
	}
	return nxdomain
}

// serviceRecords answers <svc>.<ns>.svc.<zone>.
func (z *zone) serviceRecords(qname string, e *serviceEntry, qtype uint16) result {
	switch e.kind {
	case kindExternalName:
		cname := &dns.CNAME{Hdr: z.hdr(qname, dns.TypeCNAME), Target: e.externalName}
		r := result{answer: []dns.RR{cname}}
		if qtype != dns.TypeCNAME && qtype != dns.TypeANY {
			r.chase = e.externalName
		}
		return r
	case kindHeadless:
		if len(e.endpoints) == 0 {
			return nxdomain
		}
	}
	if qtype == dns.TypeSRV {
		// Ports differing only in protocol give identical SRV data; an
		// RRset carries each record once.
		var r result
		type srvKey struct {
			target string
			port   uint16
		}
		seen := map[srvKey]bool{}
		for _, p := range e.ports {
			rs := z.srvRecords(qname, e, p.name, p.proto, qtype)
			for _, rr := range rs.answer {
				srv := rr.(*dns.SRV)
				if k := (srvKey{srv.Target, srv.Port}); !seen[k] {
					seen[k] = true
					r.answer = append(r.answer, rr)
				}
			}
			r.extra = append(r.extra, rs.extra...)
		}
		if len(r.answer) == 0 {
			return nodata
		}
		r.extra = dedupe(r.extra)
		return r
	}
	var r result
	for _, ip := range e.addrs() {
		if rr := z.addrRecord(qname, ip, qtype); rr != nil {
			r.answer = append(r.answer, rr)
		}
	}
	if len(r.answer) == 0 {
		return nodata
	}
	return r
}

// addrs are the addresses behind the Service name, without duplicates.
func (e *serviceEntry) addrs() []netip.Addr {
	if e.kind == kindClusterIP {
		return e.clusterIPs
	}
	var out []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, ep := range e.endpoints {
		if !seen[ep.ip] {
			seen[ep.ip] = true
			out = append(out, ep.ip)
		}
	}
	return out
}

// endpointRecords answers <host>.<svc>.<ns>.svc.<zone> of headless Services.
func (z *zone) endpointRecords(qname string, e *serviceEntry, host string, qtype uint16) result {
	if e.kind != kindHeadless {
		return nxdomain
	}
	found := false
	var r result
	for _, ep := range e.endpoints {
		if ep.host != host {
			continue
		}
		found = true
		if rr := z.addrRecord(qname, ep.ip, qtype); rr != nil {
			r.answer = append(r.answer, rr)
		}
	}
	switch {
	case !found:
		return nxdomain
	case len(r.answer) == 0:
		return nodata
	}
	return r
}

// srvRecords answers _<port>._<proto>.<svc>.<ns>.svc.<zone>. The owner name
// of the records is qname, so a bare-Service SRV query reuses it.
func (z *zone) srvRecords(qname string, e *serviceEntry, port, proto string, qtype uint16) result {
	var r result
	switch e.kind {
	case kindClusterIP:
		for _, p := range e.ports {
			if p.name != port || p.proto != proto {
				continue
			}
			target := e.fqdn(z.domain)
			r.answer = append(r.answer, &dns.SRV{Hdr: z.hdr(qname, dns.TypeSRV), Priority: 0, Weight: 100, Port: p.port, Target: target})
			for _, ip := range e.clusterIPs {
				r.extra = append(r.extra, z.addrRecord(target, ip, addrType(ip)))
			}
		}
	case kindHeadless:
		type srvTarget struct {
			ep   endpointInfo
			port uint16
		}
		var targets []srvTarget
		for _, ep := range e.endpoints {
			for _, p := range ep.ports {
				if p.name == port && p.proto == proto {
					targets = append(targets, srvTarget{ep, p.port})
				}
			}
		}
		weight := uint16(1)
		if len(targets) > 0 && len(targets) < 100 {
			weight = uint16(100 / len(targets))
		}
		type srvKey struct {
			target string
			port   uint16
		}
		seen := map[srvKey]bool{}
		for _, t := range targets {
			target := t.ep.host + "." + e.fqdn(z.domain)
			if k := (srvKey{target, t.port}); !seen[k] {
				seen[k] = true
				r.answer = append(r.answer, &dns.SRV{Hdr: z.hdr(qname, dns.TypeSRV), Priority: 0, Weight: weight, Port: t.port, Target: target})
			}
			r.extra = append(r.extra, z.addrRecord(target, t.ep.ip, addrType(t.ep.ip)))
		}
	}
	if len(r.answer) == 0 {
		return nxdomain
	}
	if qtype != dns.TypeSRV {
		return nodata
	}
	r.extra = dedupe(r.extra)
	return r
}

func addrType(ip netip.Addr) uint16 {
	if ip.Is4() {
		return dns.TypeA
	}
	return dns.TypeAAAA
}

// dedupe drops repeated address records (same owner and address), keeping
// the first of each.
func dedupe(rrs []dns.RR) []dns.RR {
	type key struct {
		name string
		ip   string
	}
	seen := make(map[key]bool, len(rrs))
	out := rrs[:0]
	for _, rr := range rrs {
		var k key
		switch v := rr.(type) {
		case *dns.A:
			k = key{strings.ToLower(v.Hdr.Name), v.A.String()}
		case *dns.AAAA:
			k = key{strings.ToLower(v.Hdr.Name), v.AAAA.String()}
		default:
			out = append(out, rr)
			continue
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, rr)
		}
	}
	return out
}
