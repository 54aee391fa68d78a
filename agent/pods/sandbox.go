package pods

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/agent/labels"
)

// logDirName is a pod's log directory under LogDir, as the kubelet names it.
func logDirName(ns, name string, uid types.UID) string {
	return fmt.Sprintf("%s_%s_%s", ns, name, uid)
}

// podLabels are the CRI labels of a pod's sandbox and containers.
func (m *Manager) podLabels(pod *corev1.Pod) map[string]string {
	return map[string]string{
		labels.PodName:      pod.Name,
		labels.PodNamespace: pod.Namespace,
		labels.PodUID:       string(pod.UID),
		labels.ManagedBy:    m.cfg.NodeName,
	}
}

// podHostname is the hostname a pod's containers see.
func podHostname(pod *corev1.Pod) string {
	h := pod.Name
	if pod.Spec.Hostname != "" {
		h = pod.Spec.Hostname
	}
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-.")
	}
	return h
}

// sandboxConfig is the CRI description of the pod's sandbox.
func (m *Manager) sandboxConfig(pod *corev1.Pod, attempt uint32) *runtimeapi.PodSandboxConfig {
	hostNet := pod.Spec.HostNetwork
	hostname := podHostname(pod)
	if hostNet {
		// Host-network pods see the node's hostname; runc refuses to set
		// one in the host's UTS namespace.
		hostname = ""
	}
	nsOpts := &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD}
	if hostNet {
		nsOpts.Network = runtimeapi.NamespaceMode_NODE
	}
	if pod.Spec.HostPID {
		nsOpts.Pid = runtimeapi.NamespaceMode_NODE
	} else if pod.Spec.ShareProcessNamespace != nil && *pod.Spec.ShareProcessNamespace {
		nsOpts.Pid = runtimeapi.NamespaceMode_POD
	}
	if pod.Spec.HostIPC {
		nsOpts.Ipc = runtimeapi.NamespaceMode_NODE
	}
	sec := &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: nsOpts}
	sec.RunAsUser, sec.RunAsGroup, sec.SupplementalGroups = podIdentity(pod.Spec.SecurityContext)
	for _, c := range allContainers(pod) {
		if c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged {
			sec.Privileged = true
		}
	}
	var sysctls map[string]string
	if psc := pod.Spec.SecurityContext; psc != nil && len(psc.Sysctls) > 0 {
		sysctls = map[string]string{}
		for _, s := range psc.Sysctls {
			sysctls[s.Name] = s.Value
		}
	}
	var ports []*runtimeapi.PortMapping
	for _, c := range allContainers(pod) {
		for _, p := range c.Ports {
			if p.HostPort == 0 {
				continue
			}
			proto := runtimeapi.Protocol_TCP
			switch p.Protocol {
			case corev1.ProtocolUDP:
				proto = runtimeapi.Protocol_UDP
			case corev1.ProtocolSCTP:
				proto = runtimeapi.Protocol_SCTP
			}
			ports = append(ports, &runtimeapi.PortMapping{Protocol: proto, ContainerPort: p.ContainerPort, HostPort: p.HostPort, HostIp: p.HostIP})
		}
	}
	annotations := map[string]string{}
	for k, v := range pod.Annotations {
		annotations[k] = v
	}
	return &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: pod.Name, Namespace: pod.Namespace, Uid: string(pod.UID), Attempt: attempt},
		Hostname:     hostname,
		LogDirectory: filepath.Join(m.cfg.LogDir, logDirName(pod.Namespace, pod.Name, pod.UID)),
		DnsConfig:    m.dnsConfig(pod),
		PortMappings: ports,
		Labels:       m.podLabels(pod),
		Annotations:  annotations,
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent:    podCgroup(m.cfg.CgroupRoot, pod.UID),
			SecurityContext: sec,
			Sysctls:         sysctls,
		},
	}
}

func allContainers(pod *corev1.Pod) []corev1.Container {
	out := make([]corev1.Container, 0, len(pod.Spec.InitContainers)+len(pod.Spec.Containers))
	out = append(out, pod.Spec.InitContainers...)
	return append(out, pod.Spec.Containers...)
}

// createSandbox runs a new sandbox for the pod (its network comes from CNI,
// through containerd).
func (m *Manager) createSandbox(ctx context.Context, pod *corev1.Pod, rt *podRuntime) (string, error) {
	attempt := uint32(0)
	if len(rt.sandboxes) > 0 {
		attempt = rt.sandboxes[0].Metadata.GetAttempt() + 1
	}
	cfg := m.sandboxConfig(pod, attempt)
	if err := os.MkdirAll(cfg.LogDirectory, 0o755); err != nil {
		return "", fmt.Errorf("log directory: %w", err)
	}
	resp, err := m.cfg.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		return "", err
	}
	return resp.PodSandboxId, nil
}

// sandboxIPs returns the pod's IPs: the sandbox's, or the node's for
// hostNetwork pods.
func (m *Manager) sandboxIPs(ctx context.Context, id string, pod *corev1.Pod) ([]string, error) {
	if pod.Spec.HostNetwork {
		ips := make([]string, 0, len(m.cfg.NodeIPs))
		for _, a := range m.cfg.NodeIPs {
			ips = append(ips, a.String())
		}
		return ips, nil
	}
	resp, err := m.cfg.Runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
	if err != nil {
		return nil, err
	}
	var ips []string
	if n := resp.Status.GetNetwork(); n != nil {
		if n.Ip != "" {
			ips = append(ips, n.Ip)
		}
		for _, a := range n.AdditionalIps {
			ips = append(ips, a.Ip)
		}
	}
	return ips, nil
}

// dnsConfig is the resolv.conf of the pod's containers, per dnsPolicy.
func (m *Manager) dnsConfig(pod *corev1.Pod) *runtimeapi.DNSConfig {
	policy := pod.Spec.DNSPolicy
	if policy == "" {
		policy = corev1.DNSClusterFirst
	}
	if policy == corev1.DNSClusterFirst && pod.Spec.HostNetwork {
		policy = corev1.DNSDefault
	}
	if policy == corev1.DNSClusterFirstWithHostNet {
		policy = corev1.DNSClusterFirst
	}
	if (policy == corev1.DNSClusterFirst) && len(m.cfg.ClusterDNS) == 0 {
		policy = corev1.DNSDefault
	}
	cfg := &runtimeapi.DNSConfig{}
	hostServers, hostSearches, hostOptions := readResolvConf(m.cfg.ResolvConf)
	switch policy {
	case corev1.DNSClusterFirst:
		d := m.cfg.ClusterDomain
		cfg.Servers = append(cfg.Servers, m.cfg.ClusterDNS...)
		cfg.Searches = append([]string{pod.Namespace + ".svc." + d, "svc." + d, d}, hostSearches...)
		cfg.Options = []string{"ndots:5"}
	case corev1.DNSDefault:
		cfg.Servers, cfg.Searches, cfg.Options = hostServers, hostSearches, hostOptions
	case corev1.DNSNone:
	}
	if dc := pod.Spec.DNSConfig; dc != nil {
		cfg.Servers = appendUnique(cfg.Servers, dc.Nameservers...)
		cfg.Searches = appendUnique(cfg.Searches, dc.Searches...)
		for _, o := range dc.Options {
			opt := o.Name
			if o.Value != nil {
				opt += ":" + *o.Value
			}
			cfg.Options = mergeOption(cfg.Options, opt)
		}
	}
	if len(cfg.Searches) > 32 {
		cfg.Searches = cfg.Searches[:32]
	}
	if len(cfg.Servers) > 3 {
		cfg.Servers = cfg.Servers[:3]
	}
	return cfg
}

func appendUnique(list []string, more ...string) []string {
	for _, s := range more {
		found := false
		for _, x := range list {
			if x == s {
				found = true
				break
			}
		}
		if !found {
			list = append(list, s)
		}
	}
	return list
}

// mergeOption adds a resolver option, replacing one of the same name.
func mergeOption(opts []string, opt string) []string {
	name, _, _ := strings.Cut(opt, ":")
	for i, o := range opts {
		if n, _, _ := strings.Cut(o, ":"); n == name {
			opts[i] = opt
			return opts
		}
	}
	return append(opts, opt)
}

// readResolvConf reads nameservers, search domains and options. Loopback
// nameservers (a local stub resolver) are useless inside a pod's network
// namespace and are dropped.
func readResolvConf(path string) (servers, searches, options []string) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || strings.HasPrefix(fields[0], "#") || strings.HasPrefix(fields[0], ";") {
			continue
		}
		switch fields[0] {
		case "nameserver":
			if !strings.HasPrefix(fields[1], "127.") && fields[1] != "::1" {
				servers = append(servers, fields[1])
			}
		case "search", "domain":
			searches = fields[1:]
		case "options":
			options = append(options, fields[1:]...)
		}
	}
	return servers, searches, options
}

// hostsFile writes the pod's /etc/hosts and returns its path.
func (m *Manager) hostsFile(pod *corev1.Pod, podIPs []string) (string, error) {
	dir := filepath.Join(m.cfg.PodDir, string(pod.UID))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	var b strings.Builder
	if pod.Spec.HostNetwork {
		host, err := os.ReadFile("/etc/hosts")
		if err == nil {
			b.Write(host)
			if len(host) > 0 && host[len(host)-1] != '\n' {
				b.WriteByte('\n')
			}
		}
	} else {
		b.WriteString("# Kubernetes-managed hosts file (written by Skiff's agent).\n")
		b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")
		host := podHostname(pod)
		for _, ip := range podIPs {
			if pod.Spec.Subdomain != "" {
				fmt.Fprintf(&b, "%s\t%s.%s.%s.svc.%s\t%s\n", ip, host, pod.Spec.Subdomain, pod.Namespace, m.cfg.ClusterDomain, host)
			} else {
				fmt.Fprintf(&b, "%s\t%s\n", ip, host)
			}
		}
	}
	if len(pod.Spec.HostAliases) > 0 {
		b.WriteString("\n# Entries added by HostAliases.\n")
		for _, a := range pod.Spec.HostAliases {
			fmt.Fprintf(&b, "%s\t%s\n", a.IP, strings.Join(a.Hostnames, "\t"))
		}
	}
	path := filepath.Join(dir, "etc-hosts")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return "", err
	}
	return path, os.Rename(tmp, path)
}

// podIdentity is the user, group and supplementary groups (fsGroup
// included) a pod's securityContext asks for.
func podIdentity(psc *corev1.PodSecurityContext) (user, group *runtimeapi.Int64Value, groups []int64) {
	if psc == nil {
		return nil, nil, nil
	}
	if psc.RunAsUser != nil {
		user = &runtimeapi.Int64Value{Value: *psc.RunAsUser}
	}
	if psc.RunAsGroup != nil {
		group = &runtimeapi.Int64Value{Value: *psc.RunAsGroup}
	}
	groups = append(groups, psc.SupplementalGroups...)
	if psc.FSGroup != nil {
		groups = append(groups, *psc.FSGroup)
	}
	return user, group, groups
}
