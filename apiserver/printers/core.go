package printers

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
)

// Node role labels: node-role.kubernetes.io/<role> (any value) and the older
// kubernetes.io/role=<role>.
const (
	nodeRolePrefix    = "node-role.kubernetes.io/"
	legacyNodeRoleKey = "kubernetes.io/role"
)

// listMax is how many items a list cell shows before "+ N more...".
const listMax = 3

func corePrinters() map[schema.GroupKind]kindPrinter {
	return map[schema.GroupKind]kindPrinter{
		{Kind: "Namespace"}: printer([]metav1.TableColumnDefinition{
			nameColumn(),
			column("Status", typeString, "The namespace's phase: Active or Terminating."),
			ageColumn(),
		}, func(o *corev1.Namespace, now time.Time) []interface{} {
			return []interface{}{o.Name, string(o.Status.Phase), since(o.CreationTimestamp, now)}
		}),
		{Kind: "Node"}: printer([]metav1.TableColumnDefinition{
			nameColumn(),
			column("Status", typeString, "Whether the node is Ready, and whether scheduling on it is disabled."),
			column("Roles", typeString, "The roles named by the node's role labels."),
			ageColumn(),
			column("Version", typeString, "The kubelet version the node reports."),
			wide(column("Internal-IP", typeString, "The node's first internal address.")),
			wide(column("External-IP", typeString, "The node's first external address.")),
			wide(column("OS-Image", typeString, "The operating system image the node reports.")),
			wide(column("Kernel-Version", typeString, "The kernel version the node reports.")),
			wide(column("Container-Runtime", typeString, "The container runtime and version the node reports.")),
		}, nodeCells),
		{Kind: "Service"}: printer([]metav1.TableColumnDefinition{
			nameColumn(),
			column("Type", typeString, "How the service is exposed: ClusterIP, NodePort, LoadBalancer or ExternalName."),
			column("Cluster-IP", typeString, "The service's virtual IP inside the cluster."),
			column("External-IP", typeString, "Addresses reachable from outside: external IPs, load-balancer ingress or the external name."),
			column("Port(s)", typeString, "The service ports, with node ports, and protocols."),
			ageColumn(),
			wide(column("Selector", typeString, "The labels of the pods the service sends traffic to.")),
		}, serviceCells),
		{Kind: "Endpoints"}: printer([]metav1.TableColumnDefinition{
			nameColumn(),
			column("Endpoints", typeString, "The first few address:port pairs behind the service."),
			ageColumn(),
		}, func(o *corev1.Endpoints, now time.Time) []interface{} {
			return []interface{}{o.Name, endpointsString(o), since(o.CreationTimestamp, now)}
		}),
		{Kind: "ConfigMap"}: printer([]metav1.TableColumnDefinition{
			nameColumn(),
			column("Data", typeInteger, "The number of keys, text and binary."),
			ageColumn(),
		}, func(o *corev1.ConfigMap, now time.Time) []interface{} {
			return []interface{}{o.Name, int64(len(o.Data) + len(o.BinaryData)), since(o.CreationTimestamp, now)}
		}),
		{Kind: "Secret"}: printer([]metav1.TableColumnDefinition{
			nameColumn(),
			column("Type", typeString, "The secret's type, which says what keys it holds."),
			column("Data", typeInteger, "The number of keys."),
			ageColumn(),
		}, func(o *corev1.Secret, now time.Time) []interface{} {
			return []interface{}{o.Name, string(o.Type), int64(len(o.Data)), since(o.CreationTimestamp, now)}
		}),
		{Kind: "ServiceAccount"}: printer([]metav1.TableColumnDefinition{
			nameColumn(),
			column("Secrets", typeInteger, "The number of secrets listed on the account."),
			ageColumn(),
		}, func(o *corev1.ServiceAccount, now time.Time) []interface{} {
			return []interface{}{o.Name, int64(len(o.Secrets)), since(o.CreationTimestamp, now)}
		}),
		{Kind: "ReplicationController"}: printer([]metav1.TableColumnDefinition{
			nameColumn(),
			column("Desired", typeInteger, "The number of pods wanted."),
			column("Current", typeInteger, "The number of pods that exist."),
			column("Ready", typeInteger, "The number of pods that are ready."),
			ageColumn(),
			containersColumn(),
			imagesColumn(),
			selectorColumn("the controller manages"),
		}, func(o *corev1.ReplicationController, now time.Time) []interface{} {
			var containers []corev1.Container
			if o.Spec.Template != nil {
				containers = o.Spec.Template.Spec.Containers
			}
			names, images := containerCells(containers)
			return []interface{}{o.Name, int64(int32Or(o.Spec.Replicas, 1)), int64(o.Status.Replicas),
				int64(o.Status.ReadyReplicas), since(o.CreationTimestamp, now),
				names, images, labels.FormatLabels(o.Spec.Selector)}
		}),
		{Kind: "ResourceQuota"}: printer([]metav1.TableColumnDefinition{
			nameColumn(),
			column("Request", typeString, "Used out of hard for every quota item that is not a limit."),
			column("Limit", typeString, "Used out of hard for the limits.* quota items."),
			ageColumn(),
		}, quotaCells),
		{Kind: "LimitRange"}: printer([]metav1.TableColumnDefinition{
			nameColumn(),
			createdAtColumn(),
		}, func(o *corev1.LimitRange, _ time.Time) []interface{} {
			return []interface{}{o.Name, createdAt(o.CreationTimestamp)}
		}),
		{Kind: "PodTemplate"}: printer([]metav1.TableColumnDefinition{
			nameColumn(),
			column("Containers", typeString, "The names of the template's containers."),
			column("Images", typeString, "The images the template's containers run."),
			column("Pod Labels", typeString, "The labels pods made from the template get."),
		}, func(o *corev1.PodTemplate, _ time.Time) []interface{} {
			names, images := containerCells(o.Template.Spec.Containers)
			return []interface{}{o.Name, names, images, labels.FormatLabels(o.Template.Labels)}
		}),
	}
}

func nodeCells(n *corev1.Node, now time.Time) []interface{} {
	var status []string
	for _, c := range n.Status.Conditions {
		if c.Type != corev1.NodeReady {
			continue
		}
		if c.Status == corev1.ConditionTrue {
			status = []string{"Ready"}
		} else {
			status = []string{"NotReady"}
		}
	}
	if len(status) == 0 {
		status = []string{"Unknown"}
	}
	if n.Spec.Unschedulable {
		status = append(status, "SchedulingDisabled")
	}

	roles := sets.New[string]()
	for k, v := range n.Labels {
		switch {
		case strings.HasPrefix(k, nodeRolePrefix) && len(k) > len(nodeRolePrefix):
			roles.Insert(strings.TrimPrefix(k, nodeRolePrefix))
		case k == legacyNodeRoleKey && v != "":
			roles.Insert(v)
		}
	}

	info := n.Status.NodeInfo
	orUnknown := func(s string) string {
		if s == "" {
			return unknown
		}
		return s
	}
	return []interface{}{
		n.Name,
		strings.Join(status, ","),
		orNone(strings.Join(sets.List(roles), ",")),
		since(n.CreationTimestamp, now),
		info.KubeletVersion,
		nodeAddress(n, corev1.NodeInternalIP),
		nodeAddress(n, corev1.NodeExternalIP),
		orUnknown(info.OSImage),
		orUnknown(info.KernelVersion),
		orUnknown(info.ContainerRuntimeVersion),
	}
}

// nodeAddress is the node's first address of a type, or <none>.
func nodeAddress(n *corev1.Node, t corev1.NodeAddressType) string {
	for _, a := range n.Status.Addresses {
		if a.Type == t {
			return a.Address
		}
	}
	return none
}

func serviceCells(s *corev1.Service, now time.Time) []interface{} {
	clusterIP := s.Spec.ClusterIP
	if len(s.Spec.ClusterIPs) > 0 {
		clusterIP = s.Spec.ClusterIPs[0]
	}
	ports := make([]string, len(s.Spec.Ports))
	for i, p := range s.Spec.Ports {
		if p.NodePort > 0 {
			ports[i] = fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, p.Protocol)
		} else {
			ports[i] = fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		}
	}
	return []interface{}{
		s.Name,
		string(s.Spec.Type),
		orNone(clusterIP),
		serviceExternalIP(s),
		orNone(strings.Join(ports, ",")),
		since(s.CreationTimestamp, now),
		labels.FormatLabels(s.Spec.Selector),
	}
}

// serviceExternalIP says where a service is reachable from outside.
func serviceExternalIP(s *corev1.Service) string {
	switch s.Spec.Type {
	case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort:
		return orNone(strings.Join(s.Spec.ExternalIPs, ","))
	case corev1.ServiceTypeLoadBalancer:
		var all []string
		if lb := loadBalancerAddresses(s.Status.LoadBalancer.Ingress); lb != "" {
			all = append(all, strings.Split(lb, ",")...)
		}
		all = append(all, s.Spec.ExternalIPs...)
		if len(all) == 0 {
			return pending
		}
		return strings.Join(all, ",")
	case corev1.ServiceTypeExternalName:
		return s.Spec.ExternalName
	}
	return unknown
}

// loadBalancerAddresses lists the distinct IPs (or, lacking one, host
// names) of load-balancer ingress points, sorted and comma separated.
func loadBalancerAddresses(ingress []corev1.LoadBalancerIngress) string {
	addrs := sets.New[string]()
	for _, in := range ingress {
		switch {
		case in.IP != "":
			addrs.Insert(in.IP)
		case in.Hostname != "":
			addrs.Insert(in.Hostname)
		}
	}
	return strings.Join(sets.List(addrs), ",")
}

// endpointsString lists the first addresses (with their ports) of an
// Endpoints object.
func endpointsString(e *corev1.Endpoints) string {
	if len(e.Subsets) == 0 {
		return none
	}
	var list []string
	total := 0
	add := func(s string) {
		total++
		if len(list) < listMax {
			list = append(list, s)
		}
	}
	for _, ss := range e.Subsets {
		if len(ss.Ports) == 0 {
			// Headless services may have addresses without ports.
			for _, a := range ss.Addresses {
				add(a.IP)
			}
			continue
		}
		for _, p := range ss.Ports {
			for _, a := range ss.Addresses {
				add(net.JoinHostPort(a.IP, strconv.Itoa(int(p.Port))))
			}
		}
	}
	if total > listMax {
		return strings.Join(list, ",") + " + " + strconv.Itoa(total-listMax) + " more..."
	}
	return strings.Join(list, ",")
}

func quotaCells(q *corev1.ResourceQuota, now time.Time) []interface{} {
	names := make([]string, 0, len(q.Status.Hard))
	for name := range q.Status.Hard {
		names = append(names, string(name))
	}
	sort.Strings(names)
	var requests, limits []string
	for _, name := range names {
		used := q.Status.Used[corev1.ResourceName(name)]
		hard := q.Status.Hard[corev1.ResourceName(name)]
		item := fmt.Sprintf("%s: %s/%s", name, used.String(), hard.String())
		if strings.HasPrefix(name, "limits.") {
			limits = append(limits, item)
		} else {
			requests = append(requests, item)
		}
	}
	return []interface{}{q.Name, strings.Join(requests, ", "), strings.Join(limits, ", "), since(q.CreationTimestamp, now)}
}

// containerCells lays the containers' names and images out on one line
// each, comma separated.
func containerCells(containers []corev1.Container) (names, images string) {
	n := make([]string, len(containers))
	im := make([]string, len(containers))
	for i, c := range containers {
		n[i], im[i] = c.Name, c.Image
	}
	return strings.Join(n, ","), strings.Join(im, ",")
}
