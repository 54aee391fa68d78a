package defaults

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// explicitSpec is a pod spec whose every defaulted field has a non-default
// value.
func explicitSpec() corev1.PodSpec {
	probe := &corev1.Probe{
		ProbeHandler:   corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(1), Scheme: corev1.URISchemeHTTPS}},
		TimeoutSeconds: 5, PeriodSeconds: 7, SuccessThreshold: 2, FailureThreshold: 9,
	}
	return corev1.PodSpec{
		Containers: []corev1.Container{{
			Name: "c", Image: "img", ImagePullPolicy: corev1.PullNever,
			TerminationMessagePath: "/tmp/t", TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
			Ports: []corev1.ContainerPort{{ContainerPort: 80, HostPort: 8080, Protocol: corev1.ProtocolSCTP}},
			Env: []corev1.EnvVar{{Name: "N", ValueFrom: &corev1.EnvVarSource{
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v2", FieldPath: "metadata.name"}}}},
			Resources: corev1.ResourceRequirements{
				Limits:   corev1.ResourceList{corev1.ResourceCPU: q("2")},
				Requests: corev1.ResourceList{corev1.ResourceCPU: q("1")},
			},
			ReadinessProbe: probe,
			StartupProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 1, Service: ptr("svc")}},
				TimeoutSeconds: 5, PeriodSeconds: 7, SuccessThreshold: 1, FailureThreshold: 9},
		}},
		Volumes: []corev1.Volume{
			{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{DefaultMode: ptr(int32(0400))}}},
			{Name: "hp", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/x", Type: ptr(corev1.HostPathDirectory)}}},
			{Name: "tok", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{DefaultMode: ptr(int32(0440)),
				Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "t", ExpirationSeconds: ptr(int64(600))}}}}}},
		},
		HostNetwork:                   true,
		RestartPolicy:                 corev1.RestartPolicyNever,
		DNSPolicy:                     corev1.DNSDefault,
		TerminationGracePeriodSeconds: ptr(int64(5)),
		SchedulerName:                 "mine",
		SecurityContext:               &corev1.PodSecurityContext{RunAsUser: ptr(int64(1000))},
		EnableServiceLinks:            ptr(false),
		ServiceAccountName:            "robot",
		DeprecatedServiceAccount:      "robot",
		Priority:                      ptr(int32(7)),
		PreemptionPolicy:              ptr(corev1.PreemptNever),
	}
}

func explicitTemplate() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"a": "b"}}, Spec: explicitSpec()}
}

func explicitObjects() map[string]runtime.Object {
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}}
	return map[string]runtime.Object{
		"pod": &corev1.Pod{ObjectMeta: meta, Spec: explicitSpec(),
			Status: corev1.PodStatus{Phase: corev1.PodRunning, QOSClass: corev1.PodQOSGuaranteed}},
		"deployment": &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(0)), Selector: sel, Template: explicitTemplate(),
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: ptr(intstr.FromInt32(0)), MaxSurge: ptr(intstr.FromInt32(3))}},
			RevisionHistoryLimit: ptr(int32(0)), ProgressDeadlineSeconds: ptr(int32(60)),
		}},
		"replication controller": &corev1.ReplicationController{
			ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "ns", Labels: map[string]string{"own": "label"}},
			Spec: corev1.ReplicationControllerSpec{Replicas: ptr(int32(3)), Selector: map[string]string{"a": "b"},
				Template: ptr(explicitTemplate())}},
		"daemonset": &appsv1.DaemonSet{ObjectMeta: meta, Spec: appsv1.DaemonSetSpec{
			Selector: sel, Template: explicitTemplate(), RevisionHistoryLimit: ptr(int32(1)),
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: ptr(intstr.FromString("10%")), MaxSurge: ptr(intstr.FromInt32(2))}},
		}},
		"statefulset": &appsv1.StatefulSet{ObjectMeta: meta, Spec: appsv1.StatefulSetSpec{
			Replicas: ptr(int32(5)), Selector: sel, Template: explicitTemplate(),
			PodManagementPolicy: appsv1.ParallelPodManagement,
			UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr(int32(2))}},
			RevisionHistoryLimit: ptr(int32(3)),
			PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
				WhenDeleted: appsv1.DeletePersistentVolumeClaimRetentionPolicyType, WhenScaled: appsv1.DeletePersistentVolumeClaimRetentionPolicyType},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "d"},
				Spec:   corev1.PersistentVolumeClaimSpec{VolumeMode: ptr(corev1.PersistentVolumeBlock)},
				Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound}}},
		}},
		"job": &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "ns", UID: "u", Labels: map[string]string{"own": "label"}},
			Spec: batchv1.JobSpec{
				Completions: ptr(int32(4)), Parallelism: ptr(int32(2)), BackoffLimit: ptr(int32(0)),
				CompletionMode: ptr(batchv1.IndexedCompletion), Suspend: ptr(true), ManualSelector: ptr(true),
				PodReplacementPolicy: ptr(batchv1.Failed), Selector: sel, Template: explicitTemplate(),
			}},
		"cronjob": &batchv1.CronJob{ObjectMeta: meta, Spec: batchv1.CronJobSpec{
			Schedule: "@hourly", ConcurrencyPolicy: batchv1.ForbidConcurrent, Suspend: ptr(true),
			SuccessfulJobsHistoryLimit: ptr(int32(0)), FailedJobsHistoryLimit: ptr(int32(0)),
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: explicitTemplate()}},
		}},
		"service": &corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeNodePort, SessionAffinity: corev1.ServiceAffinityClientIP,
			SessionAffinityConfig: &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr(int32(60))}},
			Ports:                 []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolUDP}},
			ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
			InternalTrafficPolicy: ptr(corev1.ServiceInternalTrafficPolicyLocal),
			ClusterIP:             "10.0.0.1", ClusterIPs: []string{"10.0.0.1"},
			IPFamilyPolicy: ptr(corev1.IPFamilyPolicyPreferDualStack), IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol},
		}},
		"load balancer": &corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeLoadBalancer, SessionAffinity: corev1.ServiceAffinityNone,
			AllocateLoadBalancerNodePorts: ptr(false), ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
			InternalTrafficPolicy: ptr(corev1.ServiceInternalTrafficPolicyCluster),
			IPFamilyPolicy:        ptr(corev1.IPFamilyPolicySingleStack), IPFamilies: []corev1.IPFamily{corev1.IPv6Protocol},
		}},
		"secret": &corev1.Secret{ObjectMeta: meta, Type: corev1.SecretTypeTLS},
		"namespace": &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "n", Labels: map[string]string{"kubernetes.io/metadata.name": "n"}},
			Spec:   corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"example.com/f"}},
			Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}},
		"persistent volume": &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv"}, Spec: corev1.PersistentVolumeSpec{
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete, VolumeMode: ptr(corev1.PersistentVolumeBlock)},
			Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeAvailable}},
		"persistent volume claim": &corev1.PersistentVolumeClaim{ObjectMeta: meta,
			Spec:   corev1.PersistentVolumeClaimSpec{VolumeMode: ptr(corev1.PersistentVolumeBlock)},
			Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound}},
		"endpointslice": &discoveryv1.EndpointSlice{ObjectMeta: meta, AddressType: discoveryv1.AddressTypeIPv4,
			Ports: []discoveryv1.EndpointPort{{Name: ptr("http"), Protocol: ptr(corev1.ProtocolUDP)}}},
		"network policy": &networkingv1.NetworkPolicy{ObjectMeta: meta, Spec: networkingv1.NetworkPolicySpec{
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Protocol: ptr(corev1.ProtocolUDP)}}}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}}},
		"role binding": &rbacv1.RoleBinding{ObjectMeta: meta, RoleRef: rbacv1.RoleRef{APIGroup: "other.example.com", Kind: "Role", Name: "r"},
			Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: "other.example.com", Name: "u"}}},
		"storage class": &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "sc"}, Provisioner: "p",
			ReclaimPolicy: ptr(corev1.PersistentVolumeReclaimRetain), VolumeBindingMode: ptr(storagev1.VolumeBindingWaitForFirstConsumer)},
		"priority class": &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "pc"}, PreemptionPolicy: ptr(corev1.PreemptNever)},
	}
}

func TestApplyKeepsExplicitValues(t *testing.T) {
	for name, obj := range explicitObjects() {
		t.Run(name, func(t *testing.T) {
			want := obj.DeepCopyObject()
			Apply(obj)
			mustEqual(t, obj, want)
		})
	}
}

func TestNamespaceLabelFollowsName(t *testing.T) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "real", Labels: map[string]string{"kubernetes.io/metadata.name": "fake"}}}
	Apply(ns)
	if got := ns.Labels["kubernetes.io/metadata.name"]; got != "real" {
		t.Errorf("label = %q, want %q", got, "real")
	}
	unnamed := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "gen-"}}
	Apply(unnamed)
	if _, ok := unnamed.Labels["kubernetes.io/metadata.name"]; ok {
		t.Errorf("a namespace without a name got the name label")
	}
}

func TestPodTemplatesGetNoPodOnlyDefaults(t *testing.T) {
	d := &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
		HostNetwork: true,
		Containers: []corev1.Container{{Name: "c", Image: "i", Ports: []corev1.ContainerPort{{ContainerPort: 80}},
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: q("1")}}}},
	}}}}
	Apply(d)
	s := d.Spec.Template.Spec
	c := s.Containers[0]
	if c.Resources.Requests != nil {
		t.Errorf("template requests were defaulted from limits: %v", c.Resources.Requests)
	}
	if c.Ports[0].HostPort != 0 {
		t.Errorf("template host port was defaulted to %d", c.Ports[0].HostPort)
	}
	if s.EnableServiceLinks != nil {
		t.Errorf("template got the pod-only enableServiceLinks default")
	}
}

func TestImageTag(t *testing.T) {
	for _, tc := range []struct {
		image, tag string
		policy     corev1.PullPolicy
	}{
		{"nginx", "latest", corev1.PullAlways},
		{"nginx:latest", "latest", corev1.PullAlways},
		{"nginx:1.25", "1.25", corev1.PullIfNotPresent},
		{"registry.example.com:5000/team/app", "latest", corev1.PullAlways},
		{"registry.example.com:5000/team/app:v2", "v2", corev1.PullIfNotPresent},
		{"localhost/app", "latest", corev1.PullAlways},
		{"app@sha256:0123", "", corev1.PullIfNotPresent},
		{"app:latest@sha256:0123", "latest", corev1.PullAlways},
		{"Registry.Example.com/app", "latest", corev1.PullAlways},
		{"library/Nginx", "", corev1.PullIfNotPresent},
		{"", "", corev1.PullIfNotPresent},
		{"bad image", "", corev1.PullIfNotPresent},
	} {
		if got := imageTag(tc.image); got != tc.tag {
			t.Errorf("imageTag(%q) = %q, want %q", tc.image, got, tc.tag)
		}
		c := corev1.Container{Image: tc.image}
		container(&c)
		if c.ImagePullPolicy != tc.policy {
			t.Errorf("pull policy for %q = %s, want %s", tc.image, c.ImagePullPolicy, tc.policy)
		}
	}
}
