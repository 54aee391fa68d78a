package why

// service.go answers "why does my Service not answer?". ExplainService
// follows a connection's path: the Service's kind (ExternalName, headless),
// whether it has ready endpoints, why its pods are or are not among them
// (selector, readiness, named target ports), how traffic from outside gets
// in (LoadBalancer, NodePort, traffic policies), and which NetworkPolicies
// stand in front of the pods.

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// maxListed bounds the pods, addresses and nodes one finding names.
const maxListed = 5

// Finding ranks: the lead findings (what the Service is and whether it has
// endpoints) come first, then problems, then notes, each in the order found.
const (
	rankLead = iota
	rankProblem
	rankNote
)

// svcReport collects a Service's findings; any problem clears OK.
type svcReport struct {
	Report
	ranks []int
}

func (r *svcReport) add(rank int, problem bool, summary string, details ...string) {
	if problem {
		r.OK = false
	}
	r.Findings = append(r.Findings, Finding{Summary: summary, Details: details})
	r.ranks = append(r.ranks, rank)
}

func (r *svcReport) problem(summary string, details ...string) {
	r.add(rankProblem, true, summary, details...)
}

func (r *svcReport) note(summary string, details ...string) {
	r.add(rankNote, false, summary, details...)
}

// done orders the findings by rank, keeping the order within a rank.
func (r *svcReport) done() Report {
	idx := make([]int, len(r.Findings))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return r.ranks[idx[a]] < r.ranks[idx[b]] })
	out := make([]Finding, len(idx))
	for i, j := range idx {
		out[i] = r.Findings[j]
	}
	r.Findings = out
	return r.Report
}

// ExplainService looks at a Service. pods are all the pods of the Service's
// namespace (those its selector misses help spot typos), slices the
// EndpointSlices labelled kubernetes.io/service-name with its name, and
// policies the NetworkPolicies of its namespace. OK is true when nothing
// was found that keeps a client from a ready endpoint.
func ExplainService(svc *corev1.Service, pods []corev1.Pod, slices []discoveryv1.EndpointSlice, policies []networkingv1.NetworkPolicy, now time.Time) Report {
	r := &svcReport{Report: Report{Subject: "service " + svc.Namespace + "/" + svc.Name, OK: true}}

	if svc.DeletionTimestamp != nil {
		d := []string{fmt.Sprintf("deletion requested %s ago", duration.HumanDuration(now.Sub(svc.DeletionTimestamp.Time)))}
		if len(svc.Finalizers) > 0 {
			d = append(d, "finalizers still hold it: "+strings.Join(svc.Finalizers, ", "))
		}
		r.add(rankLead, true, "the Service is being deleted", d...)
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		r.externalName(svc)
		return r.done()
	}

	headless := svc.Spec.ClusterIP == corev1.ClusterIPNone
	if headless {
		r.add(rankLead, false, fmt.Sprintf("headless (clusterIP None): no virtual IP; DNS answers %s.%s.svc with the ready pods' own addresses", svc.Name, svc.Namespace),
			"clients connect to the pods directly, on the pods' ports: nothing proxies or remaps ports")
	}

	t := tallyEndpoints(slices)
	selectorless := len(svc.Spec.Selector) == 0
	var selected []corev1.Pod
	if !selectorless {
		selected = matchingPods(svc, pods)
	}
	r.endpointStatus(svc, t, headless, selectorless, selected)

	switch {
	case selectorless:
		r.selectorless(svc, t)
	case len(selected) == 0:
		r.noMatch(svc, pods)
	default:
		r.unready(svc, selected, now)
		r.targetPorts(svc, selected)
	}
	r.loadBalancer(svc)
	r.trafficPolicies(svc, t)
	r.networkPolicies(selected, policies)
	r.nodePorts(svc)
	if svc.Spec.PublishNotReadyAddresses {
		r.note("publishNotReadyAddresses is set: every pod counts as ready for this Service, so traffic and DNS reach pods that may not listen yet")
	}
	return r.done()
}

// externalName explains a Service that is only a DNS alias.
func (r *svcReport) externalName(svc *corev1.Service) {
	target := svc.Spec.ExternalName
	if net.ParseIP(target) != nil {
		r.problem(fmt.Sprintf("externalName %s is an IP address, but DNS publishes it as a CNAME, i.e. a host name clients then fail to resolve", target),
			"for a fixed address use a Service without selector and an EndpointSlice (labelled kubernetes.io/service-name="+svc.Name+") that holds it")
		return
	}
	r.add(rankLead, false, fmt.Sprintf("ExternalName: answered by cluster DNS alone, %s.%s.svc is a CNAME to %s", svc.Name, svc.Namespace, target),
		"nothing proxies it and it has no endpoints: clients connect straight to "+target+" on the port they dial",
		"if that fails, look at "+target+" and at resolving it, not at the cluster")
}

// endpointTally is what the EndpointSlices say, each endpoint counted once
// even when dual-stack slices list it twice.
type endpointTally struct {
	slices, total                        int
	ready, drainingServing, draining, no int
	readyAddrs, readyNodes               []string
}

func tallyEndpoints(slices []discoveryv1.EndpointSlice) endpointTally {
	t := endpointTally{slices: len(slices)}
	seen := map[string]bool{}
	nodes := map[string]bool{}
	for _, s := range slices {
		for _, ep := range s.Endpoints {
			key := strings.Join(ep.Addresses, ",")
			if ep.TargetRef != nil {
				key = ep.TargetRef.Kind + "/" + ep.TargetRef.Namespace + "/" + ep.TargetRef.Name
			}
			if seen[key] {
				continue
			}
			seen[key] = true
			t.total++
			c := ep.Conditions
			ready := c.Ready == nil || *c.Ready
			serving := ready
			if c.Serving != nil {
				serving = *c.Serving
			}
			terminating := c.Terminating != nil && *c.Terminating
			switch {
			case ready:
				t.ready++
				if len(ep.Addresses) > 0 {
					t.readyAddrs = append(t.readyAddrs, ep.Addresses[0])
				}
				if ep.NodeName != nil && *ep.NodeName != "" {
					nodes[*ep.NodeName] = true
				}
			case terminating && serving:
				t.drainingServing++
			case terminating:
				t.draining++
			default:
				t.no++
			}
		}
	}
	for n := range nodes {
		t.readyNodes = append(t.readyNodes, n)
	}
	sort.Strings(t.readyNodes)
	sortAddrs(t.readyAddrs)
	return t
}

func (t endpointTally) counts() string {
	if t.total == 0 {
		return "endpoints: none"
	}
	var parts []string
	for _, c := range []struct {
		n    int
		what string
	}{{t.ready, "ready"}, {t.drainingServing, "terminating but still serving"}, {t.draining, "terminating"}, {t.no, "not ready"}} {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c.n, c.what))
		}
	}
	return "endpoints: " + strings.Join(parts, ", ")
}

// endpointStatus is the lead finding: does the Service have a ready
// endpoint, and where does it answer.
func (r *svcReport) endpointStatus(svc *corev1.Service, t endpointTally, headless, selectorless bool, selected []corev1.Pod) {
	var d []string
	if !headless && svc.Spec.ClusterIP != "" {
		d = append(d, fmt.Sprintf("clusterIP %s, ports %s", svc.Spec.ClusterIP, portList(svc.Spec.Ports)))
	}
	d = append(d, t.counts())
	if t.slices == 0 && !selectorless {
		d = append(d, "no EndpointSlice exists for it yet: the endpoints controller has not written one")
	}
	if t.ready > 0 {
		r.add(rankLead, false, fmt.Sprintf("%d ready %s: %s", t.ready, plural(t.ready, "endpoint", "endpoints"), listSome(t.readyAddrs)), d...)
		return
	}
	if readyPods := countReady(selected); readyPods > 0 && t.slices > 0 {
		d = append(d, fmt.Sprintf("%d matching %s ready but no EndpointSlice lists %s as ready yet", readyPods, plural(readyPods, "pod is", "pods are"), plural(readyPods, "it", "them")))
	}
	switch {
	case t.drainingServing > 0:
		r.add(rankLead, true, fmt.Sprintf("no ready endpoint: new connections go to the %d terminating %s, until they stop", t.drainingServing, plural(t.drainingServing, "endpoint that still serves", "endpoints that still serve")), d...)
	case headless:
		r.add(rankLead, true, "no ready endpoint: DNS has no address to return for it", d...)
	default:
		r.add(rankLead, true, "no ready endpoint: new connections to the Service are rejected (connection refused)", d...)
	}
}

// selectorless explains a Service whose endpoints someone else maintains.
func (r *svcReport) selectorless(svc *corev1.Service, t endpointTally) {
	where := "EndpointSlices labelled " + discoveryv1.LabelServiceName + "=" + svc.Name
	if t.total == 0 {
		r.problem("the Service has no selector, so nothing creates endpoints for it, and no EndpointSlice gives it any: traffic to it is rejected",
			"its endpoints are whatever "+where+" hold: create one, or give the Service a selector")
		return
	}
	r.note(fmt.Sprintf("the Service has no selector: its endpoints come from the %d %s labelled %s=%s, which Skiff does not maintain",
		t.slices, plural(t.slices, "EndpointSlice", "EndpointSlices"), discoveryv1.LabelServiceName, svc.Name))
}

func matchingPods(svc *corev1.Service, pods []corev1.Pod) []corev1.Pod {
	sel := labels.SelectorFromSet(svc.Spec.Selector)
	var out []corev1.Pod
	for _, p := range pods {
		if p.Namespace == svc.Namespace && sel.Matches(labels.Set(p.Labels)) {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// noMatch explains a selector that matches nothing, pointing at pods that
// carry the same label keys with other values.
func (r *svcReport) noMatch(svc *corev1.Service, pods []corev1.Pod) {
	sel := labels.SelectorFromSet(svc.Spec.Selector)
	keys := make([]string, 0, len(svc.Spec.Selector))
	for k := range svc.Spec.Selector {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var similar []string
	sorted := append([]corev1.Pod(nil), pods...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, p := range sorted {
		var shared []string
		for _, k := range keys {
			if v, ok := p.Labels[k]; ok {
				shared = append(shared, k+"="+v)
			}
		}
		if len(shared) > 0 {
			similar = append(similar, fmt.Sprintf("%s (%s)", p.Name, strings.Join(shared, ",")))
		}
	}
	d := []string{"selector: " + sel.String()}
	if len(similar) == 0 {
		d = append(d, fmt.Sprintf("no pod in %s has any of the labels %s: are the pods in another namespace, or not created yet?", svc.Namespace, strings.Join(keys, ", ")))
	} else {
		d = append(d, "pods with the same label keys, likely a typo in the selector or in their labels: "+listSome(similar))
	}
	r.problem(fmt.Sprintf("the selector matches no pod in namespace %s", svc.Namespace), d...)
}

// podState says whether a matching pod can take traffic, and if not why.
func podState(p *corev1.Pod, now time.Time) (ready, terminating bool, why string) {
	waiting := ""
	for _, cs := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "PodInitializing" && w.Reason != "ContainerCreating" {
			waiting = fmt.Sprintf(", container %s is %s", cs.Name, w.Reason)
			break
		}
	}
	switch {
	case p.DeletionTimestamp != nil:
		return false, true, "terminating"
	case p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed:
		return false, false, "finished (" + string(p.Status.Phase) + ")"
	case p.Spec.NodeName == "":
		return false, false, "not scheduled"
	case p.Status.Phase != corev1.PodRunning:
		return false, false, "not running (" + strings.ToLower(string(p.Status.Phase)) + waiting + ")"
	}
	cond := podCondition(p, corev1.PodReady)
	if cond != nil && cond.Status == corev1.ConditionTrue {
		return true, false, ""
	}
	since := ""
	if cond != nil && !cond.LastTransitionTime.IsZero() {
		since = " for " + duration.HumanDuration(now.Sub(cond.LastTransitionTime.Time))
	}
	return false, false, "running, not ready" + since + waiting
}

func countReady(pods []corev1.Pod) int {
	n := 0
	for i := range pods {
		if ready, _, _ := podState(&pods[i], time.Time{}); ready {
			n++
		}
	}
	return n
}

// unready names the matching pods that get no traffic.
func (r *svcReport) unready(svc *corev1.Service, selected []corev1.Pod, now time.Time) {
	var notReady, terminating []string
	first := ""
	for i := range selected {
		p := &selected[i]
		ready, term, why := podState(p, now)
		switch {
		case term:
			terminating = append(terminating, p.Name)
		case !ready:
			notReady = append(notReady, p.Name+": "+why)
			if first == "" {
				first = p.Name
			}
		}
	}
	if len(notReady) > 0 {
		ns := ""
		if svc.Namespace != metav1.NamespaceDefault {
			ns = " -n " + svc.Namespace
		}
		d := capped(notReady)
		d = append(d, fmt.Sprintf("skiff why pod/%s%s tells why (likewise for the others)", first, ns))
		r.problem(fmt.Sprintf("%d of the %d pods the selector matches %s not ready, so they get no traffic", len(notReady), len(selected), plural(len(notReady), "is", "are")), d...)
	}
	if len(terminating) > 0 {
		r.note(fmt.Sprintf("%d matching %s terminating: out of rotation for new connections", len(terminating), plural(len(terminating), "pod is", "pods are")),
			listSome(terminating))
	}
}

// declaredPort is one containerPort of a matching pod.
type declaredPort struct {
	name  string
	port  int32
	proto corev1.Protocol
}

func podPorts(p *corev1.Pod) []declaredPort {
	var out []declaredPort
	add := func(cs []corev1.Container, sidecarsOnly bool) {
		for _, c := range cs {
			if sidecarsOnly && (c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways) {
				continue
			}
			for _, cp := range c.Ports {
				out = append(out, declaredPort{name: cp.Name, port: cp.ContainerPort, proto: protocolOf(cp.Protocol)})
			}
		}
	}
	add(p.Spec.InitContainers, true)
	add(p.Spec.Containers, false)
	return out
}

// targetPorts checks each Service port's targetPort against the ports the
// matching pods declare.
func (r *svcReport) targetPorts(svc *corev1.Service, selected []corev1.Pod) {
	declared := map[string][]declaredPort{}
	var names, numbers []string
	seenName, seenNum := map[string]bool{}, map[string]bool{}
	for i := range selected {
		ports := podPorts(&selected[i])
		declared[selected[i].Name] = ports
		for _, dp := range ports {
			if n := dp.name + "/" + string(dp.proto); dp.name != "" && !seenName[n] {
				seenName[n] = true
				names = append(names, n)
			}
			if n := fmt.Sprintf("%d/%s", dp.port, dp.proto); !seenNum[n] {
				seenNum[n] = true
				numbers = append(numbers, n)
			}
		}
	}
	sort.Strings(names)
	sort.Strings(numbers)
	for _, sp := range svc.Spec.Ports {
		proto := protocolOf(sp.Protocol)
		var lacking []string
		for _, p := range selected {
			found := false
			for _, dp := range declared[p.Name] {
				if dp.proto == proto && (sp.TargetPort.Type == intstr.String && dp.name == sp.TargetPort.StrVal ||
					sp.TargetPort.Type == intstr.Int && dp.port == targetNumber(sp)) {
					found = true
					break
				}
			}
			if !found {
				lacking = append(lacking, p.Name)
			}
		}
		if len(lacking) == 0 {
			continue
		}
		label := servicePortLabel(sp)
		if sp.TargetPort.Type == intstr.String {
			have := "the pods declare no named ports"
			if len(names) > 0 {
				have = "the pods declare: " + strings.Join(names, ", ")
			}
			if len(lacking) == len(selected) {
				r.problem(fmt.Sprintf("port %s targets the port named %q, which no matching pod declares (for %s): traffic to that port is rejected", label, sp.TargetPort.StrVal, proto), have)
			} else {
				r.problem(fmt.Sprintf("port %s targets the port named %q, which %d of the %d matching pods do not declare: they get no traffic on it", label, sp.TargetPort.StrVal, len(lacking), len(selected)),
					"without it: "+listSome(lacking), have)
			}
			continue
		}
		// Declaring container ports is optional, so a number nobody
		// declares is only worth a word when the pods declare others.
		if len(lacking) == len(selected) && len(numbers) > 0 {
			r.note(fmt.Sprintf("port %s sends to port %d, which no matching pod's containers declare", label, targetNumber(sp)),
				"that is allowed, but check the app listens there; the pods declare: "+strings.Join(numbers, ", "))
		}
	}
}

func targetNumber(sp corev1.ServicePort) int32 {
	if sp.TargetPort.Type == intstr.Int && sp.TargetPort.IntVal != 0 {
		return sp.TargetPort.IntVal
	}
	return sp.Port
}

func protocolOf(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

// servicePortLabel is "80/TCP", or "http (80/TCP)" for a named port.
func servicePortLabel(sp corev1.ServicePort) string {
	s := fmt.Sprintf("%d/%s", sp.Port, protocolOf(sp.Protocol))
	if sp.Name != "" {
		s = sp.Name + " (" + s + ")"
	}
	return s
}

// portList is "80/TCP -> 8080, 443/TCP -> https".
func portList(ports []corev1.ServicePort) string {
	if len(ports) == 0 {
		return "none"
	}
	var out []string
	for _, sp := range ports {
		target := strconv.Itoa(int(targetNumber(sp)))
		if sp.TargetPort.Type == intstr.String {
			target = strconv.Quote(sp.TargetPort.StrVal)
		}
		out = append(out, fmt.Sprintf("%d/%s -> %s", sp.Port, protocolOf(sp.Protocol), target))
	}
	return strings.Join(out, ", ")
}

// loadBalancer explains a LoadBalancer Service's external address.
func (r *svcReport) loadBalancer(svc *corev1.Service) {
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return
	}
	var addrs []string
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if in.IP != "" {
			addrs = append(addrs, in.IP)
		} else if in.Hostname != "" {
			addrs = append(addrs, in.Hostname)
		}
	}
	if c := svc.Spec.LoadBalancerClass; c != nil && *c != "" {
		const left = "Skiff's built-in load balancer ignores it: that class's own controller must serve it"
		if len(addrs) == 0 {
			r.problem(fmt.Sprintf("LoadBalancer of class %q has no external address yet", *c), left+"; is it running?")
		} else {
			r.note(fmt.Sprintf("LoadBalancer of class %q at %s", *c, listSome(addrs)), left)
		}
		return
	}
	if len(addrs) == 0 {
		r.problem("LoadBalancer pending: it has no external address because no Ready node can serve it",
			"Skiff serves LoadBalancer ports on the addresses of every Ready node (those labelled node.kubernetes.io/exclude-from-external-load-balancers aside): see kubectl get nodes")
		return
	}
	r.note("LoadBalancer at " + listSome(addrs) + " (the Ready nodes' addresses), ports " + portList(svc.Spec.Ports))
}

// nodePorts names the node ports of a NodePort or LoadBalancer Service.
func (r *svcReport) nodePorts(svc *corev1.Service) {
	if svc.Spec.Type != corev1.ServiceTypeNodePort && svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return
	}
	var ports []string
	for _, sp := range svc.Spec.Ports {
		if sp.NodePort != 0 {
			ports = append(ports, fmt.Sprintf("%d/%s (for port %d)", sp.NodePort, protocolOf(sp.Protocol), sp.Port))
		}
	}
	if len(ports) > 0 {
		r.note("every node answers on nodePort " + strings.Join(ports, ", "))
	}
}

// trafficPolicies explains Local external and internal traffic policies.
func (r *svcReport) trafficPolicies(svc *corev1.Service, t endpointTally) {
	nodes := "nodes with a ready endpoint: none"
	if len(t.readyNodes) > 0 {
		nodes = "nodes with a ready endpoint: " + listSome(t.readyNodes)
	}
	external := svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer
	if external && svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
		d := []string{nodes, "traffic from pods and from the nodes themselves still reaches every endpoint"}
		if t.ready > 0 && len(t.readyNodes) == 0 {
			r.problem("externalTrafficPolicy Local, and no ready endpoint names its node: NodePort/LoadBalancer traffic is dropped on every node", d...)
		} else {
			r.note("externalTrafficPolicy Local: only nodes with a ready endpoint answer on the NodePort/LoadBalancer ports (keeping the client's address); the others drop the traffic", d...)
		}
	}
	if p := svc.Spec.InternalTrafficPolicy; p != nil && *p == corev1.ServiceInternalTrafficPolicyLocal {
		r.note("internalTrafficPolicy Local: pods only reach endpoints on their own node; from other nodes the traffic is dropped", nodes)
	}
}

// networkPolicies names the policies that restrict ingress to the pods.
func (r *svcReport) networkPolicies(selected []corev1.Pod, policies []networkingv1.NetworkPolicy) {
	if len(selected) == 0 {
		return
	}
	sorted := append([]networkingv1.NetworkPolicy(nil), policies...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	var names, d []string
	allowNone := true
	for i := range sorted {
		np := &sorted[i]
		if !restrictsIngress(np) || np.Namespace != selected[0].Namespace {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil {
			continue
		}
		n := 0
		for _, p := range selected {
			if sel.Matches(labels.Set(p.Labels)) {
				n++
			}
		}
		if n == 0 {
			continue
		}
		names = append(names, np.Name)
		d = append(d, fmt.Sprintf("%s (selects %d of %d pods): %s", np.Name, n, len(selected), describeIngress(np)))
		if len(np.Spec.Ingress) > 0 {
			allowNone = false
		}
	}
	if len(names) == 0 {
		return
	}
	d = append(d, "a pod's own node (probes) always gets through, so the pods can look ready while other clients are blocked")
	what := fmt.Sprintf("%s %s", plural(len(names), "NetworkPolicy", "NetworkPolicies"), strings.Join(names, ", "))
	if allowNone {
		r.problem(what+" "+plural(len(names), "selects these pods for ingress and allows", "select these pods for ingress and allow")+" nothing in: every other client is blocked", d...)
		return
	}
	r.note(what+" "+plural(len(names), "selects these pods for ingress: only the sources it allows", "select these pods for ingress: only the sources they allow")+" can connect", d...)
}

// restrictsIngress follows the API's defaulting: no policyTypes means
// Ingress (plus Egress when there are egress rules).
func restrictsIngress(np *networkingv1.NetworkPolicy) bool {
	if len(np.Spec.PolicyTypes) == 0 {
		return true
	}
	for _, t := range np.Spec.PolicyTypes {
		if t == networkingv1.PolicyTypeIngress {
			return true
		}
	}
	return false
}

// describeIngress sums up what a policy lets in.
func describeIngress(np *networkingv1.NetworkPolicy) string {
	if len(np.Spec.Ingress) == 0 {
		return "allows nothing"
	}
	var rules []string
	for i, rule := range np.Spec.Ingress {
		if i == 3 {
			rules = append(rules, fmt.Sprintf("and %d more rules", len(np.Spec.Ingress)-i))
			break
		}
		from := "anywhere"
		if len(rule.From) > 0 {
			var peers []string
			for _, p := range rule.From {
				peers = append(peers, describePeer(p, np.Namespace))
			}
			from = strings.Join(peers, " or ")
		}
		on := "any port"
		if len(rule.Ports) > 0 {
			var ports []string
			for _, p := range rule.Ports {
				proto := protocolOf(ptrOr(p.Protocol))
				switch {
				case p.Port == nil:
					ports = append(ports, "any "+string(proto)+" port")
				case p.EndPort != nil:
					ports = append(ports, fmt.Sprintf("%s-%d/%s", p.Port.String(), *p.EndPort, proto))
				default:
					ports = append(ports, p.Port.String()+"/"+string(proto))
				}
			}
			on = strings.Join(ports, ", ")
		}
		rules = append(rules, "from "+from+" on "+on)
	}
	return "allows " + strings.Join(rules, "; ")
}

func describePeer(p networkingv1.NetworkPolicyPeer, ns string) string {
	selector := func(s *metav1.LabelSelector) string {
		if len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0 {
			return ""
		}
		return metav1.FormatLabelSelector(s)
	}
	switch {
	case p.IPBlock != nil:
		s := p.IPBlock.CIDR
		if len(p.IPBlock.Except) > 0 {
			s += " except " + strings.Join(p.IPBlock.Except, ", ")
		}
		return s
	case p.NamespaceSelector != nil && p.PodSelector != nil:
		pods, nss := "pods "+selector(p.PodSelector), selector(p.NamespaceSelector)
		if pods == "pods " {
			pods = "any pod"
		}
		if nss == "" {
			return pods + " in any namespace"
		}
		return pods + " in namespaces " + nss
	case p.NamespaceSelector != nil:
		if nss := selector(p.NamespaceSelector); nss != "" {
			return "any pod in namespaces " + nss
		}
		return "any pod in any namespace"
	case p.PodSelector != nil:
		if pods := selector(p.PodSelector); pods != "" {
			return "pods " + pods + " in " + ns
		}
		return "any pod in " + ns
	}
	return "nothing"
}

func ptrOr(p *corev1.Protocol) corev1.Protocol {
	if p == nil {
		return ""
	}
	return *p
}

// sortAddrs sorts IP addresses numerically, anything else after them.
func sortAddrs(addrs []string) {
	sort.SliceStable(addrs, func(i, j int) bool {
		a, errA := netip.ParseAddr(addrs[i])
		b, errB := netip.ParseAddr(addrs[j])
		switch {
		case errA == nil && errB == nil:
			return a.Less(b)
		case errA == nil || errB == nil:
			return errA == nil
		}
		return addrs[i] < addrs[j]
	})
}

// listSome joins at most maxListed items, saying how many were left out.
func listSome(items []string) string {
	if len(items) <= maxListed {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:maxListed], ", ") + fmt.Sprintf(" and %d more", len(items)-maxListed)
}

// capped is at most maxListed items, one a line, then a count of the rest.
func capped(items []string) []string {
	if len(items) <= maxListed {
		return items
	}
	return append(append([]string(nil), items[:maxListed]...), fmt.Sprintf("... and %d more", len(items)-maxListed))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
