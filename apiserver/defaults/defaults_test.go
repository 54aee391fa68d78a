package defaults

import (
	"encoding/json"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func ptr[T any](v T) *T { return &v }

func q(s string) resource.Quantity { return resource.MustParse(s) }

// mustEqual fails with both objects as JSON when they differ semantically.
func mustEqual(t *testing.T, got, want runtime.Object) {
	t.Helper()
	if apiequality.Semantic.DeepEqual(got, want) {
		return
	}
	g, _ := json.MarshalIndent(got, "", "  ")
	w, _ := json.MarshalIndent(want, "", "  ")
	t.Errorf("objects differ\n%s", lineDiff(string(w), string(g)))
}

// lineDiff lists the lines only in want (-) or only in got (+).
func lineDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	count := map[string]int{}
	for _, l := range gl {
		count[l]++
	}
	var b strings.Builder
	for _, l := range wl {
		if count[l] > 0 {
			count[l]--
			continue
		}
		b.WriteString("- " + l + "\n")
	}
	count = map[string]int{}
	for _, l := range wl {
		count[l]++
	}
	for _, l := range gl {
		if count[l] > 0 {
			count[l]--
			continue
		}
		b.WriteString("+ " + l + "\n")
	}
	return b.String()
}

var meta = metav1.ObjectMeta{Name: "x", Namespace: "ns"}

// defaultedContainer is container c with every container default set.
func defaultedContainer(c corev1.Container) corev1.Container {
	c.TerminationMessagePath = "/dev/termination-log"
	c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
	if c.ImagePullPolicy == "" {
		c.ImagePullPolicy = corev1.PullIfNotPresent
	}
	return c
}

// defaultedTemplateSpec is the pod spec a template gets from containers cs.
func defaultedTemplateSpec(cs ...corev1.Container) corev1.PodSpec {
	s := corev1.PodSpec{
		RestartPolicy:                 corev1.RestartPolicyAlways,
		DNSPolicy:                     corev1.DNSClusterFirst,
		TerminationGracePeriodSeconds: ptr(int64(30)),
		SchedulerName:                 "default-scheduler",
		SecurityContext:               &corev1.PodSecurityContext{},
	}
	for _, c := range cs {
		s.Containers = append(s.Containers, defaultedContainer(c))
	}
	return s
}

func template(labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "img:1"}}},
	}
}

func defaultedTemplate(labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       defaultedTemplateSpec(corev1.Container{Name: "c", Image: "img:1"}),
	}
}

type defaultCase struct {
	name string
	in   runtime.Object
	want runtime.Object
}

func podCases() []defaultCase {
	return []defaultCase{
		{
			name: "pod",
			in: &corev1.Pod{ObjectMeta: meta, Spec: corev1.PodSpec{
				Containers: []corev1.Container{{
					Name: "c", Image: "nginx",
					Ports: []corev1.ContainerPort{{ContainerPort: 80}},
					Env: []corev1.EnvVar{{Name: "N", ValueFrom: &corev1.EnvVarSource{
						FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
					Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{
						corev1.ResourceCPU: q("1"), corev1.ResourceMemory: q("1Gi")}},
					LivenessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(8080)}}},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9}}},
					Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
						HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromString("http")}}},
				}},
				InitContainers: []corev1.Container{{Name: "i", Image: "busybox@sha256:abc"}},
				Volumes: []corev1.Volume{
					{Name: "empty"},
					{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}},
					{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s"}}},
					{Name: "hp", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/x"}}},
					{Name: "dapi", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
						Items: []corev1.DownwardAPIVolumeFile{{Path: "n", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}}},
					{Name: "proj", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
						Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "t"}}}}}},
				},
			}},
			want: &corev1.Pod{ObjectMeta: meta, Spec: corev1.PodSpec{
				Containers: []corev1.Container{{
					Name: "c", Image: "nginx", ImagePullPolicy: corev1.PullAlways,
					Ports: []corev1.ContainerPort{{ContainerPort: 80, Protocol: corev1.ProtocolTCP}},
					Env: []corev1.EnvVar{{Name: "N", ValueFrom: &corev1.EnvVarSource{
						FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}}},
					Resources: corev1.ResourceRequirements{
						Limits:   corev1.ResourceList{corev1.ResourceCPU: q("1"), corev1.ResourceMemory: q("1Gi")},
						Requests: corev1.ResourceList{corev1.ResourceCPU: q("1"), corev1.ResourceMemory: q("1Gi")},
					},
					LivenessProbe: &corev1.Probe{
						ProbeHandler:   corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(8080), Scheme: corev1.URISchemeHTTP}},
						TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3,
					},
					ReadinessProbe: &corev1.Probe{
						ProbeHandler:   corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9, Service: ptr("")}},
						TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3,
					},
					Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
						HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromString("http"), Scheme: corev1.URISchemeHTTP}}},
					TerminationMessagePath:   "/dev/termination-log",
					TerminationMessagePolicy: corev1.TerminationMessageReadFile,
				}},
				InitContainers: []corev1.Container{defaultedContainer(corev1.Container{Name: "i", Image: "busybox@sha256:abc"})},
				Volumes: []corev1.Volume{
					{Name: "empty", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
					{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{DefaultMode: ptr(int32(0644))}}},
					{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s", DefaultMode: ptr(int32(0644))}}},
					{Name: "hp", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/x", Type: ptr(corev1.HostPathUnset)}}},
					{Name: "dapi", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
						DefaultMode: ptr(int32(0644)),
						Items:       []corev1.DownwardAPIVolumeFile{{Path: "n", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}}}}},
					{Name: "proj", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
						DefaultMode: ptr(int32(0644)),
						Sources:     []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "t", ExpirationSeconds: ptr(int64(3600))}}}}}},
				},
				RestartPolicy:                 corev1.RestartPolicyAlways,
				DNSPolicy:                     corev1.DNSClusterFirst,
				TerminationGracePeriodSeconds: ptr(int64(30)),
				SchedulerName:                 "default-scheduler",
				SecurityContext:               &corev1.PodSecurityContext{},
				EnableServiceLinks:            ptr(true),
			}},
		},
		{
			name: "pod with host network and the deprecated service account field",
			in: &corev1.Pod{ObjectMeta: meta, Spec: corev1.PodSpec{
				HostNetwork:              true,
				DeprecatedServiceAccount: "robot",
				Containers: []corev1.Container{{Name: "c", Image: "img:latest",
					Ports: []corev1.ContainerPort{{ContainerPort: 53, Protocol: corev1.ProtocolUDP}}}},
			}},
			want: &corev1.Pod{ObjectMeta: meta, Spec: func() corev1.PodSpec {
				s := defaultedTemplateSpec(corev1.Container{Name: "c", Image: "img:latest", ImagePullPolicy: corev1.PullAlways,
					Ports: []corev1.ContainerPort{{ContainerPort: 53, HostPort: 53, Protocol: corev1.ProtocolUDP}}})
				s.HostNetwork = true
				s.EnableServiceLinks = ptr(true)
				s.ServiceAccountName = "robot"
				s.DeprecatedServiceAccount = "robot"
				return s
			}()},
		},
		{
			name: "pod template",
			in:   &corev1.PodTemplate{ObjectMeta: meta, Template: template(map[string]string{"a": "b"})},
			want: &corev1.PodTemplate{ObjectMeta: meta, Template: defaultedTemplate(map[string]string{"a": "b"})},
		},
	}
}

func workloadCases() []defaultCase {
	labels := map[string]string{"app": "web"}
	sel := &metav1.LabelSelector{MatchLabels: labels}
	return []defaultCase{
		{
			name: "deployment",
			in:   &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{Selector: sel, Template: template(labels)}},
			want: &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{
				Replicas: ptr(int32(1)), Selector: sel, Template: defaultedTemplate(labels),
				Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
					RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: ptr(intstr.FromString("25%")), MaxSurge: ptr(intstr.FromString("25%"))}},
				RevisionHistoryLimit: ptr(int32(10)), ProgressDeadlineSeconds: ptr(int32(600)),
			}},
		},
		{
			name: "deployment recreate",
			in: &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{Selector: sel, Template: template(labels),
				Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}}},
			want: &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{
				Replicas: ptr(int32(1)), Selector: sel, Template: defaultedTemplate(labels),
				Strategy:             appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
				RevisionHistoryLimit: ptr(int32(10)), ProgressDeadlineSeconds: ptr(int32(600)),
			}},
		},
		{
			name: "replicaset",
			in:   &appsv1.ReplicaSet{ObjectMeta: meta, Spec: appsv1.ReplicaSetSpec{Selector: sel, Template: template(labels)}},
			want: &appsv1.ReplicaSet{ObjectMeta: meta, Spec: appsv1.ReplicaSetSpec{Replicas: ptr(int32(1)), Selector: sel, Template: defaultedTemplate(labels)}},
		},
		{
			name: "replication controller takes selector and labels from its template",
			in:   &corev1.ReplicationController{ObjectMeta: meta, Spec: corev1.ReplicationControllerSpec{Template: ptr(template(labels))}},
			want: &corev1.ReplicationController{
				ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "ns", Labels: labels},
				Spec:       corev1.ReplicationControllerSpec{Replicas: ptr(int32(1)), Selector: labels, Template: ptr(defaultedTemplate(labels))},
			},
		},
		{
			name: "daemonset",
			in:   &appsv1.DaemonSet{ObjectMeta: meta, Spec: appsv1.DaemonSetSpec{Selector: sel, Template: template(labels)}},
			want: &appsv1.DaemonSet{ObjectMeta: meta, Spec: appsv1.DaemonSetSpec{
				Selector: sel, Template: defaultedTemplate(labels),
				UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
					RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: ptr(intstr.FromInt32(1)), MaxSurge: ptr(intstr.FromInt32(0))}},
				RevisionHistoryLimit: ptr(int32(10)),
			}},
		},
		{
			name: "statefulset",
			in: &appsv1.StatefulSet{ObjectMeta: meta, Spec: appsv1.StatefulSetSpec{Selector: sel, Template: template(labels),
				VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}}}}},
			want: &appsv1.StatefulSet{ObjectMeta: meta, Spec: appsv1.StatefulSetSpec{
				Replicas: ptr(int32(1)), Selector: sel, Template: defaultedTemplate(labels),
				PodManagementPolicy: appsv1.OrderedReadyPodManagement,
				UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
					RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr(int32(0))}},
				RevisionHistoryLimit: ptr(int32(10)),
				PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
					WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType, WhenScaled: appsv1.RetainPersistentVolumeClaimRetentionPolicyType},
				VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"},
					Spec:   corev1.PersistentVolumeClaimSpec{VolumeMode: ptr(corev1.PersistentVolumeFilesystem)},
					Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending}}},
			}},
		},
		{
			name: "statefulset on delete gets no rolling update",
			in: &appsv1.StatefulSet{ObjectMeta: meta, Spec: appsv1.StatefulSetSpec{Selector: sel, Template: template(labels),
				UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}}},
			want: &appsv1.StatefulSet{ObjectMeta: meta, Spec: appsv1.StatefulSetSpec{
				Replicas: ptr(int32(1)), Selector: sel, Template: defaultedTemplate(labels),
				PodManagementPolicy:  appsv1.OrderedReadyPodManagement,
				UpdateStrategy:       appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType},
				RevisionHistoryLimit: ptr(int32(10)),
				PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
					WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType, WhenScaled: appsv1.RetainPersistentVolumeClaimRetentionPolicyType},
			}},
		},
		{
			name: "job without uid: no generated selector",
			in:   &batchv1.Job{ObjectMeta: meta, Spec: batchv1.JobSpec{Template: template(nil)}},
			want: &batchv1.Job{ObjectMeta: meta, Spec: batchv1.JobSpec{
				Template: defaultedTemplate(nil), Completions: ptr(int32(1)), Parallelism: ptr(int32(1)),
				BackoffLimit: ptr(int32(6)), CompletionMode: ptr(batchv1.NonIndexedCompletion), Suspend: ptr(false),
				ManualSelector: ptr(false), PodReplacementPolicy: ptr(batchv1.TerminatingOrFailed),
			}},
		},
		{
			name: "job with uid gets its selector and labels",
			in: &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "pi", Namespace: "ns", UID: "u1"},
				Spec: batchv1.JobSpec{Parallelism: ptr(int32(3)), Template: template(nil),
					BackoffLimitPerIndex: ptr(int32(2)), CompletionMode: ptr(batchv1.IndexedCompletion), Completions: ptr(int32(5)),
					PodFailurePolicy: &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
						Action: batchv1.PodFailurePolicyActionIgnore, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget}}}}}}},
			want: func() runtime.Object {
				gen := map[string]string{"batch.kubernetes.io/controller-uid": "u1", "controller-uid": "u1",
					"batch.kubernetes.io/job-name": "pi", "job-name": "pi"}
				return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "pi", Namespace: "ns", UID: "u1", Labels: gen},
					Spec: batchv1.JobSpec{
						Template: defaultedTemplate(gen), Completions: ptr(int32(5)), Parallelism: ptr(int32(3)),
						BackoffLimit: ptr(int32(1<<31 - 1)), BackoffLimitPerIndex: ptr(int32(2)),
						CompletionMode: ptr(batchv1.IndexedCompletion), Suspend: ptr(false), ManualSelector: ptr(false),
						PodFailurePolicy: &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
							Action: batchv1.PodFailurePolicyActionIgnore, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}}}},
						PodReplacementPolicy: ptr(batchv1.Failed),
						Selector:             &metav1.LabelSelector{MatchLabels: map[string]string{"batch.kubernetes.io/controller-uid": "u1"}},
					}}
			}(),
		},
		{
			name: "cronjob",
			in: &batchv1.CronJob{ObjectMeta: meta, Spec: batchv1.CronJobSpec{Schedule: "* * * * *",
				JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: template(nil)}}}},
			want: &batchv1.CronJob{ObjectMeta: meta, Spec: batchv1.CronJobSpec{Schedule: "* * * * *",
				ConcurrencyPolicy: batchv1.AllowConcurrent, Suspend: ptr(false),
				SuccessfulJobsHistoryLimit: ptr(int32(3)), FailedJobsHistoryLimit: ptr(int32(1)),
				JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: defaultedTemplate(nil)}}}},
		},
	}
}

func networkCases() []defaultCase {
	return []defaultCase{
		{
			name: "cluster ip service",
			in: &corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{Selector: map[string]string{"a": "b"},
				Ports: []corev1.ServicePort{{Port: 80}, {Port: 81, TargetPort: intstr.FromString("web")}}}},
			want: &corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{Selector: map[string]string{"a": "b"},
				Ports: []corev1.ServicePort{
					{Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(80)},
					{Port: 81, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("web")}},
				Type: corev1.ServiceTypeClusterIP, SessionAffinity: corev1.ServiceAffinityNone,
				InternalTrafficPolicy: ptr(corev1.ServiceInternalTrafficPolicyCluster),
				IPFamilyPolicy:        ptr(corev1.IPFamilyPolicySingleStack), IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol}}},
		},
		{
			name: "load balancer service with client ip affinity and v6 cluster ip",
			in: &corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer,
				SessionAffinity: corev1.ServiceAffinityClientIP, ClusterIP: "fd00::10",
				Ports: []corev1.ServicePort{{Port: 443, Protocol: corev1.ProtocolUDP}}},
				Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "1.2.3.4"}}}}},
			want: &corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer,
				SessionAffinity:       corev1.ServiceAffinityClientIP,
				SessionAffinityConfig: &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr(int32(10800))}},
				ClusterIP:             "fd00::10", ClusterIPs: []string{"fd00::10"},
				Ports:                         []corev1.ServicePort{{Port: 443, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(443)}},
				ExternalTrafficPolicy:         corev1.ServiceExternalTrafficPolicyCluster,
				InternalTrafficPolicy:         ptr(corev1.ServiceInternalTrafficPolicyCluster),
				AllocateLoadBalancerNodePorts: ptr(true),
				IPFamilyPolicy:                ptr(corev1.IPFamilyPolicySingleStack), IPFamilies: []corev1.IPFamily{corev1.IPv6Protocol}},
				Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "1.2.3.4", IPMode: ptr(corev1.LoadBalancerIPModeVIP)}}}}},
		},
		{
			name: "headless service without selector",
			in:   &corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{ClusterIP: "None"}},
			want: &corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{ClusterIP: "None", ClusterIPs: []string{"None"},
				Type: corev1.ServiceTypeClusterIP, SessionAffinity: corev1.ServiceAffinityNone,
				InternalTrafficPolicy: ptr(corev1.ServiceInternalTrafficPolicyCluster),
				IPFamilyPolicy:        ptr(corev1.IPFamilyPolicyRequireDualStack), IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol}}},
		},
		{
			name: "external name service",
			in:   &corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"}},
			want: &corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com",
				SessionAffinity: corev1.ServiceAffinityNone}},
		},
		{
			name: "endpoints",
			in: &corev1.Endpoints{ObjectMeta: meta, Subsets: []corev1.EndpointSubset{{
				Addresses: []corev1.EndpointAddress{{IP: "10.0.0.1"}}, Ports: []corev1.EndpointPort{{Port: 80}}}}},
			want: &corev1.Endpoints{ObjectMeta: meta, Subsets: []corev1.EndpointSubset{{
				Addresses: []corev1.EndpointAddress{{IP: "10.0.0.1"}}, Ports: []corev1.EndpointPort{{Port: 80, Protocol: corev1.ProtocolTCP}}}}},
		},
		{
			name: "endpointslice",
			in:   &discoveryv1.EndpointSlice{ObjectMeta: meta, AddressType: discoveryv1.AddressTypeIPv4, Ports: []discoveryv1.EndpointPort{{Port: ptr(int32(80))}}},
			want: &discoveryv1.EndpointSlice{ObjectMeta: meta, AddressType: discoveryv1.AddressTypeIPv4,
				Ports: []discoveryv1.EndpointPort{{Port: ptr(int32(80)), Name: ptr(""), Protocol: ptr(corev1.ProtocolTCP)}}},
		},
		{
			name: "network policy with egress",
			in: &networkingv1.NetworkPolicy{ObjectMeta: meta, Spec: networkingv1.NetworkPolicySpec{
				Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: ptr(intstr.FromInt32(80))}}}},
				Egress:  []networkingv1.NetworkPolicyEgressRule{{}}}},
			want: &networkingv1.NetworkPolicy{ObjectMeta: meta, Spec: networkingv1.NetworkPolicySpec{
				Ingress:     []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: ptr(intstr.FromInt32(80)), Protocol: ptr(corev1.ProtocolTCP)}}}},
				Egress:      []networkingv1.NetworkPolicyEgressRule{{}},
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}}},
		},
		{
			name: "network policy without rules",
			in:   &networkingv1.NetworkPolicy{ObjectMeta: meta},
			want: &networkingv1.NetworkPolicy{ObjectMeta: meta, Spec: networkingv1.NetworkPolicySpec{
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}},
		},
		{
			name: "ingress class parameters scope",
			in: &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "nginx"}, Spec: networkingv1.IngressClassSpec{
				Controller: "k8s.io/ingress-nginx", Parameters: &networkingv1.IngressClassParametersReference{Kind: "P", Name: "p"}}},
			want: &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "nginx"}, Spec: networkingv1.IngressClassSpec{
				Controller: "k8s.io/ingress-nginx", Parameters: &networkingv1.IngressClassParametersReference{Kind: "P", Name: "p", Scope: ptr("Cluster")}}},
		},
	}
}

func clusterCases() []defaultCase {
	return []defaultCase{
		{
			name: "secret",
			in:   &corev1.Secret{ObjectMeta: meta},
			want: &corev1.Secret{ObjectMeta: meta, Type: corev1.SecretTypeOpaque},
		},
		{
			name: "namespace",
			in:   &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}},
			want: &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team", Labels: map[string]string{"kubernetes.io/metadata.name": "team"}},
				Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}},
		},
		{
			name: "terminating namespace keeps its phase",
			in: &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team", DeletionTimestamp: &metav1.Time{},
				Labels: map[string]string{"kubernetes.io/metadata.name": "team"}}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}},
			want: &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team", DeletionTimestamp: &metav1.Time{},
				Labels: map[string]string{"kubernetes.io/metadata.name": "team"}}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}},
		},
		{
			name: "node allocatable from capacity",
			in: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"},
				Status: corev1.NodeStatus{Capacity: corev1.ResourceList{corev1.ResourceCPU: q("4")}}},
			want: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"},
				Status: corev1.NodeStatus{Capacity: corev1.ResourceList{corev1.ResourceCPU: q("4")},
					Allocatable: corev1.ResourceList{corev1.ResourceCPU: q("4")}}},
		},
		{
			name: "persistent volume",
			in: &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv"}, Spec: corev1.PersistentVolumeSpec{
				PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/d"}}}},
			want: &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv"}, Spec: corev1.PersistentVolumeSpec{
				PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/d", Type: ptr(corev1.HostPathUnset)}},
				PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain, VolumeMode: ptr(corev1.PersistentVolumeFilesystem)},
				Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumePending}},
		},
		{
			name: "persistent volume claim",
			in:   &corev1.PersistentVolumeClaim{ObjectMeta: meta},
			want: &corev1.PersistentVolumeClaim{ObjectMeta: meta, Spec: corev1.PersistentVolumeClaimSpec{VolumeMode: ptr(corev1.PersistentVolumeFilesystem)},
				Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending}},
		},
		{
			name: "limit range container defaults",
			in: &corev1.LimitRange{ObjectMeta: meta, Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
				Type: corev1.LimitTypeContainer,
				Max:  corev1.ResourceList{corev1.ResourceCPU: q("2"), corev1.ResourceMemory: q("1Gi")},
				Min:  corev1.ResourceList{corev1.ResourceCPU: q("100m"), corev1.ResourceEphemeralStorage: q("1Gi")},
			}}}},
			want: &corev1.LimitRange{ObjectMeta: meta, Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
				Type:           corev1.LimitTypeContainer,
				Max:            corev1.ResourceList{corev1.ResourceCPU: q("2"), corev1.ResourceMemory: q("1Gi")},
				Min:            corev1.ResourceList{corev1.ResourceCPU: q("100m"), corev1.ResourceEphemeralStorage: q("1Gi")},
				Default:        corev1.ResourceList{corev1.ResourceCPU: q("2"), corev1.ResourceMemory: q("1Gi")},
				DefaultRequest: corev1.ResourceList{corev1.ResourceCPU: q("2"), corev1.ResourceMemory: q("1Gi"), corev1.ResourceEphemeralStorage: q("1Gi")},
			}}}},
		},
		{
			name: "resource quota rounds to milli",
			in: &corev1.ResourceQuota{ObjectMeta: meta, Spec: corev1.ResourceQuotaSpec{
				Hard: corev1.ResourceList{corev1.ResourceCPU: q("1n")}}},
			want: &corev1.ResourceQuota{ObjectMeta: meta, Spec: corev1.ResourceQuotaSpec{
				Hard: corev1.ResourceList{corev1.ResourceCPU: q("1m")}}},
		},
		{
			name: "role binding",
			in: &rbacv1.RoleBinding{ObjectMeta: meta, RoleRef: rbacv1.RoleRef{Kind: "Role", Name: "r"},
				Subjects: []rbacv1.Subject{{Kind: "User", Name: "u"}, {Kind: "ServiceAccount", Name: "sa", Namespace: "ns"}, {Kind: "Group", Name: "g"}}},
			want: &rbacv1.RoleBinding{ObjectMeta: meta, RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "r"},
				Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "u"},
					{Kind: "ServiceAccount", Name: "sa", Namespace: "ns"}, {Kind: "Group", APIGroup: "rbac.authorization.k8s.io", Name: "g"}}},
		},
		{
			name: "cluster role binding",
			in:   &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "b"}, RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "r"}},
			want: &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "b"}, RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "r"}},
		},
		{
			name: "storage class",
			in:   &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "sc"}, Provisioner: "p"},
			want: &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "sc"}, Provisioner: "p",
				ReclaimPolicy: ptr(corev1.PersistentVolumeReclaimDelete), VolumeBindingMode: ptr(storagev1.VolumeBindingImmediate)},
		},
		{
			name: "priority class",
			in:   &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "pc"}, Value: 5},
			want: &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "pc"}, Value: 5, PreemptionPolicy: ptr(corev1.PreemptLowerPriority)},
		},
		{
			name: "types without defaults are untouched",
			in:   &policyv1.PodDisruptionBudget{ObjectMeta: meta},
			want: &policyv1.PodDisruptionBudget{ObjectMeta: meta},
		},
		{
			name: "configmap untouched",
			in:   &corev1.ConfigMap{ObjectMeta: meta},
			want: &corev1.ConfigMap{ObjectMeta: meta},
		},
	}
}

func allCases() []defaultCase {
	var all []defaultCase
	for _, set := range [][]defaultCase{podCases(), workloadCases(), networkCases(), clusterCases()} {
		all = append(all, set...)
	}
	return all
}

func TestApply(t *testing.T) {
	for _, tc := range allCases() {
		t.Run(tc.name, func(t *testing.T) {
			Apply(tc.in)
			mustEqual(t, tc.in, tc.want)
		})
	}
}

func TestApplyIsIdempotent(t *testing.T) {
	for _, tc := range allCases() {
		t.Run(tc.name, func(t *testing.T) {
			Apply(tc.in)
			once := tc.in.DeepCopyObject()
			Apply(tc.in)
			mustEqual(t, tc.in, once)
		})
	}
}
