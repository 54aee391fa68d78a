package validation

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-sh/skiff/apiserver/defaults"
)

func TestPodCreate(t *testing.T) {
	c0 := "spec.containers[0]"
	runCreate(t, []createCase{
		{name: "valid", obj: pod(nil)},
		{name: "valid with most features", obj: pod(func(p *corev1.Pod) {
			c := &p.Spec.Containers[0]
			c.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 80}, {Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP}}
			c.Env = []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
				{Name: "K", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "k"}}}}
			c.EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}}}
			c.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "cfg", MountPath: "/etc/cfg", SubPath: "app.conf"}}
			c.Resources = corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: q("100m")}, Limits: corev1.ResourceList{corev1.ResourceCPU: q("1")}}
			c.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromString("http")}}}
			c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}}}
			p.Spec.InitContainers = []corev1.Container{container("init")}
			p.Spec.Volumes = []corev1.Volume{{Name: "data"}, {Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}}}}
			p.Spec.Tolerations = []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr(int64(5))}}
			p.Spec.NodeSelector = map[string]string{"kubernetes.io/os": "linux"}
		})},
		{name: "no containers", obj: pod(func(p *corev1.Pod) { p.Spec.Containers = nil }), want: []string{e(required, "spec.containers")}},
		{name: "bad container name", obj: pod(func(p *corev1.Pod) { p.Spec.Containers[0].Name = "App" }), want: []string{e(invalid, c0+".name")}},
		{name: "missing container name", obj: pod(func(p *corev1.Pod) { p.Spec.Containers[0].Name = "" }), want: []string{e(required, c0+".name")}},
		{name: "container names unique across init and main", obj: pod(func(p *corev1.Pod) { p.Spec.InitContainers = []corev1.Container{container("app")} }),
			want: []string{e(duplicate, c0+".name")}},
		{name: "image required", obj: pod(func(p *corev1.Pod) { p.Spec.Containers[0].Image = "" }), want: []string{e(required, c0+".image")}},
		{name: "ports", obj: pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{
				{ContainerPort: 0}, {ContainerPort: 70000}, {ContainerPort: 80, Protocol: "FOO"},
				{Name: "much-too-long-port-name", ContainerPort: 81}, {Name: "web", ContainerPort: 82}, {Name: "web", ContainerPort: 83},
			}
		}), want: []string{e(required, c0+".ports[0].containerPort"), e(invalid, c0+".ports[1].containerPort"),
			e(notSupported, c0+".ports[2].protocol"), e(invalid, c0+".ports[3].name"), e(duplicate, c0+".ports[5].name")}},
		{name: "host port clash between containers", obj: pod(func(p *corev1.Pod) {
			a, b := container("a"), container("b")
			a.Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: 8080}}
			b.Ports = []corev1.ContainerPort{{ContainerPort: 81, HostPort: 8080}}
			p.Spec.Containers = []corev1.Container{a, b}
		}), want: []string{e(duplicate, "spec.containers[1].ports[0].hostPort")}},
		{name: "host network needs host port = container port", obj: pod(func(p *corev1.Pod) {
			p.Spec.HostNetwork = true
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: 81}}
		}), want: []string{e(invalid, c0+".ports[0].hostPort")}},
		{name: "restart and dns policy", obj: pod(func(p *corev1.Pod) { p.Spec.RestartPolicy = "Sometimes"; p.Spec.DNSPolicy = "Magic" }),
			want: []string{e(notSupported, "spec.restartPolicy"), e(notSupported, "spec.dnsPolicy")}},
		{name: "dns policy None needs dnsConfig", obj: pod(func(p *corev1.Pod) { p.Spec.DNSPolicy = corev1.DNSNone }),
			want: []string{e(required, "spec.dnsConfig")}},
		{name: "volumes", obj: pod(func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{
				{Name: "a", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}, ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "c"}}}},
				{Name: "a", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{}}},
				{Name: "Bad_Name", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/x/../y"}}},
				{Name: "mode", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "c"}, DefaultMode: ptr(int32(01000)),
					Items: []corev1.KeyToPath{{Key: "k", Path: "/abs"}}}}},
				{Name: "claim", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{}}},
			}
		}), want: []string{e(forbidden, "spec.volumes[0].configMap"), e(duplicate, "spec.volumes[1].name"), e(required, "spec.volumes[1].secret.secretName"),
			e(invalid, "spec.volumes[2].name"), e(invalid, "spec.volumes[2].hostPath.path"), e(invalid, "spec.volumes[3].configMap.defaultMode"),
			e(invalid, "spec.volumes[3].configMap.items[0].path"), e(required, "spec.volumes[4].persistentVolumeClaim.claimName")}},
		{name: "volume without source", raw: true, obj: pod(func(p *corev1.Pod) {
			defaultedPod(p)
			p.Spec.Volumes = []corev1.Volume{{Name: "v"}}
		}), want: []string{e(required, "spec.volumes[0]")}},
		{name: "volume mounts", obj: pod(func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "data"}}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "nope", MountPath: "/a"}, {Name: "data", MountPath: "/a"},
				{Name: "data", MountPath: "/b", SubPath: "../x"}, {Name: "data"}}
		}), want: []string{e(notFound, c0+".volumeMounts[0].name"), e(invalid, c0+".volumeMounts[1].mountPath"),
			e(invalid, c0+".volumeMounts[2].subPath"), e(required, c0+".volumeMounts[3].mountPath")}},
		{name: "env", obj: pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A=B"}, {Name: ""},
				{Name: "X", Value: "v", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.containers"}}},
				{Name: "Y", ValueFrom: &corev1.EnvVarSource{}},
				{Name: "Z", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{Key: "bad key"}}}}
		}), want: []string{e(invalid, c0+".env[0].name"), e(required, c0+".env[1].name"), e(notSupported, c0+".env[2].valueFrom.fieldRef.fieldPath"),
			e(invalid, c0+".env[2].valueFrom"), e(invalid, c0+".env[3].valueFrom"), e(required, c0+".env[4].valueFrom.configMapKeyRef.name"),
			e(invalid, c0+".env[4].valueFrom.configMapKeyRef.key")}},
		{name: "resources", obj: pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: q("2"), "gpus": q("1"), "example.com/dev": q("1")},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: q("1"), corev1.ResourceMemory: q("-1")},
			}
		}), want: []string{e(invalid, c0+".resources.requests"), e(invalid, c0+".resources.requests[gpus]"),
			// The memory request is defaulted from the limit.
			e(invalid, c0+".resources.requests[memory]"),
			e(required, c0+".resources.limits"), e(invalid, c0+".resources.limits[memory]")}},
		{name: "probes", obj: pod(func(p *corev1.Pod) {
			c := &p.Spec.Containers[0]
			c.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
				Exec: &corev1.ExecAction{Command: []string{"true"}}, TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(1)}}}
			c.ReadinessProbe = &corev1.Probe{}
			c.StartupProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(0)}}, SuccessThreshold: 2}
		}), want: []string{e(forbidden, c0+".livenessProbe.tcpSocket"), e(required, c0+".readinessProbe"),
			e(invalid, c0+".startupProbe.httpGet.port"), e(invalid, c0+".startupProbe.successThreshold")}},
		{name: "init containers may not have probes", obj: pod(func(p *corev1.Pod) {
			ic := container("init")
			ic.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"x"}}}}
			p.Spec.InitContainers = []corev1.Container{ic}
		}), want: []string{e(forbidden, "spec.initContainers[0].livenessProbe")}},
		{name: "sidecar init containers may", obj: pod(func(p *corev1.Pod) {
			ic := container("init")
			ic.RestartPolicy = ptr(corev1.ContainerRestartPolicyAlways)
			ic.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"x"}}}}
			p.Spec.InitContainers = []corev1.Container{ic}
		})},
		{name: "tolerations", obj: pod(func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{
				{Key: "k", Operator: corev1.TolerationOpExists, Value: "v"},
				{Operator: corev1.TolerationOpEqual, Value: "v"},
				{Key: "k", Effect: corev1.TaintEffectNoSchedule, TolerationSeconds: ptr(int64(1))},
				{Key: "k", Operator: "Sometimes"},
			}
		}), want: []string{e(invalid, "spec.tolerations[0].operator"), e(invalid, "spec.tolerations[1].operator"),
			e(invalid, "spec.tolerations[2].effect"), e(notSupported, "spec.tolerations[3].operator")}},
		{name: "affinity and spread", obj: pod(func(p *corev1.Pod) {
			p.Spec.Affinity = &corev1.Affinity{
				NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{}},
				PodAntiAffinity: &corev1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{
					{Weight: 0, PodAffinityTerm: corev1.PodAffinityTerm{}}}},
			}
			p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{MaxSkew: 0, TopologyKey: "zone", WhenUnsatisfiable: "Maybe"}}
		}), want: []string{e(required, "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"),
			e(invalid, "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight"),
			e(required, "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey"),
			e(invalid, "spec.topologySpreadConstraints[0].maxSkew"), e(notSupported, "spec.topologySpreadConstraints[0].whenUnsatisfiable")}},
		{name: "metadata", obj: pod(func(p *corev1.Pod) {
			p.Name = "Web_1"
			p.Namespace = ""
			p.Labels = map[string]string{"bad key!": "v"}
			p.Annotations = map[string]string{"big": strings.Repeat("x", 256*1024)}
		}), want: []string{e(invalid, "metadata.name"), e(required, "metadata.namespace"), e(invalid, "metadata.labels"), e(tooLong, "metadata.annotations")}},
		{name: "pod spec fields", obj: pod(func(p *corev1.Pod) {
			p.Spec.ServiceAccountName = "Robot"
			p.Spec.ActiveDeadlineSeconds = ptr(int64(0))
			p.Spec.Hostname = "a.b"
		}), want: []string{e(invalid, "spec.serviceAccountName"), e(invalid, "spec.activeDeadlineSeconds"), e(invalid, "spec.hostname")}},
	})
}

// defaultedPod fills p with defaults without touching its volumes.
func defaultedPod(p *corev1.Pod) {
	vs := p.Spec.Volumes
	p.Spec.Volumes = nil
	defaults.Apply(p)
	p.Spec.Volumes = vs
}

func TestPodUpdate(t *testing.T) {
	base := func() *corev1.Pod {
		return pod(func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Key: "a", Operator: corev1.TolerationOpExists}}
			p.Spec.ActiveDeadlineSeconds = ptr(int64(100))
			p.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "example.com/wait"}}
		})
	}
	change := func(f func(p *corev1.Pod)) func(runtime.Object) {
		return func(o runtime.Object) { f(o.(*corev1.Pod)) }
	}
	runUpdate(t, []updateCase{
		{name: "image", old: base(), change: change(func(p *corev1.Pod) { p.Spec.Containers[0].Image = "nginx:1.27" })},
		{name: "labels", old: base(), change: change(func(p *corev1.Pod) { p.Labels = map[string]string{"x": "y"} })},
		{name: "missing resourceVersion is the server's business", old: base(), change: change(func(p *corev1.Pod) { p.ResourceVersion = "" })},
		{name: "env", old: base(), change: change(func(p *corev1.Pod) { p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A", Value: "b"}} }),
			want: []string{e(forbidden, "spec")}},
		{name: "add container", old: base(), change: change(func(p *corev1.Pod) { p.Spec.Containers = append(p.Spec.Containers, container("two")) }),
			want: []string{e(forbidden, "spec.containers")}},
		{name: "empty image", old: base(), change: change(func(p *corev1.Pod) { p.Spec.Containers[0].Image = "" }),
			want: []string{e(required, "spec.containers[0].image")}},
		{name: "add toleration", old: base(), change: change(func(p *corev1.Pod) {
			p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: "b", Operator: corev1.TolerationOpExists})
		})},
		{name: "remove toleration", old: base(), change: change(func(p *corev1.Pod) { p.Spec.Tolerations = nil }),
			want: []string{e(forbidden, "spec.tolerations")}},
		{name: "lower deadline", old: base(), change: change(func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr(int64(50)) })},
		{name: "raise deadline", old: base(), change: change(func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr(int64(500)) }),
			want: []string{e(invalid, "spec.activeDeadlineSeconds")}},
		{name: "drop deadline", old: base(), change: change(func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = nil }),
			want: []string{e(invalid, "spec.activeDeadlineSeconds")}},
		{name: "grace period from negative to 1", old: pod(func(p *corev1.Pod) { p.Spec.TerminationGracePeriodSeconds = ptr(int64(-1)) }),
			change: change(func(p *corev1.Pod) { p.Spec.TerminationGracePeriodSeconds = ptr(int64(1)) })},
		{name: "grace period otherwise", old: base(), change: change(func(p *corev1.Pod) { p.Spec.TerminationGracePeriodSeconds = ptr(int64(5)) }),
			want: []string{e(forbidden, "spec")}},
		{name: "remove scheduling gate and add node selector", old: base(), change: change(func(p *corev1.Pod) {
			p.Spec.SchedulingGates = nil
			p.Spec.NodeSelector = map[string]string{"zone": "a"}
		})},
		{name: "add scheduling gate", old: base(), change: change(func(p *corev1.Pod) {
			p.Spec.SchedulingGates = append(p.Spec.SchedulingGates, corev1.PodSchedulingGate{Name: "example.com/more"})
		}), want: []string{e(forbidden, "spec.schedulingGates")}},
		{name: "node selector without gates", old: pod(nil), change: change(func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"zone": "a"} }),
			want: []string{e(forbidden, "spec")}},
		{name: "name", old: base(), change: change(func(p *corev1.Pod) { p.Name = "other" }), want: []string{e(invalid, "metadata.name")}},
		{name: "uid", old: pod(func(p *corev1.Pod) { p.UID = "u1" }), change: change(func(p *corev1.Pod) { p.UID = "u2" }),
			want: []string{e(invalid, "metadata.uid")}},
	})
}

func TestPodUpdateMessageNamesChangedFields(t *testing.T) {
	old := pod(nil)
	defaults.Apply(old)
	old.ResourceVersion = "1"
	cur := old.DeepCopy()
	cur.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A", Value: "b"}}
	cur.Spec.Hostname = "h"
	errs := ValidateUpdate(cur, old)
	if len(errs) != 1 {
		t.Fatalf("want one error, got %v", errs)
	}
	msg := errs[0].Detail
	for _, want := range []string{"pod updates may not change fields other than", "spec.containers[0].env", "spec.hostname"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
}

func TestPodTemplate(t *testing.T) {
	runCreate(t, []createCase{
		{name: "valid", obj: &corev1.PodTemplate{ObjectMeta: nsMeta("t"), Template: podTemplate(nil)}},
		{name: "bad container", obj: &corev1.PodTemplate{ObjectMeta: nsMeta("t"), Template: podTemplate(func(t *corev1.PodTemplateSpec) {
			t.Spec.Containers[0].Image = ""
			t.Labels = map[string]string{"a": "not valid!"}
		})}, want: []string{e(required, "template.spec.containers[0].image"), e(invalid, "template.metadata.labels")}},
	})
}

func TestUnknownTypesPass(t *testing.T) {
	if errs := ValidateCreate(&metav1.Status{}); errs != nil {
		t.Errorf("ValidateCreate of an unknown type = %v", errs)
	}
	if errs := ValidateUpdate(&metav1.Status{}, &metav1.Status{}); errs != nil {
		t.Errorf("ValidateUpdate of an unknown type = %v", errs)
	}
}

func TestUpdateWithMismatchedTypes(t *testing.T) {
	errs := ValidateUpdate(pod(nil), &corev1.Service{})
	if len(errs) != 1 || errs[0].Type != field.ErrorTypeInternal {
		t.Errorf("want one internal error, got %v", errs)
	}
}
