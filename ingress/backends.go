package ingress

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// Annotation prefixes: Skiff's own first, then ingress-nginx's.
const (
	skiffPrefix = "skiff.sh/"
	nginxPrefix = "nginx.ingress.kubernetes.io/"
)

// annotation reads skiff.sh/<key>, falling back to
// nginx.ingress.kubernetes.io/<key>.
func annotation(ing *networkingv1.Ingress, key string) (string, bool) {
	if v, ok := ing.Annotations[skiffPrefix+key]; ok {
		return v, true
	}
	v, ok := ing.Annotations[nginxPrefix+key]
	return v, ok
}

func parseBool(v string) (bool, error) {
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		return false, fmt.Errorf("not a boolean")
	}
	return b, nil
}

// isCanary reports whether the Ingress is a canary (canary: "true").
func isCanary(ing *networkingv1.Ingress) bool {
	v, ok := annotation(ing, "canary")
	if !ok {
		return false
	}
	b, err := parseBool(v)
	return err == nil && b
}

// canarySettings reads the canary annotations; bad numbers are reported
// and read as 0 (weight) or 100 (total).
func (b *builder) canarySettings(ing *networkingv1.Ingress) Canary {
	c := Canary{Ingress: keyOf(ing), Total: 100}
	if v, ok := annotation(ing, "canary-weight-total"); ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n <= 0 {
			b.problem(ing, ReasonBadAnnotation, "canary-weight-total %q is not a positive integer; using 100", v)
		} else {
			c.Total = n
		}
	}
	if v, ok := annotation(ing, "canary-weight"); ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 || n > c.Total {
			b.problem(ing, ReasonBadAnnotation, "canary-weight %q is not an integer from 0 to %d; using 0", v, c.Total)
		} else {
			c.Weight = n
		}
	}
	c.Header, _ = annotation(ing, "canary-by-header")
	c.HeaderValue, _ = annotation(ing, "canary-by-header-value")
	c.Cookie, _ = annotation(ing, "canary-by-cookie")
	return c
}

// backend resolves an IngressBackend of ing to its endpoints. It returns
// nil for a backend that can never work (a resource backend, nothing
// named); a Service that is missing or lacks the port gives an empty
// Backend, which answers 503 until the Service is fixed.
func (b *builder) backend(ing *networkingv1.Ingress, ib networkingv1.IngressBackend) *Backend {
	sb := ib.Service
	if sb == nil || sb.Name == "" {
		b.problem(ing, ReasonUnsupportedBackend, "backend without a service (resource backends are not supported); ignored")
		return nil
	}
	scheme := "http"
	if v, ok := annotation(ing, "backend-protocol"); ok {
		switch strings.ToUpper(strings.TrimSpace(v)) {
		case "HTTP":
		case "HTTPS":
			scheme = "https"
		default:
			b.problem(ing, ReasonBadAnnotation, "backend-protocol %q is not supported (HTTP or HTTPS); using HTTP", v)
		}
	}
	port := sb.Port.Name
	if port == "" {
		port = strconv.Itoa(int(sb.Port.Number))
	}
	key := ing.Namespace + "/" + sb.Name + ":" + port + "/" + scheme
	res, ok := b.backends[key]
	if !ok {
		res = b.s.resolve(ing.Namespace, sb, scheme)
		b.backends[key] = res
	}
	if res.reason != "" {
		b.problem(ing, res.reason, "%s", res.message)
	}
	return res.backend
}

// resolved is a Backend and what is wrong with it, if anything.
type resolved struct {
	backend         *Backend
	reason, message string
}

// resolve finds the targets of a Service port in namespace.
func (s Snapshot) resolve(namespace string, sb *networkingv1.IngressServiceBackend, scheme string) resolved {
	port := sb.Port.Name
	if port == "" {
		port = strconv.Itoa(int(sb.Port.Number))
	}
	be := &Backend{Name: namespace + "/" + sb.Name + ":" + port, Scheme: scheme}
	svc := s.Service(namespace, sb.Name)
	if svc == nil {
		return resolved{be, ReasonServiceNotFound, fmt.Sprintf("service %s/%s not found", namespace, sb.Name)}
	}
	noPort := resolved{be, ReasonServicePortNotFound, fmt.Sprintf("service %s/%s has no port %s", namespace, sb.Name, port)}
	sp, ok := servicePort(svc, sb.Port)
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		p := sb.Port.Number
		if ok {
			p = sp.Port
		}
		if p == 0 {
			return noPort
		}
		be.Targets = []string{net.JoinHostPort(svc.Spec.ExternalName, strconv.Itoa(int(p)))}
		return resolved{backend: be}
	}
	if !ok {
		return noPort
	}
	be.Targets = readyTargets(s.EndpointSlices(namespace, sb.Name), sp.Name)
	return resolved{backend: be}
}

// servicePort finds the Service port an Ingress backend names.
func servicePort(svc *corev1.Service, p networkingv1.ServiceBackendPort) (corev1.ServicePort, bool) {
	for _, sp := range svc.Spec.Ports {
		if p.Name != "" && sp.Name == p.Name || p.Name == "" && p.Number != 0 && sp.Port == p.Number {
			return sp, true
		}
	}
	return corev1.ServicePort{}, false
}

// readyTargets lists "ip:port" of the ready endpoints in slices for the
// Service port named portName, sorted and without duplicates. An endpoint
// whose ready condition is unset counts as ready, as the API defines.
func readyTargets(slices []*discoveryv1.EndpointSlice, portName string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range slices {
		if s.AddressType != discoveryv1.AddressTypeIPv4 && s.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		var port int32
		for _, p := range s.Ports {
			name := ""
			if p.Name != nil {
				name = *p.Name
			}
			proto := corev1.ProtocolTCP
			if p.Protocol != nil {
				proto = *p.Protocol
			}
			if name == portName && proto == corev1.ProtocolTCP && p.Port != nil {
				port = *p.Port
				break
			}
		}
		if port == 0 {
			continue
		}
		ps := strconv.Itoa(int(port))
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			for _, a := range ep.Addresses {
				t := net.JoinHostPort(a, ps)
				if !seen[t] {
					seen[t] = true
					out = append(out, t)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}
