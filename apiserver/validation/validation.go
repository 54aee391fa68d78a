// Package validation checks objects of the k8s.io/api types Skiff serves
// against the rules Kubernetes' API server enforces, so that a rejected
// write gets the same 422 Invalid answer, with the same field paths and
// error types, as it would from Kubernetes.
//
// ValidateCreate and ValidateUpdate run after package defaults has filled in
// the object. They never change the object. They cover metadata (name
// formats per kind, labels, annotations, namespace presence), the spec rules
// users hit most for each kind, and the immutability rules of updates.
//
// Left to the caller: resourceVersion preconditions (an update without a
// resourceVersion is not reported here), keeping the server-owned metadata
// (uid, creationTimestamp) of the stored object, allocated values a client
// may omit on update (a Service's clusterIP and nodePorts), and anything
// that needs other objects (quota, admission, existence of references).
package validation

import (
	"fmt"
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ValidateCreate returns what is wrong with obj as a new object. Objects of
// types it does not know pass.
func ValidateCreate(obj runtime.Object) field.ErrorList {
	switch o := obj.(type) {
	case *corev1.Pod:
		return validatePod(o)
	case *corev1.PodTemplate:
		return validatePodTemplate(o)
	case *corev1.ReplicationController:
		return validateReplicationController(o)
	case *corev1.Service:
		return validateService(o)
	case *corev1.Endpoints:
		return validateEndpoints(o)
	case *corev1.ConfigMap:
		return validateConfigMap(o)
	case *corev1.Secret:
		return validateSecret(o)
	case *corev1.ServiceAccount:
		return validateServiceAccount(o)
	case *corev1.Namespace:
		return validateNamespace(o)
	case *corev1.Node:
		return validateNode(o)
	case *corev1.Event:
		return validateCoreEvent(o)
	case *corev1.PersistentVolume:
		return validatePersistentVolume(o)
	case *corev1.PersistentVolumeClaim:
		return validatePersistentVolumeClaim(o)
	case *corev1.ResourceQuota:
		return validateResourceQuota(o)
	case *corev1.LimitRange:
		return validateLimitRange(o)
	case *appsv1.Deployment:
		return validateDeployment(o)
	case *appsv1.ReplicaSet:
		return validateReplicaSet(o)
	case *appsv1.DaemonSet:
		return validateDaemonSet(o)
	case *appsv1.StatefulSet:
		return validateStatefulSet(o)
	case *appsv1.ControllerRevision:
		return validateControllerRevision(o)
	case *batchv1.Job:
		return validateJob(o)
	case *batchv1.CronJob:
		return validateCronJob(o, false)
	case *networkingv1.Ingress:
		return validateIngress(o)
	case *networkingv1.IngressClass:
		return validateIngressClass(o)
	case *networkingv1.NetworkPolicy:
		return validateNetworkPolicy(o)
	case *discoveryv1.EndpointSlice:
		return validateEndpointSlice(o)
	case *coordinationv1.Lease:
		return validateLease(o)
	case *eventsv1.Event:
		return validateEventsEvent(o)
	case *rbacv1.Role:
		return validateRole(o)
	case *rbacv1.ClusterRole:
		return validateClusterRole(o)
	case *rbacv1.RoleBinding:
		return validateRoleBinding(o)
	case *rbacv1.ClusterRoleBinding:
		return validateClusterRoleBinding(o)
	case *storagev1.StorageClass:
		return validateStorageClass(o)
	case *policyv1.PodDisruptionBudget:
		return validatePodDisruptionBudget(o)
	case *schedulingv1.PriorityClass:
		return validatePriorityClass(o)
	case *certificatesv1.CertificateSigningRequest:
		return validateCertificateSigningRequest(o)
	}
	return nil
}

// ValidateUpdate returns what is wrong with replacing old by obj: the rules
// of a new object that still apply, plus the fields that may not change.
// Objects of types it does not know pass.
func ValidateUpdate(obj, old runtime.Object) field.ErrorList {
	if reflect.TypeOf(obj) != reflect.TypeOf(old) {
		return field.ErrorList{field.InternalError(nil, fmt.Errorf("validation: update of %T with an old object of type %T", obj, old))}
	}
	switch o := obj.(type) {
	case *corev1.Pod:
		return validatePodUpdate(o, old.(*corev1.Pod))
	case *corev1.PodTemplate:
		return validatePodTemplateUpdate(o, old.(*corev1.PodTemplate))
	case *corev1.ReplicationController:
		return validateReplicationControllerUpdate(o, old.(*corev1.ReplicationController))
	case *corev1.Service:
		return validateServiceUpdate(o, old.(*corev1.Service))
	case *corev1.Endpoints:
		return withMetaUpdate(&o.ObjectMeta, &old.(*corev1.Endpoints).ObjectMeta, validateEndpointsSpec(o))
	case *corev1.ConfigMap:
		return validateConfigMapUpdate(o, old.(*corev1.ConfigMap))
	case *corev1.Secret:
		return validateSecretUpdate(o, old.(*corev1.Secret))
	case *corev1.ServiceAccount:
		return withMetaUpdate(&o.ObjectMeta, &old.(*corev1.ServiceAccount).ObjectMeta, nil)
	case *corev1.Namespace:
		return validateNamespaceUpdate(o, old.(*corev1.Namespace))
	case *corev1.Node:
		return validateNodeUpdate(o, old.(*corev1.Node))
	case *corev1.Event:
		return validateCoreEvent(o)
	case *corev1.PersistentVolume:
		return validatePersistentVolumeUpdate(o, old.(*corev1.PersistentVolume))
	case *corev1.PersistentVolumeClaim:
		return validatePersistentVolumeClaimUpdate(o, old.(*corev1.PersistentVolumeClaim))
	case *corev1.ResourceQuota:
		return withMetaUpdate(&o.ObjectMeta, &old.(*corev1.ResourceQuota).ObjectMeta, validateResourceQuotaSpec(o))
	case *corev1.LimitRange:
		return withMetaUpdate(&o.ObjectMeta, &old.(*corev1.LimitRange).ObjectMeta, validateLimitRangeSpec(o))
	case *appsv1.Deployment:
		return validateDeploymentUpdate(o, old.(*appsv1.Deployment))
	case *appsv1.ReplicaSet:
		return validateReplicaSetUpdate(o, old.(*appsv1.ReplicaSet))
	case *appsv1.DaemonSet:
		return validateDaemonSetUpdate(o, old.(*appsv1.DaemonSet))
	case *appsv1.StatefulSet:
		return validateStatefulSetUpdate(o, old.(*appsv1.StatefulSet))
	case *appsv1.ControllerRevision:
		return validateControllerRevisionUpdate(o, old.(*appsv1.ControllerRevision))
	case *batchv1.Job:
		return validateJobUpdate(o, old.(*batchv1.Job))
	case *batchv1.CronJob:
		return validateCronJobUpdate(o, old.(*batchv1.CronJob))
	case *networkingv1.Ingress:
		return withMetaUpdate(&o.ObjectMeta, &old.(*networkingv1.Ingress).ObjectMeta, validateIngressSpec(o))
	case *networkingv1.IngressClass:
		return validateIngressClassUpdate(o, old.(*networkingv1.IngressClass))
	case *networkingv1.NetworkPolicy:
		return withMetaUpdate(&o.ObjectMeta, &old.(*networkingv1.NetworkPolicy).ObjectMeta, validateNetworkPolicySpec(o))
	case *discoveryv1.EndpointSlice:
		return validateEndpointSliceUpdate(o, old.(*discoveryv1.EndpointSlice))
	case *coordinationv1.Lease:
		return withMetaUpdate(&o.ObjectMeta, &old.(*coordinationv1.Lease).ObjectMeta, validateLeaseSpec(o))
	case *eventsv1.Event:
		return validateEventsEventUpdate(o, old.(*eventsv1.Event))
	case *rbacv1.Role:
		return withMetaUpdate(&o.ObjectMeta, &old.(*rbacv1.Role).ObjectMeta, validateRules(o.Rules, true))
	case *rbacv1.ClusterRole:
		return withMetaUpdate(&o.ObjectMeta, &old.(*rbacv1.ClusterRole).ObjectMeta, validateClusterRoleSpec(o))
	case *rbacv1.RoleBinding:
		return validateRoleBindingUpdate(o, old.(*rbacv1.RoleBinding))
	case *rbacv1.ClusterRoleBinding:
		return validateClusterRoleBindingUpdate(o, old.(*rbacv1.ClusterRoleBinding))
	case *storagev1.StorageClass:
		return validateStorageClassUpdate(o, old.(*storagev1.StorageClass))
	case *policyv1.PodDisruptionBudget:
		return withMetaUpdate(&o.ObjectMeta, &old.(*policyv1.PodDisruptionBudget).ObjectMeta, validatePDBSpec(o))
	case *schedulingv1.PriorityClass:
		return validatePriorityClassUpdate(o, old.(*schedulingv1.PriorityClass))
	case *certificatesv1.CertificateSigningRequest:
		return validateCertificateSigningRequestUpdate(o, old.(*certificatesv1.CertificateSigningRequest))
	}
	return nil
}
