package apiserver

import (
	"context"
	"fmt"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-sh/skiff/apiserver/registry"
	"github.com/skiff-sh/skiff/controllers/volumebinding/pvmatch"
)

// defaultTolerationSeconds is how long pods stay on a node that went
// not-ready or unreachable, unless they say otherwise (kube's
// DefaultTolerationSeconds admission).
const defaultTolerationSeconds = 300

// prepareForCreate resets what a client may not set on create: the status
// of most resources, which controllers and nodes own.
func (s *Server) prepareForCreate(res *registry.Resource, obj runtime.Object) {
	switch o := obj.(type) {
	case *corev1.Node:
		// Nodes register themselves with their status.
	case *corev1.Pod:
		o.Status = corev1.PodStatus{Phase: corev1.PodPending}
	case *corev1.Namespace:
		o.Status = corev1.NamespaceStatus{Phase: corev1.NamespaceActive}
	case *corev1.PersistentVolume:
		o.Status = corev1.PersistentVolumeStatus{Phase: corev1.VolumePending}
	case *corev1.PersistentVolumeClaim:
		o.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending}
	default:
		if res.HasStatus {
			clearTopField(obj, "Status")
		}
	}
}

// normalize folds write-only convenience fields into their stored form,
// as kube's conversion does: a Secret's stringData joins its data.
func normalize(obj runtime.Object) {
	if sec, ok := obj.(*corev1.Secret); ok && len(sec.StringData) > 0 {
		if sec.Data == nil {
			sec.Data = map[string][]byte{}
		}
		for k, v := range sec.StringData {
			sec.Data[k] = []byte(v)
		}
		sec.StringData = nil
	}
}

// admitCreate is the server's built-in admission on create: the mutations
// and checks kube-apiserver's default admission plugins make.
func (s *Server) admitCreate(ctx context.Context, res *registry.Resource, obj runtime.Object) error {
	switch o := obj.(type) {
	case *corev1.Pod:
		if o.Spec.ServiceAccountName == "" {
			o.Spec.ServiceAccountName = "default"
		}
		o.Spec.DeprecatedServiceAccount = o.Spec.ServiceAccountName
		addDefaultTolerations(&o.Spec)
		if err := s.resolvePriority(ctx, &o.Spec); err != nil {
			return err
		}
		if o.Spec.PreemptionPolicy == nil {
			p := corev1.PreemptLowerPriority
			o.Spec.PreemptionPolicy = &p
		}
		o.Status.QOSClass = qosClass(&o.Spec)
	case *certificatesv1.CertificateSigningRequest:
		return s.admitCSR(ctx, o)
	case *corev1.PersistentVolumeClaim:
		return s.defaultStorageClass(ctx, o)
	case *networkingv1.Ingress:
		return s.defaultIngressClass(ctx, o)
	case *corev1.Namespace:
		if len(o.Spec.Finalizers) == 0 {
			o.Spec.Finalizers = []corev1.FinalizerName{corev1.FinalizerKubernetes}
		}
	}
	return nil
}

// admitUpdate checks an update against what admission forbids.
func (s *Server) admitUpdate(ctx context.Context, res *registry.Resource, obj, old runtime.Object) error {
	if ns, ok := obj.(*corev1.Namespace); ok && ns.DeletionTimestamp != nil {
		ns.Status.Phase = corev1.NamespaceTerminating
	}
	return nil
}

// addDefaultTolerations gives a pod the 300 s not-ready and unreachable
// NoExecute tolerations unless it has its own.
func addDefaultTolerations(spec *corev1.PodSpec) {
	seconds := int64(defaultTolerationSeconds)
	for _, key := range []string{corev1.TaintNodeNotReady, corev1.TaintNodeUnreachable} {
		has := false
		for _, t := range spec.Tolerations {
			if (t.Key == key || t.Key == "") && (t.Effect == corev1.TaintEffectNoExecute || t.Effect == "") {
				has = true
				break
			}
		}
		if !has {
			spec.Tolerations = append(spec.Tolerations, corev1.Toleration{
				Key: key, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &seconds,
			})
		}
	}
}

// resolvePriority sets spec.priority from the pod's PriorityClass, or from
// the global default class, or 0 (kube's Priority admission).
func (s *Server) resolvePriority(ctx context.Context, spec *corev1.PodSpec) error {
	pcRes, _ := s.catalog.Lookup(schedulingv1.SchemeGroupVersion.WithResource("priorityclasses"))
	if spec.PriorityClassName != "" {
		obj, err := s.objects.get(ctx, pcRes, "", spec.PriorityClassName)
		if apierrors.IsNotFound(err) {
			return apierrors.NewForbidden(corev1.Resource("pods"), "",
				fmt.Errorf("no PriorityClass with name %s was found", spec.PriorityClassName))
		}
		if err != nil {
			return err
		}
		pc := obj.(*schedulingv1.PriorityClass)
		if spec.Priority != nil && *spec.Priority != pc.Value {
			return apierrors.NewForbidden(corev1.Resource("pods"), "",
				fmt.Errorf("the integer value of priority (%d) must not be provided in pod spec; priority admission controller computed %d from the given PriorityClass name", *spec.Priority, pc.Value))
		}
		v := pc.Value
		spec.Priority = &v
		if spec.PreemptionPolicy == nil && pc.PreemptionPolicy != nil {
			p := *pc.PreemptionPolicy
			spec.PreemptionPolicy = &p
		}
		return nil
	}
	if spec.Priority != nil {
		return nil
	}
	var v int32
	list, err := s.listAll(ctx, pcRes, "")
	if err != nil {
		return err
	}
	for _, o := range list {
		pc := o.(*schedulingv1.PriorityClass)
		if pc.GlobalDefault {
			v = pc.Value
			spec.PriorityClassName = pc.Name
			if spec.PreemptionPolicy == nil && pc.PreemptionPolicy != nil {
				p := *pc.PreemptionPolicy
				spec.PreemptionPolicy = &p
			}
		}
	}
	spec.Priority = &v
	return nil
}

// qosClass computes a pod's quality-of-service class from its containers'
// requests and limits of cpu and memory.
func qosClass(spec *corev1.PodSpec) corev1.PodQOSClass {
	requests := map[corev1.ResourceName]resource.Quantity{}
	limits := map[corev1.ResourceName]resource.Quantity{}
	allLimited := true
	any := false
	containers := append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
	for _, c := range containers {
		limited := map[corev1.ResourceName]bool{}
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if q, ok := c.Resources.Requests[name]; ok && !q.IsZero() {
				any = true
				acc := requests[name]
				acc.Add(q)
				requests[name] = acc
			}
			if q, ok := c.Resources.Limits[name]; ok && !q.IsZero() {
				any = true
				limited[name] = true
				acc := limits[name]
				acc.Add(q)
				limits[name] = acc
			}
		}
		if !limited[corev1.ResourceCPU] || !limited[corev1.ResourceMemory] {
			allLimited = false
		}
	}
	if !any {
		return corev1.PodQOSBestEffort
	}
	if allLimited {
		for name, req := range requests {
			if lim, ok := limits[name]; !ok || lim.Cmp(req) != 0 {
				return corev1.PodQOSBurstable
			}
		}
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

// defaultStorageClass gives a claim that names no class the default
// StorageClass, if there is one (kube's DefaultStorageClass admission).
func (s *Server) defaultStorageClass(ctx context.Context, pvc *corev1.PersistentVolumeClaim) error {
	if pvmatch.HasClass(pvc) {
		return nil
	}
	scRes, ok := s.catalog.Lookup(storagev1.SchemeGroupVersion.WithResource("storageclasses"))
	if !ok {
		return nil
	}
	list, err := s.listAll(ctx, scRes, "")
	if err != nil {
		return err
	}
	classes := make([]*storagev1.StorageClass, 0, len(list))
	for _, o := range list {
		if sc, ok := o.(*storagev1.StorageClass); ok {
			classes = append(classes, sc)
		}
	}
	if d := pvmatch.DefaultClass(classes); d != nil {
		name := d.Name
		pvc.Spec.StorageClassName = &name
	}
	return nil
}

// defaultIngressClass gives an Ingress that names no class (field or legacy
// annotation) the default IngressClass, if there is one (kube's
// DefaultIngressClass admission): the newest of those marked default.
func (s *Server) defaultIngressClass(ctx context.Context, ing *networkingv1.Ingress) error {
	if ing.Spec.IngressClassName != nil {
		return nil
	}
	if _, legacy := ing.Annotations["kubernetes.io/ingress.class"]; legacy {
		return nil
	}
	res, ok := s.catalog.Lookup(networkingv1.SchemeGroupVersion.WithResource("ingressclasses"))
	if !ok {
		return nil
	}
	list, err := s.listAll(ctx, res, "")
	if err != nil {
		return err
	}
	var best *networkingv1.IngressClass
	for _, o := range list {
		ic, ok := o.(*networkingv1.IngressClass)
		if !ok || ic.Annotations[networkingv1.AnnotationIsDefaultIngressClass] != "true" {
			continue
		}
		if best == nil || ic.CreationTimestamp.After(best.CreationTimestamp.Time) {
			best = ic
		}
	}
	if best != nil {
		name := best.Name
		ing.Spec.IngressClassName = &name
	}
	return nil
}
