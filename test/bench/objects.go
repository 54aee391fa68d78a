package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// newClient is a clientset with its own transport, hence its own
// connection: each benchmark "client" looks like a separate program to the
// server instead of a stream multiplexed on one shared HTTP/2 connection.
// (client-go shares transports between equal configs unless Dial is set.)
func newClient(base *rest.Config) (kubernetes.Interface, error) {
	cfg := rest.CopyConfig(base)
	cfg.Dial = (&net.Dialer{}).DialContext
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("clientset: %w", err)
	}
	return c, nil
}

// createNamespace makes a namespace for one measurement.
func createNamespace(ctx context.Context, c kubernetes.Interface, name string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := c.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return nil
}

// smallConfigMap is a ConfigMap of a few short keys (~300 bytes of JSON).
func smallConfigMap(name string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name:   name,
			Labels: map[string]string{"app": "bench", "role": "settings"},
		},
		Data: map[string]string{
			"log-level":    "info",
			"listen":       ":8080",
			"cache-size":   "256Mi",
			"feature-flag": "enabled",
		},
	}
}

// benchPod is a pod shaped like a typical web workload (labels,
// annotations, one container with env, ports, probes, resources, mounts
// and a security context, two volumes): about 1.5 KB of JSON.
func benchPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{
				"app.kubernetes.io/name":      "web-frontend",
				"app.kubernetes.io/component": "frontend",
				"pod-template-hash":           "5d8f7c9b6",
			},
			Annotations: map[string]string{
				"prometheus.io/scrape": "true",
				"prometheus.io/port":   "9090",
			},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:            "web",
				Image:           "registry.example.com/shop/web-frontend:v1.24.3",
				ImagePullPolicy: corev1.PullIfNotPresent,
				Command:         []string{"/app/server"},
				Args:            []string{"--port=8080", "--metrics-port=9090", "--log-level=info"},
				Ports: []corev1.ContainerPort{
					{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP},
					{Name: "metrics", ContainerPort: 9090, Protocol: corev1.ProtocolTCP},
				},
				Env: []corev1.EnvVar{
					{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
					{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
					{Name: "LOG_FORMAT", Value: "json"},
				},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{
						corev1.ResourceCPU:    resource.MustParse("100m"),
						corev1.ResourceMemory: resource.MustParse("128Mi"),
					},
					Limits: corev1.ResourceList{
						corev1.ResourceCPU:    resource.MustParse("500m"),
						corev1.ResourceMemory: resource.MustParse("256Mi"),
					},
				},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}},
					PeriodSeconds: 10, TimeoutSeconds: 2, FailureThreshold: 3,
				},
				LivenessProbe: &corev1.Probe{
					ProbeHandler:        corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/livez", Port: intstr.FromString("http")}},
					InitialDelaySeconds: 10, PeriodSeconds: 20, TimeoutSeconds: 2, FailureThreshold: 3,
				},
				VolumeMounts: []corev1.VolumeMount{
					{Name: "config", MountPath: "/etc/web", ReadOnly: true},
					{Name: "cache", MountPath: "/var/cache/web"},
				},
				SecurityContext: &corev1.SecurityContext{
					RunAsNonRoot:             ptr(true),
					ReadOnlyRootFilesystem:   ptr(true),
					AllowPrivilegeEscalation: ptr(false),
				},
			}},
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "web-frontend-config"},
				}}},
				{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
					SizeLimit: ptr(resource.MustParse("1Gi")),
				}}},
			},
			RestartPolicy:                 corev1.RestartPolicyAlways,
			TerminationGracePeriodSeconds: ptr(int64(30)),
			DNSPolicy:                     corev1.DNSClusterFirst,
			NodeSelector:                  map[string]string{"kubernetes.io/os": "linux"},
		},
	}
}

// jsonSize is the size of obj as the client sends it.
func jsonSize(obj any) int {
	data, err := json.Marshal(obj)
	if err != nil {
		return 0
	}
	return len(data)
}

func ptr[T any](v T) *T { return &v }
