package ingress

import (
	"context"
	"net"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// references are the "namespace/name"s of the Services and Secrets that
// Ingresses (of any class) refer to: changes to other objects cannot
// change the table.
type references struct {
	services map[string]bool
	secrets  map[string]bool
}

func referencesOf(ings []*networkingv1.Ingress) *references {
	r := &references{services: map[string]bool{}, secrets: map[string]bool{}}
	add := func(ns string, b *networkingv1.IngressBackend) {
		if b != nil && b.Service != nil {
			r.services[ns+"/"+b.Service.Name] = true
		}
	}
	for _, ing := range ings {
		add(ing.Namespace, ing.Spec.DefaultBackend)
		for _, rule := range ing.Spec.Rules {
			if rule.HTTP == nil {
				continue
			}
			for i := range rule.HTTP.Paths {
				add(ing.Namespace, &rule.HTTP.Paths[i].Backend)
			}
		}
		for _, t := range ing.Spec.TLS {
			if t.SecretName != "" {
				r.secrets[ing.Namespace+"/"+t.SecretName] = true
			}
		}
	}
	return r
}

// report logs the problems that are new since the last build and, on the
// status writer, records them as Warning events on their Ingresses.
// Problems that went away are forgotten, so they are reported again should
// they come back.
func (c *Controller) report(problems []Problem) {
	now := map[string]map[string]bool{}
	for _, p := range problems {
		owner, k := problemOwner(p.Ingress), p.Reason+"\x00"+p.Message
		if now[owner] == nil {
			now[owner] = map[string]bool{}
		}
		now[owner][k] = true
		if c.reported[owner][k] {
			continue
		}
		c.log.Warn("ingress: "+p.Message, "ingress", p.Ingress.Namespace+"/"+p.Ingress.Name, "reason", p.Reason)
		if c.events != nil {
			c.events.Event(p.Ingress, corev1.EventTypeWarning, p.Reason, p.Message)
		}
	}
	c.reported = now
}

// problemOwner identifies an Ingress for report: a recreated Ingress is a
// new one.
func problemOwner(ing *networkingv1.Ingress) string {
	return ing.Namespace + "/" + ing.Name + "/" + string(ing.UID)
}

// loadBalancerStatus turns node addresses into status entries: IPs as ip,
// anything else as hostname; IPs first, each kind sorted, no duplicates.
func loadBalancerStatus(addrs []string) []networkingv1.IngressLoadBalancerIngress {
	var out []networkingv1.IngressLoadBalancerIngress
	seen := map[string]bool{}
	for _, a := range addrs {
		a = strings.TrimSpace(a)
		if a == "" || seen[a] {
			continue
		}
		seen[a] = true
		if net.ParseIP(a) != nil {
			out = append(out, networkingv1.IngressLoadBalancerIngress{IP: a})
		} else {
			out = append(out, networkingv1.IngressLoadBalancerIngress{Hostname: a})
		}
	}
	slices.SortFunc(out, func(x, y networkingv1.IngressLoadBalancerIngress) int {
		if (x.IP == "") != (y.IP == "") {
			if x.IP != "" {
				return -1
			}
			return 1
		}
		return strings.Compare(x.IP+x.Hostname, y.IP+y.Hostname)
	})
	return out
}

// sameAddresses compares status entries by ip and hostname.
func sameAddresses(a, b []networkingv1.IngressLoadBalancerIngress) bool {
	return slices.EqualFunc(a, b, func(x, y networkingv1.IngressLoadBalancerIngress) bool {
		return x.IP == y.IP && x.Hostname == y.Hostname
	})
}

// syncStatus writes the node addresses to the status of every served
// Ingress whose status differs. Failures are logged; the next change or
// the periodic resync tries again.
func (c *Controller) syncStatus(ctx context.Context, t *Table) {
	if c.cfg.NodeAddresses == nil {
		return
	}
	want := loadBalancerStatus(c.cfg.NodeAddresses())
	for _, s := range t.served {
		ing, err := c.ingresses.Ingresses(s.Key.Namespace).Get(s.Key.Name)
		if err != nil || ing.UID != s.UID || sameAddresses(ing.Status.LoadBalancer.Ingress, want) {
			continue
		}
		ing = ing.DeepCopy()
		ing.Status.LoadBalancer.Ingress = want
		_, err = c.client.NetworkingV1().Ingresses(ing.Namespace).UpdateStatus(ctx, ing, metav1.UpdateOptions{})
		switch {
		case err == nil:
		case apierrors.IsNotFound(err), apierrors.IsConflict(err), ctx.Err() != nil:
			// Gone, or changed under us: the informer brings the news.
		default:
			c.log.Error("ingress: update status", "ingress", s.Key.String(), "err", err)
		}
	}
}
