package ingress

import (
	"crypto/tls"
	"errors"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Snapshot is everything Build reads. The functions return nil when the
// object does not exist.
type Snapshot struct {
	// ClassName is the served IngressClass (Config.ClassName).
	ClassName string
	// Ingresses of every class; Build picks the served ones.
	Ingresses []*networkingv1.Ingress
	Classes   []*networkingv1.IngressClass
	Service   func(namespace, name string) *corev1.Service
	// EndpointSlices returns the slices labelled with the Service's name.
	EndpointSlices func(namespace, service string) []*discoveryv1.EndpointSlice
	// Certificate loads the kubernetes.io/tls Secret namespace/name; the
	// error wraps ErrSecretNotFound when there is no such Secret.
	Certificate func(namespace, name string) (*tls.Certificate, error)
}

// ErrSecretNotFound is wrapped by Snapshot.Certificate for a missing Secret.
var ErrSecretNotFound = errors.New("secret not found")

// Problem is something wrong with one Ingress, reported as a Warning event
// on it. The rest of the table works regardless.
type Problem struct {
	Ingress *networkingv1.Ingress
	Reason  string
	Message string
}

// Problem reasons.
const (
	ReasonServiceNotFound     = "ServiceNotFound"
	ReasonServicePortNotFound = "ServicePortNotFound"
	ReasonUnsupportedBackend  = "UnsupportedBackend"
	ReasonRouteConflict       = "RouteConflict"
	ReasonDefaultConflict     = "DefaultBackendConflict"
	ReasonCanaryWithoutMain   = "CanaryWithoutMain"
	ReasonCanaryConflict      = "CanaryConflict"
	ReasonBadAnnotation       = "BadAnnotation"
	ReasonBadPath             = "BadPath"
	ReasonSecretNotFound      = "SecretNotFound"
	ReasonBadTLSSecret        = "BadTLSSecret"
)

// builder holds the table under construction.
type builder struct {
	s        Snapshot
	t        *Table
	backends map[string]resolved
	problems []Problem
	seen     map[string]bool // dedupes problems
}

// Build makes the routing table from a snapshot: pure, with no I/O but the
// snapshot's lookups. Ingresses are considered oldest first (creation time,
// then namespace and name), so the oldest wins every conflict.
func Build(s Snapshot) (*Table, []Problem) {
	if s.ClassName == "" {
		s.ClassName = DefaultClassName
	}
	b := &builder{
		s: s,
		t: &Table{
			hosts:        map[string]*hostRoutes{},
			wildcards:    map[string]*hostRoutes{},
			tlsHosts:     map[string]bool{},
			tlsWildcards: map[string]bool{},
			certs:        map[string]*tls.Certificate{},
			wildCerts:    map[string]*tls.Certificate{},
		},
		backends: map[string]resolved{},
		seen:     map[string]bool{},
	}
	cls := classesFor(s.ClassName, s.Classes)
	var mains, canaries []*networkingv1.Ingress
	for _, ing := range sortedIngresses(s.Ingresses) {
		if !cls.serves(ing) {
			continue
		}
		b.t.served = append(b.t.served, &servedIngress{Key: keyOf(ing), UID: ing.UID})
		if isCanary(ing) {
			canaries = append(canaries, ing)
		} else {
			mains = append(mains, ing)
		}
	}
	for _, ing := range mains {
		b.addRules(ing)
	}
	for _, ing := range mains {
		b.addDefault(ing)
		b.addTLS(ing)
	}
	for _, ing := range canaries {
		b.addCanary(ing)
	}
	return b.t, b.problems
}

// sortedIngresses orders ingresses oldest first.
func sortedIngresses(in []*networkingv1.Ingress) []*networkingv1.Ingress {
	out := append([]*networkingv1.Ingress(nil), in...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	return out
}

func keyOf(ing *networkingv1.Ingress) types.NamespacedName {
	return types.NamespacedName{Namespace: ing.Namespace, Name: ing.Name}
}

func (b *builder) problem(ing *networkingv1.Ingress, reason, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	k := ing.Namespace + "/" + ing.Name + "\x00" + reason + "\x00" + msg
	if b.seen[k] {
		return
	}
	b.seen[k] = true
	b.problems = append(b.problems, Problem{Ingress: ing, Reason: reason, Message: msg})
}

// group returns the hostRoutes for a rule's host, creating it.
func (b *builder) group(host string) *hostRoutes {
	host = strings.ToLower(host)
	m := b.t.hosts
	switch {
	case host == "":
		if b.t.anyHost == nil {
			b.t.anyHost = newHostRoutes()
		}
		return b.t.anyHost
	case strings.HasPrefix(host, "*."):
		m, host = b.t.wildcards, host[2:]
	}
	g := m[host]
	if g == nil {
		g = newHostRoutes()
		m[host] = g
	}
	return g
}

// lookupGroup returns the hostRoutes for a rule's host, nil when none.
func (b *builder) lookupGroup(host string) *hostRoutes {
	host = strings.ToLower(host)
	switch {
	case host == "":
		return b.t.anyHost
	case strings.HasPrefix(host, "*."):
		return b.t.wildcards[host[2:]]
	}
	return b.t.hosts[host]
}

func newHostRoutes() *hostRoutes {
	return &hostRoutes{exact: map[string]*Route{}, prefix: map[string]*Route{}}
}

// pathKey is how a rule's path is stored: exact paths as written, prefixes
// without trailing slashes. ok is false for a path that cannot match.
func pathKey(p networkingv1.HTTPIngressPath) (exact bool, key string, ok bool) {
	pt := networkingv1.PathTypeImplementationSpecific
	if p.PathType != nil {
		pt = *p.PathType
	}
	v := p.Path
	if v == "" {
		v = "/"
	}
	if v[0] != '/' {
		return false, "", false
	}
	switch pt {
	case networkingv1.PathTypeExact:
		return true, v, true
	case networkingv1.PathTypePrefix, networkingv1.PathTypeImplementationSpecific:
		return false, strings.TrimRight(v, "/"), true
	}
	return false, "", false
}

// describe names a rule path for messages.
func describe(host string, p networkingv1.HTTPIngressPath) string {
	pt := networkingv1.PathTypeImplementationSpecific
	if p.PathType != nil {
		pt = *p.PathType
	}
	if host == "" {
		host = "*"
	}
	return fmt.Sprintf("host %s path %s (%s)", host, p.Path, pt)
}

// addRules adds the paths of a non-canary Ingress, skipping those an older
// Ingress (or an earlier rule of the same one) already has.
func (b *builder) addRules(ing *networkingv1.Ingress) {
	redirect, force := b.redirectFlags(ing)
	for _, rule := range ing.Spec.Rules {
		if rule.HTTP == nil {
			continue
		}
		for _, p := range rule.HTTP.Paths {
			exact, key, ok := pathKey(p)
			if !ok {
				b.problem(ing, ReasonBadPath, "%s: unsupported path or path type; ignored", describe(rule.Host, p))
				continue
			}
			be := b.backend(ing, p.Backend)
			if be == nil {
				continue
			}
			g := b.group(rule.Host)
			m := g.prefix
			if exact {
				m = g.exact
			}
			if old := m[key]; old != nil {
				if old.Ingress == keyOf(ing) {
					b.problem(ing, ReasonRouteConflict, "%s is listed twice; the first one is used", describe(rule.Host, p))
				} else {
					b.problem(ing, ReasonRouteConflict, "%s is already served by the older Ingress %s; ignored", describe(rule.Host, p), old.Ingress)
				}
				continue
			}
			m[key] = &Route{Ingress: keyOf(ing), Backend: be, SSLRedirect: redirect, ForceSSLRedirect: force}
		}
	}
}

// redirectFlags reads the ssl-redirect annotations (default: redirect when
// the host has TLS; never force).
func (b *builder) redirectFlags(ing *networkingv1.Ingress) (redirect, force bool) {
	redirect, force = true, false
	if v, ok := annotation(ing, "ssl-redirect"); ok {
		if bv, err := parseBool(v); err == nil {
			redirect = bv
		} else {
			b.problem(ing, ReasonBadAnnotation, "ssl-redirect %q: %v", v, err)
		}
	}
	if v, ok := annotation(ing, "force-ssl-redirect"); ok {
		if bv, err := parseBool(v); err == nil {
			force = bv
		} else {
			b.problem(ing, ReasonBadAnnotation, "force-ssl-redirect %q: %v", v, err)
		}
	}
	return redirect, force
}

// addDefault uses the Ingress's defaultBackend for its own hosts and, when
// no older Ingress has one, for everything.
func (b *builder) addDefault(ing *networkingv1.Ingress) {
	if ing.Spec.DefaultBackend == nil {
		return
	}
	be := b.backend(ing, *ing.Spec.DefaultBackend)
	if be == nil {
		return
	}
	redirect, force := b.redirectFlags(ing)
	r := &Route{Ingress: keyOf(ing), Backend: be, SSLRedirect: redirect, ForceSSLRedirect: force}
	hasHosts := false
	for _, rule := range ing.Spec.Rules {
		if rule.Host == "" {
			continue
		}
		hasHosts = true
		if g := b.group(rule.Host); g.fallback == nil {
			g.fallback = r
		}
	}
	switch {
	case b.t.fallback == nil:
		b.t.fallback = r
	case !hasHosts:
		b.problem(ing, ReasonDefaultConflict, "the cluster's default backend is already set by the older Ingress %s; spec.defaultBackend ignored", b.t.fallback.Ingress)
	}
}

// addCanary attaches a canary Ingress's paths to the routes of the same
// host and path.
func (b *builder) addCanary(ing *networkingv1.Ingress) {
	c := b.canarySettings(ing)
	for _, rule := range ing.Spec.Rules {
		if rule.HTTP == nil {
			continue
		}
		for _, p := range rule.HTTP.Paths {
			exact, key, ok := pathKey(p)
			if !ok {
				b.problem(ing, ReasonBadPath, "%s: unsupported path or path type; ignored", describe(rule.Host, p))
				continue
			}
			var main *Route
			if g := b.lookupGroup(rule.Host); g != nil {
				if exact {
					main = g.exact[key]
				} else {
					main = g.prefix[key]
				}
			}
			if main == nil {
				b.problem(ing, ReasonCanaryWithoutMain, "canary %s: no other Ingress serves this host and path; ignored", describe(rule.Host, p))
				continue
			}
			if main.Canary != nil {
				b.problem(ing, ReasonCanaryConflict, "canary %s: the older Ingress %s is already its canary; ignored", describe(rule.Host, p), main.Canary.Ingress)
				continue
			}
			be := b.backend(ing, p.Backend)
			if be == nil {
				continue
			}
			cc := c
			cc.Backend = be
			main.Canary = &cc
		}
	}
}

// addTLS records the Ingress's TLS hosts and loads their certificates.
func (b *builder) addTLS(ing *networkingv1.Ingress) {
	for _, entry := range ing.Spec.TLS {
		hosts := entry.Hosts
		if len(hosts) == 0 {
			for _, r := range ing.Spec.Rules {
				if r.Host != "" {
					hosts = append(hosts, r.Host)
				}
			}
		}
		for _, h := range hosts {
			h = strings.ToLower(h)
			if w, ok := strings.CutPrefix(h, "*."); ok {
				b.t.tlsWildcards[w] = true
			} else {
				b.t.tlsHosts[h] = true
			}
		}
		if entry.SecretName == "" {
			continue
		}
		cert, err := b.s.Certificate(ing.Namespace, entry.SecretName)
		if err != nil {
			reason := ReasonBadTLSSecret
			if errors.Is(err, ErrSecretNotFound) {
				reason = ReasonSecretNotFound
			}
			b.problem(ing, reason, "tls secret %s/%s: %v; serving the default certificate", ing.Namespace, entry.SecretName, err)
			continue
		}
		if len(hosts) == 0 && b.t.defaultCert == nil {
			b.t.defaultCert = cert
		}
		for _, h := range hosts {
			h = strings.ToLower(h)
			m := b.t.certs
			if w, ok := strings.CutPrefix(h, "*."); ok {
				m, h = b.t.wildCerts, w
			}
			if m[h] == nil {
				m[h] = cert
			}
		}
	}
}
