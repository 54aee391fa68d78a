package node

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// TestEnvAndVolumes checks what a container sees of its pod: environment
// variables from every source, and the volume types the agent mounts.
func TestEnvAndVolumes(t *testing.T) {
	c := startCluster(t)
	t.Run("group", func(t *testing.T) {
		t.Run("EnvSources", func(t *testing.T) { t.Parallel(); testEnvSources(t, c) })
		t.Run("VolumeTypes", func(t *testing.T) { t.Parallel(); testVolumeTypes(t, c) })
		t.Run("HostPathTypeCheckFails", func(t *testing.T) { t.Parallel(); testHostPathTypeCheck(t, c) })
		t.Run("ConfigMapUpdateReachesPod", func(t *testing.T) { t.Parallel(); testConfigMapUpdate(t, c) })
		t.Run("MissingSources", func(t *testing.T) { t.Parallel(); testMissingSources(t, c) })
	})
}

// exec runs a command in a pod's first container with kubectl and returns
// its output, failing the test if it exits non-zero.
func (c *cluster) exec(t *testing.T, ns, pod string, command ...string) string {
	t.Helper()
	return c.kubectl(t, append([]string{"exec", "-n", ns, pod, "--"}, command...)...)
}

// execFails runs a command that must fail and returns its output.
func (c *cluster) execFails(t *testing.T, ns, pod string, command ...string) string {
	t.Helper()
	out, err := c.kubectlErr(t, "", append([]string{"exec", "-n", ns, pod, "--"}, command...)...)
	if err == nil {
		t.Errorf("%s in %s/%s succeeded, want a failure; output %q", strings.Join(command, " "), ns, pod, out)
	}
	return out
}

// parseEnv reads `env` output.
func parseEnv(out string) map[string]string {
	env := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	return env
}

func (c *cluster) waitEvent(t *testing.T, ns, name, want string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ev := c.events(ns, name)
		if strings.Contains(ev, want) {
			return ev
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s/%s: no event with %q after %s; events:\n%s", ns, name, want, timeout, ev)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func waitingReason(p *corev1.Pod, reason string) bool {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Waiting != nil && cs.State.Waiting.Reason == reason {
			return true
		}
	}
	return false
}

func testEnvSources(t *testing.T, c *cluster) {
	ns := c.namespace(t, "env")
	ctx := context.Background()
	// Service variables are those of the services that exist when the
	// container starts: the Service comes first.
	svc, err := c.client.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "foo-db"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "none"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80}, {Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ip := svc.Spec.ClusterIP
	if ip == "" {
		t.Fatalf("service has no cluster IP: %+v", svc.Spec)
	}
	if _, err := c.client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "settings"},
		Data:       map[string]string{"greeting": "hello", "color": "blue", "dashed-key": "kept"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "creds"},
		Data:       map[string][]byte{"password": []byte("s3cret")},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Give the agent's service informer a moment: a pod created in the
	// same instant as a Service may race it, on a kubelet too.
	time.Sleep(time.Second)

	field := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	pod := busyboxPod(ns, "envy", "sh", "-c")
	pod.Labels = map[string]string{"x": "wye", "app": "envy"}
	ctr := &pod.Spec.Containers[0]
	ctr.Args = []string{"echo 'arg=$(GREETING)/$(POD_NAME)/$$(GREETING)/$(UNDEFINED)'; exec sleep 3600"}
	ctr.Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}
	ctr.EnvFrom = []corev1.EnvFromSource{{Prefix: "CFG_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}}
	ctr.Env = []corev1.EnvVar{
		{Name: "GREETING", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}, Key: "greeting"}}},
		{Name: "PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "password"}}},
		field("POD_NAME", "metadata.name"),
		field("POD_NS", "metadata.namespace"),
		field("POD_UID", "metadata.uid"),
		field("LABEL_X", "metadata.labels['x']"),
		field("NODE", "spec.nodeName"),
		field("POD_IP", "status.podIP"),
		field("HOST_IP", "status.hostIP"),
		{Name: "MEM_MI", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
		{Name: "MSG", Value: "$(GREETING) from $(POD_NAME) at $(FOO_DB_SERVICE_HOST), $(LATER) stays"},
		{Name: "LATER", Value: "later"},
	}
	created := c.createPod(t, pod)
	p := c.waitPod(t, ns, "envy", 60*time.Second, "ready", ready)
	env := parseEnv(c.exec(t, ns, "envy", "env"))
	want := map[string]string{
		"GREETING":     "hello",
		"PASSWORD":     "s3cret",
		"POD_NAME":     "envy",
		"POD_NS":       ns,
		"POD_UID":      string(created.UID),
		"LABEL_X":      "wye",
		"NODE":         c.node.Name,
		"POD_IP":       p.Status.PodIP,
		"HOST_IP":      "127.0.0.1",
		"MEM_MI":       "64",
		"CFG_color":    "blue",
		"CFG_greeting": "hello",
		"MSG":          "hello from envy at " + ip + ", $(LATER) stays",
		// Service links, Docker-link style.
		"FOO_DB_SERVICE_HOST":      ip,
		"FOO_DB_SERVICE_PORT":      "80",
		"FOO_DB_SERVICE_PORT_HTTP": "80",
		"FOO_DB_SERVICE_PORT_DNS":  "53",
		"FOO_DB_PORT":              "tcp://" + ip + ":80",
		"FOO_DB_PORT_80_TCP":       "tcp://" + ip + ":80",
		"FOO_DB_PORT_80_TCP_PROTO": "tcp",
		"FOO_DB_PORT_80_TCP_PORT":  "80",
		"FOO_DB_PORT_80_TCP_ADDR":  ip,
		"FOO_DB_PORT_53_UDP":       "udp://" + ip + ":53",
		"FOO_DB_PORT_53_UDP_PROTO": "udp",
		// default/kubernetes is in every pod's environment.
		"KUBERNETES_SERVICE_PORT": "443",
		"KUBERNETES_PORT_443_TCP": "tcp://" + env["KUBERNETES_SERVICE_HOST"] + ":443",
	}
	for k, v := range want {
		if got, ok := env[k]; !ok || got != v {
			t.Errorf("env %s = %q (set %v), want %q", k, got, ok, v)
		}
	}
	if env["KUBERNETES_SERVICE_HOST"] == "" {
		t.Errorf("no KUBERNETES_SERVICE_HOST: %v", env)
	}
	if p.Status.PodIP == "" || p.Status.PodIP == "127.0.0.1" {
		t.Errorf("podIP %q", p.Status.PodIP)
	}
	// Names are checked with the relaxed rules (any printable ASCII but
	// '='), so a dashed key is kept.
	if env["CFG_dashed-key"] != "kept" {
		t.Errorf("envFrom dropped a key valid under the relaxed rules: %v", env)
	}
	// $(VAR) in args is expanded from the environment, $$ escapes, an
	// undefined reference stays as written.
	if out := c.kubectl(t, "logs", "-n", ns, "envy"); out != "arg=hello/envy/$(GREETING)/$(UNDEFINED)\n" {
		t.Errorf("expanded args printed %q", out)
	}
}

func testVolumeTypes(t *testing.T, c *cluster) {
	ns := c.namespace(t, "volumes")
	ctx := context.Background()
	if _, err := c.client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "files"},
		Data:       map[string]string{"a": "alpha", "b": "beta"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "keys"},
		Data:       map[string][]byte{"token": []byte("t0ken")},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	hostDir := filepath.Join(t.TempDir(), "made", "here")
	pod := busyboxPod(ns, "mounts", "sh", "-c", "exec sleep 3600")
	pod.Labels = map[string]string{"tier": "back", "x": "wye"}
	mode0400 := int32(0o400)
	labelsItem := corev1.DownwardAPIVolumeFile{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}}
	pod.Spec.Volumes = []corev1.Volume{
		{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "files"},
			Items:                []corev1.KeyToPath{{Key: "a", Path: "sub/a.txt", Mode: &mode0400}, {Key: "b", Path: "b.txt"}},
		}}},
		{Name: "secret", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "keys"}}},
		{Name: "downward", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{labelsItem}}}},
		{Name: "all-in-one", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "files"}, Items: []corev1.KeyToPath{{Key: "a", Path: "cm-a"}}}},
			{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "keys"}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
				{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}},
			}}},
		}}}},
		{Name: "ram", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: ptr.To(resource.MustParse("16Mi"))}}},
		{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: hostDir, Type: ptr.To(corev1.HostPathDirectoryOrCreate)}}},
		{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	ctr := &pod.Spec.Containers[0]
	ctr.Env = []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}
	ctr.VolumeMounts = []corev1.VolumeMount{
		{Name: "cm", MountPath: "/etc/cm"},
		{Name: "secret", MountPath: "/etc/secret"},
		{Name: "downward", MountPath: "/etc/podinfo"},
		{Name: "all-in-one", MountPath: "/etc/all"},
		{Name: "ram", MountPath: "/ram"},
		{Name: "host", MountPath: "/host"},
		{Name: "scratch", MountPath: "/scratch"},
		{Name: "scratch", MountPath: "/sub", SubPath: "one/two"},
		{Name: "scratch", MountPath: "/byname", SubPathExpr: "by-$(POD_NAME)"},
	}
	c.createPod(t, pod)
	c.waitPod(t, ns, "mounts", 60*time.Second, "ready", ready)

	// configMap: items at their paths, with their modes.
	if out := c.exec(t, ns, "mounts", "sh", "-c", "cat /etc/cm/sub/a.txt; echo; cat /etc/cm/b.txt; echo; stat -L -c %a /etc/cm/sub/a.txt /etc/cm/b.txt; ls /etc/cm"); out != "alpha\nbeta\n400\n644\nb.txt\nsub\n" {
		t.Errorf("configMap volume: %q", out)
	}
	// secret: on a tmpfs, never on disk.
	mounts := c.exec(t, ns, "mounts", "cat", "/proc/mounts")
	if !hasMount(mounts, "/etc/secret", "tmpfs") {
		t.Errorf("secret volume not on tmpfs:\n%s", mounts)
	}
	if !hasMount(mounts, "/etc/all", "tmpfs") {
		t.Errorf("projected volume not on tmpfs:\n%s", mounts)
	}
	if out := c.exec(t, ns, "mounts", "cat", "/etc/secret/token"); out != "t0ken" {
		t.Errorf("secret content %q", out)
	}
	// downwardAPI labels file.
	if out := c.exec(t, ns, "mounts", "cat", "/etc/podinfo/labels"); out != "tier=\"back\"\nx=\"wye\"" {
		t.Errorf("downwardAPI labels file: %q", out)
	}
	// projected: all three sources in one directory.
	if out := c.exec(t, ns, "mounts", "sh", "-c", "cat /etc/all/cm-a /etc/all/token /etc/all/name"); out != "alphat0kenmounts" {
		t.Errorf("projected volume: %q", out)
	}
	// emptyDir on memory with a size limit.
	df := c.exec(t, ns, "mounts", "df", "-k", "/ram")
	if f := strings.Fields(lastLine(df)); len(f) < 2 || f[0] != "tmpfs" || f[1] != "16384" {
		t.Errorf("memory emptyDir of 16Mi: df says %q", df)
	}
	// hostPath DirectoryOrCreate: created on the host, shared with it.
	c.exec(t, ns, "mounts", "sh", "-c", "echo from-pod > /host/f")
	if got := readFile(t, filepath.Join(hostDir, "f")); got != "from-pod\n" {
		t.Errorf("hostPath file on the host: %q", got)
	}
	// subPath and subPathExpr are directories inside the volume.
	c.exec(t, ns, "mounts", "sh", "-c", "echo deep > /sub/f; echo named > /byname/g")
	if out := c.exec(t, ns, "mounts", "sh", "-c", "cat /scratch/one/two/f /scratch/by-mounts/g"); out != "deep\nnamed\n" {
		t.Errorf("subPath/subPathExpr content seen through the whole volume: %q", out)
	}
	// Projected content is read-only to the container.
	if out := c.execFails(t, ns, "mounts", "touch", "/etc/cm/new"); !strings.Contains(out, "Read-only file system") {
		t.Errorf("writing a configMap volume: %q", out)
	}
}

// hasMount reports whether /proc/mounts text has a mount at path of fstype.
func hasMount(mounts, path, fstype string) bool {
	for _, line := range strings.Split(mounts, "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[1] == path && f[2] == fstype {
			return true
		}
	}
	return false
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func testHostPathTypeCheck(t *testing.T, c *cluster) {
	ns := c.namespace(t, "hostpath")
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	pod := busyboxPod(ns, "wrong-type", "sleep", "3600")
	pod.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: file, Type: ptr.To(corev1.HostPathDirectoryOrCreate)}}}}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	c.createPod(t, pod)
	c.waitEvent(t, ns, "wrong-type", `FailedMount: MountVolume.SetUp failed for volume "data" : hostPath type check failed: `+file+` is not a directory`, 30*time.Second)
	p := c.waitPod(t, ns, "wrong-type", 10*time.Second, "reported as ContainerCreating", func(p *corev1.Pod) bool { return waitingReason(p, "ContainerCreating") })
	if p.Status.Phase != corev1.PodPending {
		t.Errorf("pod with a failed mount: %s", statusString(p))
	}
	// It keeps failing (and retrying) rather than starting.
	time.Sleep(3 * time.Second)
	p = c.waitPod(t, ns, "wrong-type", 5*time.Second, "still ContainerCreating", func(p *corev1.Pod) bool { return waitingReason(p, "ContainerCreating") })
	if p.Status.Phase != corev1.PodPending {
		t.Errorf("pod with a failed mount: %s", statusString(p))
	}
	if info, err := os.Stat(file); err != nil || !info.Mode().IsRegular() {
		t.Errorf("the agent changed the hostPath file: %v %v", info, err)
	}
}

func testConfigMapUpdate(t *testing.T, c *cluster) {
	ns := c.namespace(t, "cmupdate")
	ctx := context.Background()
	cm, err := c.client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "live"},
		Data:       map[string]string{"key": "version-one"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A reader in the pod reads the file in a loop and records anything
	// other than a whole version: a torn or missing file would show.
	pod := busyboxPod(ns, "reader", "sh", "-c",
		`while true; do v=$(cat /cfg/key 2>&1); case "$v" in version-one|version-two) ;; *) echo "BAD:$v" >> /tmp/bad;; esac; usleep 2000; done`)
	pod.Spec.Volumes = []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "live"}}}}}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "cfg", MountPath: "/cfg"}}
	c.createPod(t, pod)
	c.waitPod(t, ns, "reader", 60*time.Second, "ready", ready)
	if out := c.exec(t, ns, "reader", "cat", "/cfg/..data/key"); out != "version-one" {
		t.Fatalf("initial content through ..data: %q", out)
	}
	if out := c.exec(t, ns, "reader", "readlink", "/cfg/key"); out != "..data/key\n" {
		t.Errorf("/cfg/key should link through ..data, links to %q", out)
	}
	before := c.exec(t, ns, "reader", "readlink", "/cfg/..data")

	cm.Data["key"] = "version-two"
	if _, err := c.client.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		out := c.exec(t, ns, "reader", "cat", "/cfg/..data/key")
		if out == "version-two" {
			break
		}
		if time.Since(start) > 40*time.Second {
			t.Fatalf("configMap update not in the pod after 40s: %q", out)
		}
		time.Sleep(time.Second)
	}
	t.Logf("configMap update reached the pod in %s", time.Since(start).Round(time.Second))
	after := c.exec(t, ns, "reader", "readlink", "/cfg/..data")
	if after == before || !strings.HasPrefix(after, "..") {
		t.Errorf("..data should move to a new version directory: before %q after %q", before, after)
	}
	if out := c.exec(t, ns, "reader", "cat", "/cfg/key"); out != "version-two" {
		t.Errorf("/cfg/key after the update: %q", out)
	}
	// Let the reader run a moment on the new version, then look at what
	// it saw during the swap.
	time.Sleep(500 * time.Millisecond)
	if out := c.exec(t, ns, "reader", "sh", "-c", "cat /tmp/bad 2>/dev/null; true"); out != "" {
		t.Errorf("the reader saw incomplete content during the update:\n%s", out)
	}
}

func testMissingSources(t *testing.T, c *cluster) {
	ns := c.namespace(t, "missing")
	ctx := context.Background()

	envPod := busyboxPod(ns, "env-missing", "sleep", "3600")
	envPod.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "V", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Key: "k",
	}}}}
	c.createPod(t, envPod)

	volPod := busyboxPod(ns, "vol-missing", "sleep", "3600")
	volPod.Spec.Volumes = []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "absent-too"}}}}}
	volPod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "cfg", MountPath: "/cfg"}}
	c.createPod(t, volPod)

	tokenPod := busyboxPod(ns, "sa-token", "sleep", "3600")
	tokenPod.Spec.Volumes = []corev1.Volume{{Name: "token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
		{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr.To(int64(3600))}},
	}}}}}
	tokenPod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "token", MountPath: "/var/run/secrets/tokens"}}
	c.createPod(t, tokenPod)

	p := c.waitPod(t, ns, "env-missing", 30*time.Second, "in CreateContainerConfigError", func(p *corev1.Pod) bool {
		return waitingReason(p, "CreateContainerConfigError")
	})
	if msg := p.Status.ContainerStatuses[0].State.Waiting.Message; msg != `configmap "absent" not found` {
		t.Errorf("CreateContainerConfigError message %q", msg)
	}
	c.waitEvent(t, ns, "env-missing", `Failed: Error: configmap "absent" not found`, 10*time.Second)

	c.waitEvent(t, ns, "vol-missing", `FailedMount: MountVolume.SetUp failed for volume "cfg" : configmap "absent-too" not found`, 30*time.Second)
	c.waitPod(t, ns, "vol-missing", 10*time.Second, "ContainerCreating", func(p *corev1.Pod) bool { return waitingReason(p, "ContainerCreating") })

	ev := c.waitEvent(t, ns, "sa-token", `FailedMount: MountVolume.SetUp failed for volume "token" : `, 30*time.Second)
	if !strings.Contains(ev, "service account token") {
		t.Errorf("serviceAccountToken FailedMount should say what is missing:\n%s", ev)
	}

	// Once the sources exist, both pods start (the agent keeps retrying).
	for _, name := range []string{"absent", "absent-too"} {
		if _, err := c.client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"k": "now-here"},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	c.waitPod(t, ns, "env-missing", 30*time.Second, "ready once its configMap exists", ready)
	c.waitPod(t, ns, "vol-missing", 30*time.Second, "ready once its configMap exists", ready)
	if out := c.exec(t, ns, "vol-missing", "cat", "/cfg/k"); out != "now-here" {
		t.Errorf("volume content after the configMap appeared: %q", out)
	}
}
