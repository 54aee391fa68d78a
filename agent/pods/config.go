package pods

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/agent/envvars"
	"github.com/skiff-sh/skiff/agent/labels"
)

// Paths masked or read-only in unprivileged containers (the runtime
// defaults Kubernetes asks for).
var (
	maskedPaths = []string{"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"}
	readonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

// containerConfig builds the CRI description of one container instance.
func (m *Manager) containerConfig(ctx context.Context, pc *podContext, c *corev1.Container, attempt uint32, imageRef string) (*runtimeapi.ContainerConfig, error) {
	pod := pc.pod
	services, err := m.services.Services(pod.Namespace).List(everything())
	if err != nil {
		return nil, err
	}
	if pod.Namespace != "default" {
		if k, err := m.services.Services("default").Get("kubernetes"); err == nil {
			services = append(services, k)
		}
	}
	hostIP := ""
	if len(m.cfg.NodeIPs) > 0 {
		hostIP = m.cfg.NodeIPs[0].String()
	}
	env, err := envvars.Build(ctx, envvars.Input{
		Pod: pod, Container: c, Client: m.cfg.Client, Services: services,
		NodeName: m.cfg.NodeName, HostIP: hostIP, PodIPs: pc.podIPs, NodeAllocatable: m.cfg.Allocatable,
		Warn: func(msg string) { m.events.Event(pod, corev1.EventTypeWarning, "InvalidEnvironmentVariableNames", msg) },
	})
	if err != nil {
		return nil, err
	}
	envMap := make(map[string]string, len(env))
	kvs := make([]*runtimeapi.KeyValue, 0, len(env))
	for _, e := range env {
		envMap[e.Name] = e.Value
		kvs = append(kvs, &runtimeapi.KeyValue{Key: e.Name, Value: []byte(e.Value)})
	}
	if err := m.checkNonRoot(ctx, pod, c, imageRef); err != nil {
		return nil, err
	}
	mounts, err := m.cfg.Volumes.Mounts(pc.pv, pod, c, envMap)
	if err != nil {
		return nil, err
	}
	if !hasMountAt(c, "/etc/hosts") {
		hosts, err := m.hostsFile(pod, pc.podIPs)
		if err != nil {
			return nil, fmt.Errorf("writing /etc/hosts: %w", err)
		}
		mounts = append(mounts, &runtimeapi.Mount{ContainerPath: "/etc/hosts", HostPath: hosts})
	}
	if c.TerminationMessagePath != "" && !hasMountAt(c, c.TerminationMessagePath) {
		p, err := m.terminationLogFile(pod, c.Name, attempt)
		if err != nil {
			return nil, err
		}
		mounts = append(mounts, &runtimeapi.Mount{ContainerPath: c.TerminationMessagePath, HostPath: p})
	}
	command := make([]string, len(c.Command))
	for i, s := range c.Command {
		command[i] = envvars.Expand(s, envMap)
	}
	args := make([]string, len(c.Args))
	for i, s := range c.Args {
		args[i] = envvars.Expand(s, envMap)
	}
	ctrLabels := m.podLabels(pod)
	ctrLabels[labels.ContainerName] = c.Name
	annotations := map[string]string{
		labels.RestartCount:           strconv.Itoa(int(attempt)),
		labels.TerminationGracePeriod: strconv.FormatInt(gracePeriod(pod), 10),
	}
	if isInit(pod, c.Name) {
		annotations[labels.InitContainer] = "true"
	}
	return &runtimeapi.ContainerConfig{
		Metadata:    &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: attempt},
		Image:       &runtimeapi.ImageSpec{Image: imageRef, UserSpecifiedImage: c.Image},
		Command:     command,
		Args:        args,
		WorkingDir:  c.WorkingDir,
		Envs:        kvs,
		Mounts:      mounts,
		Labels:      ctrLabels,
		Annotations: annotations,
		LogPath:     filepath.Join(c.Name, strconv.Itoa(int(attempt))+".log"),
		Stdin:       c.Stdin,
		StdinOnce:   c.StdinOnce,
		Tty:         c.TTY,
		Linux:       m.linuxConfig(pod, c),
	}, nil
}

func isInit(pod *corev1.Pod, name string) bool {
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			return true
		}
	}
	return false
}

func hasMountAt(c *corev1.Container, path string) bool {
	for _, vm := range c.VolumeMounts {
		if vm.MountPath == path {
			return true
		}
	}
	return false
}

// terminationLogFile makes the host file behind a container's
// terminationMessagePath.
func (m *Manager) terminationLogFile(pod *corev1.Pod, name string, attempt uint32) (string, error) {
	dir := filepath.Join(m.cfg.PodDir, string(pod.UID), "containers", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	p := filepath.Join(dir, "termination-log-"+strconv.Itoa(int(attempt)))
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o666)
	if err != nil {
		return "", err
	}
	_ = f.Chmod(0o666)
	return p, f.Close()
}

// linuxConfig maps resources and the security context to CRI.
func (m *Manager) linuxConfig(pod *corev1.Pod, c *corev1.Container) *runtimeapi.LinuxContainerConfig {
	res := &runtimeapi.LinuxContainerResources{CpuPeriod: 100000}
	cpuReq := c.Resources.Requests.Cpu().MilliValue()
	if cpuReq == 0 && !c.Resources.Limits.Cpu().IsZero() {
		cpuReq = c.Resources.Limits.Cpu().MilliValue()
	}
	shares := cpuReq * 1024 / 1000
	if shares < 2 {
		shares = 2
	}
	res.CpuShares = shares
	if lim := c.Resources.Limits.Cpu().MilliValue(); lim > 0 {
		q := lim * 100000 / 1000
		if q < 1000 {
			q = 1000
		}
		res.CpuQuota = q
	}
	if lim := c.Resources.Limits.Memory().Value(); lim > 0 {
		res.MemoryLimitInBytes = lim
	}
	res.OomScoreAdj = oomScoreAdj(pod, c, m.cfg.Allocatable)

	sc := &runtimeapi.LinuxContainerSecurityContext{
		NamespaceOptions: m.sandboxConfig(pod, 0).Linux.SecurityContext.NamespaceOptions,
		MaskedPaths:      maskedPaths,
		ReadonlyPaths:    readonlyPaths,
	}
	sc.RunAsUser, sc.RunAsGroup, sc.SupplementalGroups = podIdentity(pod.Spec.SecurityContext)
	if csc := c.SecurityContext; csc != nil {
		if csc.RunAsUser != nil {
			sc.RunAsUser = &runtimeapi.Int64Value{Value: *csc.RunAsUser}
		}
		if csc.RunAsGroup != nil {
			sc.RunAsGroup = &runtimeapi.Int64Value{Value: *csc.RunAsGroup}
		}
		if csc.Privileged != nil && *csc.Privileged {
			sc.Privileged = true
			sc.MaskedPaths, sc.ReadonlyPaths = nil, nil
		}
		if csc.ReadOnlyRootFilesystem != nil {
			sc.ReadonlyRootfs = *csc.ReadOnlyRootFilesystem
		}
		if csc.AllowPrivilegeEscalation != nil && !*csc.AllowPrivilegeEscalation {
			sc.NoNewPrivs = true
		}
		if csc.Capabilities != nil {
			caps := &runtimeapi.Capability{}
			for _, a := range csc.Capabilities.Add {
				caps.AddCapabilities = append(caps.AddCapabilities, capName(string(a)))
			}
			for _, d := range csc.Capabilities.Drop {
				caps.DropCapabilities = append(caps.DropCapabilities, capName(string(d)))
			}
			sc.Capabilities = caps
		}
		if csc.ProcMount != nil && *csc.ProcMount == corev1.UnmaskedProcMount {
			sc.MaskedPaths, sc.ReadonlyPaths = nil, nil
		}
	}
	return &runtimeapi.LinuxContainerConfig{Resources: res, SecurityContext: sc}
}

// capName spells a capability as CRI wants it: "ALL" or the bare name
// ("NET_ADMIN"); containerd adds the "CAP_" prefix itself.
func capName(s string) string {
	if len(s) > 4 && s[:4] == "CAP_" {
		return s[4:]
	}
	return s
}

// oomScoreAdj follows the kubelet's policy by QoS class: guaranteed pods
// are killed last, best-effort first.
func oomScoreAdj(pod *corev1.Pod, c *corev1.Container, allocatable corev1.ResourceList) int64 {
	switch pod.Status.QOSClass {
	case corev1.PodQOSGuaranteed:
		return -997
	case corev1.PodQOSBestEffort:
		return 1000
	}
	capacity := allocatable.Memory().Value()
	req := c.Resources.Requests.Memory().Value()
	if capacity <= 0 {
		return 999
	}
	adj := 1000 - (1000*req)/capacity
	if adj < 3 {
		adj = 3
	}
	if adj > 999 {
		adj = 999
	}
	return adj
}

// checkNonRoot refuses to run an image as root when runAsNonRoot is set.
func (m *Manager) checkNonRoot(ctx context.Context, pod *corev1.Pod, c *corev1.Container, imageRef string) error {
	nonRoot := false
	var uid *int64
	if psc := pod.Spec.SecurityContext; psc != nil {
		if psc.RunAsNonRoot != nil {
			nonRoot = *psc.RunAsNonRoot
		}
		uid = psc.RunAsUser
	}
	if csc := c.SecurityContext; csc != nil {
		if csc.RunAsNonRoot != nil {
			nonRoot = *csc.RunAsNonRoot
		}
		if csc.RunAsUser != nil {
			uid = csc.RunAsUser
		}
	}
	if !nonRoot {
		return nil
	}
	if uid != nil {
		if *uid == 0 {
			return fmt.Errorf("container's runAsUser breaks non-root policy (pod: %q, container: %s)", pod.Namespace+"/"+pod.Name, c.Name)
		}
		return nil
	}
	st, err := m.cfg.Images.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: imageRef}})
	if err != nil || st.Image == nil {
		return fmt.Errorf("container has runAsNonRoot and the image's user cannot be checked")
	}
	if st.Image.Uid != nil {
		if st.Image.Uid.Value == 0 {
			return fmt.Errorf("container has runAsNonRoot and image will run as root (pod: %q, container: %s)", pod.Namespace+"/"+pod.Name, c.Name)
		}
		return nil
	}
	if st.Image.Username == "" || st.Image.Username == "root" {
		return fmt.Errorf("container has runAsNonRoot and image will run as root (pod: %q, container: %s)", pod.Namespace+"/"+pod.Name, c.Name)
	}
	return fmt.Errorf("container has runAsNonRoot and image has non-numeric user (%s), cannot verify user is non-root (pod: %q, container: %s)", st.Image.Username, pod.Namespace+"/"+pod.Name, c.Name)
}
