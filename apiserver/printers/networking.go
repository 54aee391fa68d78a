package printers

import (
	"strconv"
	"strings"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
)

// networkingPrinters covers networking.k8s.io and discovery.k8s.io.
func networkingPrinters() map[schema.GroupKind]kindPrinter {
	net := func(kind string) schema.GroupKind { return schema.GroupKind{Group: "networking.k8s.io", Kind: kind} }
	return map[schema.GroupKind]kindPrinter{
		net("Ingress"): printer([]metav1.TableColumnDefinition{
			nameColumn(),
			column("Class", typeString, "The ingress class that handles the ingress."),
			column("Hosts", typeString, "The host names the rules match."),
			column("Address", typeString, "Where the load balancer serving the ingress can be reached."),
			column("Ports", typeString, "The ports served: 80, and 443 when TLS is configured."),
			ageColumn(),
		}, ingressCells),
		net("IngressClass"): printer([]metav1.TableColumnDefinition{
			nameColumn(),
			column("Controller", typeString, "The controller that implements the class."),
			column("Parameters", typeString, "The object holding the class's extra configuration."),
			ageColumn(),
		}, func(c *networkingv1.IngressClass, now time.Time) []interface{} {
			params := none
			if p := c.Spec.Parameters; p != nil {
				params = p.Kind
				if p.APIGroup != nil {
					params += "." + *p.APIGroup
				}
				params += "/" + p.Name
			}
			return []interface{}{c.Name, c.Spec.Controller, params, since(c.CreationTimestamp, now)}
		}),
		net("NetworkPolicy"): printer([]metav1.TableColumnDefinition{
			nameColumn(),
			column("Pod-Selector", typeString, "The labels of the pods the policy applies to."),
			ageColumn(),
		}, func(p *networkingv1.NetworkPolicy, now time.Time) []interface{} {
			return []interface{}{p.Name, metav1.FormatLabelSelector(&p.Spec.PodSelector), since(p.CreationTimestamp, now)}
		}),
		{Group: "discovery.k8s.io", Kind: "EndpointSlice"}: printer([]metav1.TableColumnDefinition{
			nameColumn(),
			column("AddressType", typeString, "IPv4, IPv6 or FQDN."),
			column("Ports", typeString, "The first few ports of the slice."),
			column("Endpoints", typeString, "The first few endpoint addresses of the slice."),
			ageColumn(),
		}, endpointSliceCells),
	}
}

func ingressCells(in *networkingv1.Ingress, now time.Time) []interface{} {
	addrs := sets.New[string]()
	for _, lb := range in.Status.LoadBalancer.Ingress {
		switch {
		case lb.IP != "":
			addrs.Insert(lb.IP)
		case lb.Hostname != "":
			addrs.Insert(lb.Hostname)
		}
	}
	ports := "80"
	if len(in.Spec.TLS) > 0 {
		ports = "80, 443"
	}
	return []interface{}{
		in.Name,
		strOr(in.Spec.IngressClassName, none),
		ingressHosts(in.Spec.Rules),
		strings.Join(sets.List(addrs), ","),
		ports,
		since(in.CreationTimestamp, now),
	}
}

// ingressHosts lists the rule hosts until it has a few; "*" when no rule
// names one. Any rule after that makes it add how many rules, hosts or
// not, lie past the first few.
func ingressHosts(rules []networkingv1.IngressRule) string {
	var hosts []string
	more := false
	for _, r := range rules {
		if len(hosts) == listMax {
			more = true
			break
		}
		if r.Host != "" {
			hosts = append(hosts, r.Host)
		}
	}
	if len(hosts) == 0 {
		return "*"
	}
	if more {
		return strings.Join(hosts, ",") + " + " + strconv.Itoa(len(rules)-listMax) + " more..."
	}
	return strings.Join(hosts, ",")
}

func endpointSliceCells(s *discoveryv1.EndpointSlice, now time.Time) []interface{} {
	ports := make([]string, 0, len(s.Ports))
	for _, p := range s.Ports {
		switch {
		case p.Port != nil:
			ports = append(ports, strconv.Itoa(int(*p.Port)))
		case p.Name != nil:
			ports = append(ports, *p.Name)
		default:
			ports = append(ports, "*")
		}
	}
	var addrs []string
	for _, e := range s.Endpoints {
		addrs = append(addrs, e.Addresses...)
	}
	return []interface{}{s.Name, string(s.AddressType), orUnset(joinLimited(ports, listMax)),
		orUnset(joinLimited(addrs, listMax)), since(s.CreationTimestamp, now)}
}

func orUnset(s string) string {
	if s == "" {
		return unset
	}
	return s
}
