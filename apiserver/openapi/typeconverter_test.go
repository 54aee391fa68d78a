package openapi

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/managedfields"

	"github.com/skiff-sh/skiff/apiserver/registry"
)

func testPod() *corev1.Pod {
	ts := metav1.NewTime(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "web", Namespace: "default", Labels: map[string]string{"app": "web"},
			CreationTimestamp: ts,
			Finalizers:        []string{"example.com/a", "example.com/b"},
			OwnerReferences:   []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-1", UID: "u1"}},
			ManagedFields: []metav1.ManagedFieldsEntry{{
				Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply, APIVersion: "v1", Time: &ts,
				FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:labels":{"f:app":{}}}}`)},
			}},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "web", Image: "nginx",
				// The same port twice with different protocols: legal, and
				// only representable when ports are keyed by both fields.
				Ports: []corev1.ContainerPort{
					{ContainerPort: 53, Protocol: corev1.ProtocolTCP},
					{ContainerPort: 53, Protocol: corev1.ProtocolUDP},
				},
				Env: []corev1.EnvVar{{Name: "A", Value: "1"}},
				Resources: corev1.ResourceRequirements{
					Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")},
					Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
				},
				LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
					HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")},
				}},
			}},
			Volumes: []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{
				ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}},
			}}},
			Tolerations:  []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists}},
			NodeSelector: map[string]string{"disk": "ssd"},
		},
		Status: corev1.PodStatus{
			Phase:      corev1.PodRunning,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: ts}},
			StartTime:  &ts,
		},
	}
}

func testDeployment() *appsv1.Deployment {
	replicas := int32(3)
	surge := intstr.FromString("25%")
	unavailable := intstr.FromInt32(1)
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{
				MatchLabels:      map[string]string{"app": "web"},
				MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"a"}}},
			},
			Strategy: appsv1.DeploymentStrategy{
				Type:          appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavailable},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       testPod().Spec,
			},
		},
		Status: appsv1.DeploymentStatus{
			Replicas:   3,
			Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue}},
		},
	}
}

func TestTypeConverterConvertsObjects(t *testing.T) {
	d := testDocs(t)
	tc, err := managedfields.NewTypeConverter(d.Schemas(), false)
	if err != nil {
		t.Fatalf("NewTypeConverter: %v", err)
	}
	pod := testPod()
	podContent, err := runtime.DefaultUnstructuredConverter.ToUnstructured(pod)
	if err != nil {
		t.Fatal(err)
	}
	deploy := testDeployment()
	deployContent, err := runtime.DefaultUnstructuredConverter.ToUnstructured(deploy)
	if err != nil {
		t.Fatal(err)
	}
	for name, obj := range map[string]runtime.Object{
		"typed Pod":                pod,
		"unstructured Pod":         &unstructured.Unstructured{Object: podContent},
		"typed Deployment":         deploy,
		"unstructured Deployment":  &unstructured.Unstructured{Object: deployContent},
		"typed ConfigMap":          &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, Data: map[string]string{"a": "b"}, BinaryData: map[string][]byte{"c": {1}}},
		"typed Service with ports": serviceWithPorts(),
	} {
		tv, err := tc.ObjectToTyped(obj)
		if err != nil {
			t.Errorf("%s: ObjectToTyped: %v", name, err)
			continue
		}
		if _, err := tv.ToFieldSet(); err != nil {
			t.Errorf("%s: ToFieldSet: %v", name, err)
		}
	}

	// Lists merge by their keys: the port list has one entry per
	// (containerPort, protocol) and containers are keyed by name.
	tv, err := tc.ObjectToTyped(pod)
	if err != nil {
		t.Fatal(err)
	}
	set, err := tv.ToFieldSet()
	if err != nil {
		t.Fatal(err)
	}
	fields := set.String()
	for _, want := range []string{
		`.ports[containerPort=53,protocol="TCP"]`,
		`.ports[containerPort=53,protocol="UDP"]`,
		`.spec.containers[name="web"]`,
		`.metadata.finalizers[="example.com/a"]`,
		`.spec.nodeSelector`,
	} {
		if !strings.Contains(fields, want) {
			t.Errorf("field set lacks %s:\n%s", want, fields)
		}
	}
	// nodeSelector is atomic: no per-key fields.
	if strings.Contains(fields, ".spec.nodeSelector.disk") {
		t.Errorf("atomic nodeSelector was split into keys:\n%s", fields)
	}
}

func serviceWithPorts() *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: "dns"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
			{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(53)},
			{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("dns-tcp")},
		}},
	}
}

func TestTypeConverterKnowsEveryKind(t *testing.T) {
	d := testDocs(t)
	tc, err := managedfields.NewTypeConverter(d.Schemas(), false)
	if err != nil {
		t.Fatalf("NewTypeConverter: %v", err)
	}
	for _, r := range registry.Default().All() {
		for kind, obj := range map[string]runtime.Object{r.Kind: r.New(), r.ListKind: r.NewList()} {
			obj.GetObjectKind().SetGroupVersionKind(r.GroupVersion().WithKind(kind))
			if _, err := tc.ObjectToTyped(obj); err != nil {
				t.Errorf("%s %s: %v", r.GroupVersion(), kind, err)
			}
		}
	}
}
