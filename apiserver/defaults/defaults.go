// Package defaults fills in the fields Kubernetes' API server defaults on
// write, for the v1 k8s.io/api types Skiff serves.
//
// Apply is called on every create and update, before validation. It only
// ever fills fields that are unset: a value the client gave is never
// replaced (the one exception is the kubernetes.io/metadata.name label of a
// Namespace, which always mirrors the name, as in Kubernetes). Applying twice
// gives the same object as applying once.
//
// Besides the defaulting functions of Kubernetes' v1 API groups, Apply does
// two things Kubernetes does elsewhere, because Skiff has no per-resource
// storage strategies for them:
//
//   - Service: spec.ipFamilyPolicy and spec.ipFamilies for a single-stack
//     cluster, and clusterIPs mirrored from clusterIP (Kubernetes' service
//     REST storage). ClusterIPs and node ports are never allocated here.
//   - Job: the generated selector and pod labels (batch.kubernetes.io/
//     controller-uid, job-name and their legacy forms) when the Job does not
//     ask for a manual selector and already has a metadata.uid.
//
// What Kubernetes' admission plugins and create strategies set (a Pod's
// service account, priority, QoS class and phase, a Namespace's
// finalizer) is left to the server's admission.
//
// Objects of any other type are left untouched.
package defaults

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Apply sets the defaults for obj in place. Objects of types it does not
// know are left as they are.
func Apply(obj runtime.Object) {
	switch o := obj.(type) {
	case *corev1.Pod:
		pod(o)
	case *corev1.PodTemplate:
		podTemplateSpec(&o.Template)
	case *corev1.ReplicationController:
		replicationController(o)
	case *corev1.Service:
		service(o)
	case *corev1.Endpoints:
		endpoints(o)
	case *corev1.Secret:
		if o.Type == "" {
			o.Type = corev1.SecretTypeOpaque
		}
	case *corev1.Namespace:
		namespace(o)
	case *corev1.Node:
		node(o)
	case *corev1.PersistentVolume:
		persistentVolume(o)
	case *corev1.PersistentVolumeClaim:
		persistentVolumeClaim(o)
	case *corev1.LimitRange:
		for i := range o.Spec.Limits {
			limitRangeItem(&o.Spec.Limits[i])
		}
	case *corev1.ResourceQuota:
		roundResources(o.Spec.Hard)
	case *appsv1.Deployment:
		deployment(o)
	case *appsv1.ReplicaSet:
		setInt32(&o.Spec.Replicas, 1)
		podTemplateSpec(&o.Spec.Template)
	case *appsv1.DaemonSet:
		daemonSet(o)
	case *appsv1.StatefulSet:
		statefulSet(o)
	case *batchv1.Job:
		job(o)
	case *batchv1.CronJob:
		cronJob(o)
	case *networkingv1.NetworkPolicy:
		networkPolicy(o)
	case *networkingv1.IngressClass:
		if p := o.Spec.Parameters; p != nil && p.Scope == nil {
			scope := networkingv1.IngressClassParametersReferenceScopeCluster
			p.Scope = &scope
		}
	case *discoveryv1.EndpointSlice:
		endpointSlice(o)
	case *rbacv1.RoleBinding:
		roleRef(&o.RoleRef)
		subjects(o.Subjects)
	case *rbacv1.ClusterRoleBinding:
		roleRef(&o.RoleRef)
		subjects(o.Subjects)
	case *storagev1.StorageClass:
		storageClass(o)
	case *schedulingv1.PriorityClass:
		if o.PreemptionPolicy == nil {
			p := corev1.PreemptLowerPriority
			o.PreemptionPolicy = &p
		}
	}
}

// setInt32 points *p at v when it is nil.
func setInt32(p **int32, v int32) {
	if *p == nil {
		*p = &v
	}
}

func setInt64(p **int64, v int64) {
	if *p == nil {
		*p = &v
	}
}

func setBool(p **bool, v bool) {
	if *p == nil {
		*p = &v
	}
}

func setString(p *string, v string) {
	if *p == "" {
		*p = v
	}
}
