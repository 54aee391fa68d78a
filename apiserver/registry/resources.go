package registry

import (
	"fmt"
	"strconv"

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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// ptrObject is a pointer to a k8s.io/api struct type.
type ptrObject[T any] interface {
	*T
	runtime.Object
}

// res builds a Resource for type T and list type L.
func res[T any, L any, PT ptrObject[T], PL ptrObject[L]](group, version, plural, kind string, namespaced bool) *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: group, Version: version, Resource: plural},
		Kind:                 kind,
		ListKind:             kind + "List",
		Singular:             lower(kind),
		Namespaced:           namespaced,
		New:                  func() runtime.Object { return PT(new(T)) },
		NewList:              func() runtime.Object { return PL(new(L)) },
	}
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func (r *Resource) short(names ...string) *Resource { r.ShortNames = names; return r }
func (r *Resource) cats(names ...string) *Resource  { r.Categories = names; return r }
func (r *Resource) status() *Resource               { r.HasStatus = true; return r }
func (r *Resource) scale(s *ScaleAccess) *Resource  { r.Scale = s; return r }
func (r *Resource) fields(f func(runtime.Object) fields.Set) *Resource {
	r.Fields = f
	return r
}

// Default returns the catalog of everything Skiff serves.
func Default() *Catalog {
	core := func() []*Resource {
		return []*Resource{
			res[corev1.Namespace, corev1.NamespaceList]("", "v1", "namespaces", "Namespace", false).short("ns").status().
				fields(func(o runtime.Object) fields.Set {
					return fields.Set{"status.phase": string(o.(*corev1.Namespace).Status.Phase)}
				}),
			res[corev1.Pod, corev1.PodList]("", "v1", "pods", "Pod", true).short("po").cats("all").status().fields(podFields),
			res[corev1.Service, corev1.ServiceList]("", "v1", "services", "Service", true).short("svc").cats("all").status(),
			res[corev1.Endpoints, corev1.EndpointsList]("", "v1", "endpoints", "Endpoints", true).short("ep"),
			res[corev1.ConfigMap, corev1.ConfigMapList]("", "v1", "configmaps", "ConfigMap", true).short("cm"),
			res[corev1.Secret, corev1.SecretList]("", "v1", "secrets", "Secret", true).
				fields(func(o runtime.Object) fields.Set {
					return fields.Set{"type": string(o.(*corev1.Secret).Type)}
				}),
			res[corev1.Node, corev1.NodeList]("", "v1", "nodes", "Node", false).short("no").status().
				fields(func(o runtime.Object) fields.Set {
					return fields.Set{"spec.unschedulable": strconv.FormatBool(o.(*corev1.Node).Spec.Unschedulable)}
				}),
			res[corev1.Event, corev1.EventList]("", "v1", "events", "Event", true).short("ev").fields(coreEventFields),
			res[corev1.ServiceAccount, corev1.ServiceAccountList]("", "v1", "serviceaccounts", "ServiceAccount", true).short("sa"),
			res[corev1.PersistentVolume, corev1.PersistentVolumeList]("", "v1", "persistentvolumes", "PersistentVolume", false).short("pv").status(),
			res[corev1.PersistentVolumeClaim, corev1.PersistentVolumeClaimList]("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", true).short("pvc").status(),
			res[corev1.ReplicationController, corev1.ReplicationControllerList]("", "v1", "replicationcontrollers", "ReplicationController", true).short("rc").cats("all").status().
				scale(&ScaleAccess{
					Replicas: func(o runtime.Object) (int32, int32) {
						rc := o.(*corev1.ReplicationController)
						return deref(rc.Spec.Replicas, 1), rc.Status.Replicas
					},
					SetReplicas: func(o runtime.Object, n int32) { o.(*corev1.ReplicationController).Spec.Replicas = &n },
					Selector: func(o runtime.Object) string {
						return fields.SelectorFromSet(o.(*corev1.ReplicationController).Spec.Selector).String()
					},
				}).
				fields(func(o runtime.Object) fields.Set {
					return fields.Set{"status.replicas": strconv.Itoa(int(o.(*corev1.ReplicationController).Status.Replicas))}
				}),
			res[corev1.ResourceQuota, corev1.ResourceQuotaList]("", "v1", "resourcequotas", "ResourceQuota", true).short("quota").status(),
			res[corev1.LimitRange, corev1.LimitRangeList]("", "v1", "limitranges", "LimitRange", true).short("limits"),
			res[corev1.PodTemplate, corev1.PodTemplateList]("", "v1", "podtemplates", "PodTemplate", true),
		}
	}
	apps := []*Resource{
		res[appsv1.Deployment, appsv1.DeploymentList]("apps", "v1", "deployments", "Deployment", true).short("deploy").cats("all").status().
			scale(&ScaleAccess{
				Replicas: func(o runtime.Object) (int32, int32) {
					d := o.(*appsv1.Deployment)
					return deref(d.Spec.Replicas, 1), d.Status.Replicas
				},
				SetReplicas: func(o runtime.Object, n int32) { o.(*appsv1.Deployment).Spec.Replicas = &n },
				Selector:    func(o runtime.Object) string { return selectorString(o.(*appsv1.Deployment).Spec.Selector) },
			}),
		res[appsv1.ReplicaSet, appsv1.ReplicaSetList]("apps", "v1", "replicasets", "ReplicaSet", true).short("rs").cats("all").status().
			scale(&ScaleAccess{
				Replicas: func(o runtime.Object) (int32, int32) {
					rs := o.(*appsv1.ReplicaSet)
					return deref(rs.Spec.Replicas, 1), rs.Status.Replicas
				},
				SetReplicas: func(o runtime.Object, n int32) { o.(*appsv1.ReplicaSet).Spec.Replicas = &n },
				Selector:    func(o runtime.Object) string { return selectorString(o.(*appsv1.ReplicaSet).Spec.Selector) },
			}).
			fields(func(o runtime.Object) fields.Set {
				return fields.Set{"status.replicas": strconv.Itoa(int(o.(*appsv1.ReplicaSet).Status.Replicas))}
			}),
		res[appsv1.DaemonSet, appsv1.DaemonSetList]("apps", "v1", "daemonsets", "DaemonSet", true).short("ds").cats("all").status(),
		res[appsv1.StatefulSet, appsv1.StatefulSetList]("apps", "v1", "statefulsets", "StatefulSet", true).short("sts").cats("all").status().
			scale(&ScaleAccess{
				Replicas: func(o runtime.Object) (int32, int32) {
					s := o.(*appsv1.StatefulSet)
					return deref(s.Spec.Replicas, 1), s.Status.Replicas
				},
				SetReplicas: func(o runtime.Object, n int32) { o.(*appsv1.StatefulSet).Spec.Replicas = &n },
				Selector:    func(o runtime.Object) string { return selectorString(o.(*appsv1.StatefulSet).Spec.Selector) },
			}),
		res[appsv1.ControllerRevision, appsv1.ControllerRevisionList]("apps", "v1", "controllerrevisions", "ControllerRevision", true),
	}
	eventsV1 := res[eventsv1.Event, eventsv1.EventList]("events.k8s.io", "v1", "events", "Event", true).short("ev")
	eventsV1.ToStorage = eventsToCore
	eventsV1.FromStorage = eventsFromCore
	eventsV1.Fields = func(o runtime.Object) fields.Set {
		ce, err := eventsToCore(o)
		if err != nil {
			return fields.Set{}
		}
		return coreEventFields(ce)
	}

	all := append(core(), apps...)
	all = append(all,
		res[batchv1.Job, batchv1.JobList]("batch", "v1", "jobs", "Job", true).cats("all").status().
			fields(func(o runtime.Object) fields.Set {
				return fields.Set{"status.successful": strconv.Itoa(int(o.(*batchv1.Job).Status.Succeeded))}
			}),
		res[batchv1.CronJob, batchv1.CronJobList]("batch", "v1", "cronjobs", "CronJob", true).short("cj").cats("all").status(),
		res[networkingv1.Ingress, networkingv1.IngressList]("networking.k8s.io", "v1", "ingresses", "Ingress", true).short("ing").status(),
		res[networkingv1.IngressClass, networkingv1.IngressClassList]("networking.k8s.io", "v1", "ingressclasses", "IngressClass", false),
		res[networkingv1.NetworkPolicy, networkingv1.NetworkPolicyList]("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", true).short("netpol"),
		res[discoveryv1.EndpointSlice, discoveryv1.EndpointSliceList]("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", true),
		res[coordinationv1.Lease, coordinationv1.LeaseList]("coordination.k8s.io", "v1", "leases", "Lease", true),
		eventsV1,
		res[rbacv1.Role, rbacv1.RoleList]("rbac.authorization.k8s.io", "v1", "roles", "Role", true),
		res[rbacv1.RoleBinding, rbacv1.RoleBindingList]("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", true),
		res[rbacv1.ClusterRole, rbacv1.ClusterRoleList]("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", false),
		res[rbacv1.ClusterRoleBinding, rbacv1.ClusterRoleBindingList]("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", false),
		res[storagev1.StorageClass, storagev1.StorageClassList]("storage.k8s.io", "v1", "storageclasses", "StorageClass", false).short("sc"),
		res[policyv1.PodDisruptionBudget, policyv1.PodDisruptionBudgetList]("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", true).short("pdb").status(),
		res[schedulingv1.PriorityClass, schedulingv1.PriorityClassList]("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", false).short("pc"),
		res[certificatesv1.CertificateSigningRequest, certificatesv1.CertificateSigningRequestList]("certificates.k8s.io", "v1", "certificatesigningrequests", "CertificateSigningRequest", false).short("csr").status().fields(func(o runtime.Object) fields.Set {
			return fields.Set{"spec.signerName": o.(*certificatesv1.CertificateSigningRequest).Spec.SignerName}
		}),
	)
	// The events.k8s.io resource must point at the catalog's own core events.
	for _, r := range all {
		if r.Group == "" && r.Resource == "events" {
			eventsV1.StorageResource = r
		}
	}
	return NewCatalog(all)
}

func deref(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}

func selectorString(s *metav1.LabelSelector) string {
	if s == nil {
		return ""
	}
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		return ""
	}
	return sel.String()
}

func podFields(o runtime.Object) fields.Set {
	p := o.(*corev1.Pod)
	return fields.Set{
		"spec.nodeName":            p.Spec.NodeName,
		"spec.restartPolicy":       string(p.Spec.RestartPolicy),
		"spec.schedulerName":       p.Spec.SchedulerName,
		"spec.serviceAccountName":  p.Spec.ServiceAccountName,
		"spec.hostNetwork":         strconv.FormatBool(p.Spec.HostNetwork),
		"status.phase":             string(p.Status.Phase),
		"status.podIP":             p.Status.PodIP,
		"status.nominatedNodeName": p.Status.NominatedNodeName,
	}
}

func coreEventFields(o runtime.Object) fields.Set {
	e := o.(*corev1.Event)
	return fields.Set{
		"involvedObject.kind":            e.InvolvedObject.Kind,
		"involvedObject.namespace":       e.InvolvedObject.Namespace,
		"involvedObject.name":            e.InvolvedObject.Name,
		"involvedObject.uid":             string(e.InvolvedObject.UID),
		"involvedObject.apiVersion":      e.InvolvedObject.APIVersion,
		"involvedObject.resourceVersion": e.InvolvedObject.ResourceVersion,
		"involvedObject.fieldPath":       e.InvolvedObject.FieldPath,
		"reason":                         e.Reason,
		"reportingComponent":             e.ReportingController,
		"source":                         e.Source.Component,
		"type":                           e.Type,
	}
}

// eventsToCore converts an events.k8s.io/v1 Event into the core/v1 Event it
// is stored as.
func eventsToCore(o runtime.Object) (runtime.Object, error) {
	e, ok := o.(*eventsv1.Event)
	if !ok {
		return nil, fmt.Errorf("registry: want *eventsv1.Event, got %T", o)
	}
	return CoreEvent(e), nil
}

// CoreEvent is the core/v1 view of an events.k8s.io/v1 Event: the same
// event under the older field names.
func CoreEvent(e *eventsv1.Event) *corev1.Event {
	out := &corev1.Event{
		ObjectMeta:          e.ObjectMeta,
		InvolvedObject:      e.Regarding,
		Reason:              e.Reason,
		Message:             e.Note,
		Source:              e.DeprecatedSource,
		FirstTimestamp:      e.DeprecatedFirstTimestamp,
		LastTimestamp:       e.DeprecatedLastTimestamp,
		Count:               e.DeprecatedCount,
		Type:                e.Type,
		EventTime:           e.EventTime,
		Related:             e.Related,
		ReportingController: e.ReportingController,
		ReportingInstance:   e.ReportingInstance,
		Action:              e.Action,
	}
	out.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Event"))
	if e.Series != nil {
		out.Series = &corev1.EventSeries{Count: e.Series.Count, LastObservedTime: e.Series.LastObservedTime}
	}
	return out
}

// eventsFromCore is the inverse of eventsToCore.
func eventsFromCore(o runtime.Object) (runtime.Object, error) {
	e, ok := o.(*corev1.Event)
	if !ok {
		return nil, fmt.Errorf("registry: want *corev1.Event, got %T", o)
	}
	out := &eventsv1.Event{
		ObjectMeta:               e.ObjectMeta,
		EventTime:                e.EventTime,
		ReportingController:      e.ReportingController,
		ReportingInstance:        e.ReportingInstance,
		Action:                   e.Action,
		Reason:                   e.Reason,
		Regarding:                e.InvolvedObject,
		Related:                  e.Related,
		Note:                     e.Message,
		Type:                     e.Type,
		DeprecatedSource:         e.Source,
		DeprecatedFirstTimestamp: e.FirstTimestamp,
		DeprecatedLastTimestamp:  e.LastTimestamp,
		DeprecatedCount:          e.Count,
	}
	out.SetGroupVersionKind(eventsv1.SchemeGroupVersion.WithKind("Event"))
	if e.Series != nil {
		out.Series = &eventsv1.EventSeries{Count: e.Series.Count, LastObservedTime: e.Series.LastObservedTime}
	}
	return out, nil
}
