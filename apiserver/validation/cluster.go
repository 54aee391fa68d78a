package validation

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func validateNamespace(ns *corev1.Namespace) field.ErrorList {
	return append(validateMeta(&ns.ObjectMeta, false, nameIsLabel), validateNamespaceSpec(ns)...)
}

func validateNamespaceSpec(ns *corev1.Namespace) field.ErrorList {
	var errs field.ErrorList
	fp := specPath.Child("finalizers")
	for _, f := range ns.Spec.Finalizers {
		errs = append(errs, qualifiedName(string(f), fp)...)
		if !strings.Contains(string(f), "/") && f != corev1.FinalizerKubernetes {
			errs = append(errs, field.Invalid(fp, f, "name is neither a standard finalizer name nor is it fully qualified"))
		}
	}
	return errs
}

func validateNamespaceUpdate(ns, old *corev1.Namespace) field.ErrorList {
	return withMetaUpdate(&ns.ObjectMeta, &old.ObjectMeta, validateNamespaceSpec(ns))
}

func validateNode(n *corev1.Node) field.ErrorList {
	return append(validateMeta(&n.ObjectMeta, false, nameIsSubdomain), validateNodeSpec(n)...)
}

func validateNodeSpec(n *corev1.Node) field.ErrorList {
	var errs field.ErrorList
	cp := specPath.Child("podCIDRs")
	for i, c := range n.Spec.PodCIDRs {
		errs = append(errs, validation.IsValidCIDR(cp.Index(i), c)...)
	}
	if len(n.Spec.PodCIDRs) > 2 {
		errs = append(errs, field.Invalid(cp, n.Spec.PodCIDRs, "may specify no more than one CIDR for each IP family"))
	}
	if len(n.Spec.PodCIDRs) > 0 && n.Spec.PodCIDR != n.Spec.PodCIDRs[0] {
		errs = append(errs, field.Invalid(cp, n.Spec.PodCIDRs, "first value must match `podCIDR`"))
	}
	seen := sets.New[string]()
	for i, t := range n.Spec.Taints {
		tp := specPath.Child("taints").Index(i)
		if t.Key == "" {
			errs = append(errs, field.Required(tp.Child("key"), ""))
		} else {
			errs = append(errs, metav1validation.ValidateLabelName(t.Key, tp.Child("key"))...)
		}
		errs = append(errs, msgs(tp.Child("value"), t.Value, validation.IsValidLabelValue(t.Value))...)
		errs = append(errs, oneOf(t.Effect, tp.Child("effect"), taintEffects...)...)
		key := t.Key + "/" + string(t.Effect)
		if seen.Has(key) {
			errs = append(errs, field.Invalid(tp, t, "taints must be unique by key and effect pair"))
		}
		seen.Insert(key)
	}
	for _, n2 := range []struct {
		name string
		l    corev1.ResourceList
	}{{"capacity", n.Status.Capacity}, {"allocatable", n.Status.Allocatable}} {
		for _, r := range sortedResourceNames(n2.l) {
			errs = append(errs, nonNegativeQuantity(n2.l[r], field.NewPath("status", n2.name).Key(string(r)))...)
		}
	}
	return errs
}

func validateNodeUpdate(n, old *corev1.Node) field.ErrorList {
	errs := withMetaUpdate(&n.ObjectMeta, &old.ObjectMeta, validateNodeSpec(n))
	if len(old.Spec.PodCIDRs) > 0 && !apiequality.Semantic.DeepEqual(n.Spec.PodCIDRs, old.Spec.PodCIDRs) {
		errs = append(errs, field.Forbidden(specPath.Child("podCIDRs"), "node updates may not change podCIDR except from \"\" to valid"))
	}
	if old.Spec.ProviderID != "" && n.Spec.ProviderID != old.Spec.ProviderID {
		errs = append(errs, field.Forbidden(specPath.Child("providerID"), "node updates may not change providerID except from \"\" to valid"))
	}
	return errs
}

var accessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadOnlyMany, corev1.ReadWriteMany, corev1.ReadWriteOnce, corev1.ReadWriteOncePod}

func validateAccessModes(ms []corev1.PersistentVolumeAccessMode, p *field.Path, requiredMsg string) field.ErrorList {
	if len(ms) == 0 {
		return field.ErrorList{field.Required(p, requiredMsg)}
	}
	var errs field.ErrorList
	for _, m := range ms {
		errs = append(errs, oneOf(m, p, accessModes...)...)
		if m == corev1.ReadWriteOncePod && len(ms) > 1 {
			errs = append(errs, field.Forbidden(p, "may not use ReadWriteOncePod with other access modes"))
		}
	}
	return errs
}

var volumeModes = []corev1.PersistentVolumeMode{corev1.PersistentVolumeBlock, corev1.PersistentVolumeFilesystem}

func validatePersistentVolume(pv *corev1.PersistentVolume) field.ErrorList {
	return append(validateMeta(&pv.ObjectMeta, false, nameIsPathSegment), validatePVSpec(pv)...)
}

func validatePVSpec(pv *corev1.PersistentVolume) field.ErrorList {
	s := &pv.Spec
	errs := validateAccessModes(s.AccessModes, specPath.Child("accessModes"), "")
	cp := specPath.Child("capacity")
	if len(s.Capacity) == 0 {
		errs = append(errs, field.Required(cp, ""))
	} else if _, ok := s.Capacity[corev1.ResourceStorage]; !ok || len(s.Capacity) > 1 {
		errs = append(errs, field.NotSupported(cp, sortedResourceNames(s.Capacity), []corev1.ResourceName{corev1.ResourceStorage}))
	}
	for _, r := range sortedResourceNames(s.Capacity) {
		errs = append(errs, nonNegativeQuantity(s.Capacity[r], cp.Key(string(r)))...)
	}
	errs = append(errs, optionalOneOf(s.PersistentVolumeReclaimPolicy, specPath.Child("persistentVolumeReclaimPolicy"),
		corev1.PersistentVolumeReclaimDelete, corev1.PersistentVolumeReclaimRecycle, corev1.PersistentVolumeReclaimRetain)...)
	if s.StorageClassName != "" {
		errs = append(errs, dnsSubdomain(s.StorageClassName, specPath.Child("storageClassName"))...)
	}
	if s.VolumeMode != nil {
		errs = append(errs, oneOf(*s.VolumeMode, specPath.Child("volumeMode"), volumeModes...)...)
	}
	if na := s.NodeAffinity; na != nil && na.Required != nil {
		rp := specPath.Child("nodeAffinity", "required", "nodeSelectorTerms")
		if len(na.Required.NodeSelectorTerms) == 0 {
			errs = append(errs, field.Required(rp, "must have at least one node selector term"))
		}
		for i, t := range na.Required.NodeSelectorTerms {
			errs = append(errs, validateNodeSelectorTerm(t, rp.Index(i))...)
		}
	}
	return append(errs, validatePVSource(pv)...)
}

// validatePVSource checks that a persistent volume names exactly one
// source.
func validatePVSource(pv *corev1.PersistentVolume) field.ErrorList {
	src := &pv.Spec.PersistentVolumeSource
	var errs field.ErrorList
	n := 0
	one := func(name string, set bool, check func(p *field.Path) field.ErrorList) {
		if !set {
			return
		}
		if n > 0 {
			errs = append(errs, field.Forbidden(specPath.Child(name), "may not specify more than 1 volume type"))
			return
		}
		n++
		if check != nil {
			errs = append(errs, check(specPath.Child(name))...)
		}
	}
	one("hostPath", src.HostPath != nil, func(p *field.Path) field.ErrorList { return validateHostPath(src.HostPath, p) })
	one("local", src.Local != nil, func(p *field.Path) field.ErrorList {
		var errs field.ErrorList
		if src.Local.Path == "" {
			errs = append(errs, field.Required(p.Child("path"), ""))
		} else {
			errs = append(errs, noBacksteps(src.Local.Path, p.Child("path"))...)
		}
		if pv.Spec.NodeAffinity == nil {
			errs = append(errs, field.Required(specPath.Child("nodeAffinity"), "Local volume requires node affinity"))
		}
		return errs
	})
	one("nfs", src.NFS != nil, func(p *field.Path) field.ErrorList { return validateNFS(src.NFS, p) })
	one("csi", src.CSI != nil, func(p *field.Path) field.ErrorList {
		var errs field.ErrorList
		if src.CSI.Driver == "" {
			errs = append(errs, field.Required(p.Child("driver"), ""))
		}
		if src.CSI.VolumeHandle == "" {
			errs = append(errs, field.Required(p.Child("volumeHandle"), ""))
		}
		return errs
	})
	for _, o := range []struct {
		name string
		set  bool
	}{
		{"gcePersistentDisk", src.GCEPersistentDisk != nil}, {"awsElasticBlockStore", src.AWSElasticBlockStore != nil},
		{"glusterfs", src.Glusterfs != nil}, {"rbd", src.RBD != nil}, {"iscsi", src.ISCSI != nil},
		{"cinder", src.Cinder != nil}, {"cephfs", src.CephFS != nil}, {"fc", src.FC != nil},
		{"flocker", src.Flocker != nil}, {"flexVolume", src.FlexVolume != nil}, {"azureFile", src.AzureFile != nil},
		{"vsphereVolume", src.VsphereVolume != nil}, {"quobyte", src.Quobyte != nil}, {"azureDisk", src.AzureDisk != nil},
		{"photonPersistentDisk", src.PhotonPersistentDisk != nil}, {"portworxVolume", src.PortworxVolume != nil},
		{"scaleIO", src.ScaleIO != nil}, {"storageos", src.StorageOS != nil},
	} {
		one(o.name, o.set, nil)
	}
	if n == 0 {
		errs = append(errs, field.Required(specPath, "must specify a volume type"))
	}
	return errs
}

func validatePersistentVolumeUpdate(pv, old *corev1.PersistentVolume) field.ErrorList {
	errs := withMetaUpdate(&pv.ObjectMeta, &old.ObjectMeta, validatePVSpec(pv))
	if !apiequality.Semantic.DeepEqual(pv.Spec.PersistentVolumeSource, old.Spec.PersistentVolumeSource) {
		errs = append(errs, field.Forbidden(specPath.Child("persistentvolumesource"), "spec.persistentvolumesource is immutable after creation"))
	}
	errs = append(errs, immutable(pv.Spec.VolumeMode, old.Spec.VolumeMode, specPath.Child("volumeMode"))...)
	if old.Spec.NodeAffinity != nil {
		errs = append(errs, immutable(pv.Spec.NodeAffinity, old.Spec.NodeAffinity, specPath.Child("nodeAffinity"))...)
	}
	return errs
}

func validatePersistentVolumeClaim(pvc *corev1.PersistentVolumeClaim) field.ErrorList {
	return append(validateMeta(&pvc.ObjectMeta, true, nameIsSubdomain), validatePVCSpec(&pvc.Spec, specPath)...)
}

func validatePVCSpec(s *corev1.PersistentVolumeClaimSpec, p *field.Path) field.ErrorList {
	errs := validateAccessModes(s.AccessModes, p.Child("accessModes"), "at least 1 access mode is required")
	errs = append(errs, labelSelector(s.Selector, p.Child("selector"))...)
	sp := p.Child("resources").Key(string(corev1.ResourceStorage))
	if q, ok := s.Resources.Requests[corev1.ResourceStorage]; !ok {
		errs = append(errs, field.Required(sp, ""))
	} else {
		errs = append(errs, positiveQuantity(q, sp)...)
	}
	if s.StorageClassName != nil && *s.StorageClassName != "" {
		errs = append(errs, dnsSubdomain(*s.StorageClassName, p.Child("storageClassName"))...)
	}
	if s.VolumeMode != nil {
		errs = append(errs, oneOf(*s.VolumeMode, p.Child("volumeMode"), volumeModes...)...)
	}
	ref := func(name, kind string, rp *field.Path) {
		if name == "" {
			errs = append(errs, field.Required(rp.Child("name"), ""))
		}
		if kind == "" {
			errs = append(errs, field.Required(rp.Child("kind"), ""))
		}
	}
	if d := s.DataSource; d != nil {
		ref(d.Name, d.Kind, p.Child("dataSource"))
	}
	if d := s.DataSourceRef; d != nil {
		ref(d.Name, d.Kind, p.Child("dataSourceRef"))
	}
	return errs
}

func validatePersistentVolumeClaimUpdate(pvc, old *corev1.PersistentVolumeClaim) field.ErrorList {
	errs := withMetaUpdate(&pvc.ObjectMeta, &old.ObjectMeta, validatePVCSpec(&pvc.Spec, specPath))
	oldSpec, newSpec := old.Spec.DeepCopy(), pvc.Spec.DeepCopy()
	if old.Spec.VolumeName == "" {
		// Binding sets the volume name once.
		oldSpec.VolumeName = newSpec.VolumeName
	}
	if _, beta := old.Annotations[corev1.BetaStorageClassAnnotation]; !beta && old.Spec.StorageClassName == nil && newSpec.StorageClassName != nil {
		// A claim created without a class may be given one, once.
		oldSpec.StorageClassName = newSpec.StorageClassName
	}
	newSpec.VolumeAttributesClassName = oldSpec.VolumeAttributesClassName
	if old.Status.Phase == corev1.ClaimBound {
		oldSize := old.Spec.Resources.Requests[corev1.ResourceStorage]
		newSize, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
		if ok && newSpec.Resources.Requests != nil {
			if _, had := old.Spec.Resources.Requests[corev1.ResourceStorage]; had {
				newSpec.Resources.Requests[corev1.ResourceStorage] = oldSize
			}
			if newSize.Cmp(oldSize) < 0 {
				errs = append(errs, field.Forbidden(specPath.Child("resources", "requests", "storage"), "field can not be less than previous value"))
			}
		}
	}
	if !apiequality.Semantic.DeepEqual(*newSpec, *oldSpec) {
		errs = append(errs, field.Forbidden(specPath, "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n"+
			changedFieldList(*oldSpec, *newSpec, "spec")))
	}
	return errs
}

// maxParametersSize bounds a StorageClass's parameters: 256 KiB.
const maxParametersSize = 256 * 1024

func validateStorageClass(sc *storagev1.StorageClass) field.ErrorList {
	errs := validateMeta(&sc.ObjectMeta, false, nameIsSubdomain)
	pp := field.NewPath("provisioner")
	if sc.Provisioner == "" {
		errs = append(errs, field.Required(pp, ""))
	} else {
		errs = append(errs, qualifiedName(strings.ToLower(sc.Provisioner), pp)...)
	}
	size := 0
	for _, k := range sortedKeys(sc.Parameters) {
		if k == "" {
			errs = append(errs, field.Invalid(field.NewPath("parameters"), k, "field can not be empty."))
		}
		size += len(k) + len(sc.Parameters[k])
	}
	if size > maxParametersSize {
		errs = append(errs, field.TooLong(field.NewPath("parameters"), "", maxParametersSize))
	}
	if sc.ReclaimPolicy != nil {
		errs = append(errs, oneOf(*sc.ReclaimPolicy, field.NewPath("reclaimPolicy"),
			corev1.PersistentVolumeReclaimDelete, corev1.PersistentVolumeReclaimRetain)...)
	}
	bp := field.NewPath("volumeBindingMode")
	if sc.VolumeBindingMode == nil {
		errs = append(errs, field.Required(bp, ""))
	} else {
		errs = append(errs, oneOf(*sc.VolumeBindingMode, bp, storagev1.VolumeBindingImmediate, storagev1.VolumeBindingWaitForFirstConsumer)...)
	}
	for i, term := range sc.AllowedTopologies {
		tp := field.NewPath("allowedTopologies").Index(i)
		if len(term.MatchLabelExpressions) == 0 {
			errs = append(errs, field.Required(tp.Child("matchLabelExpressions"), "must contain at least one key-value pair"))
		}
		for j, e := range term.MatchLabelExpressions {
			ep := tp.Child("matchLabelExpressions").Index(j)
			errs = append(errs, metav1validation.ValidateLabelName(e.Key, ep.Child("key"))...)
			if len(e.Values) == 0 {
				errs = append(errs, field.Required(ep.Child("values"), "must have at least one value"))
			}
		}
	}
	return errs
}

func validateStorageClassUpdate(sc, old *storagev1.StorageClass) field.ErrorList {
	errs := validateMetaUpdate(&sc.ObjectMeta, &old.ObjectMeta)
	if !apiequality.Semantic.DeepEqual(sc.Parameters, old.Parameters) {
		errs = append(errs, field.Forbidden(field.NewPath("parameters"), "updates to parameters are forbidden."))
	}
	if sc.Provisioner != old.Provisioner {
		errs = append(errs, field.Forbidden(field.NewPath("provisioner"), "updates to provisioner are forbidden."))
	}
	if !apiequality.Semantic.DeepEqual(sc.ReclaimPolicy, old.ReclaimPolicy) {
		errs = append(errs, field.Forbidden(field.NewPath("reclaimPolicy"), "updates to reclaimPolicy are forbidden."))
	}
	return append(errs, immutable(sc.VolumeBindingMode, old.VolumeBindingMode, field.NewPath("volumeBindingMode"))...)
}

// Priorities: user classes go up to highestUserPriority; the two system
// classes sit above.
const highestUserPriority = 1000000000

var systemPriorityClasses = map[string]int32{
	"system-node-critical":    2*highestUserPriority + 1000,
	"system-cluster-critical": 2 * highestUserPriority,
}

func validatePriorityClass(pc *schedulingv1.PriorityClass) field.ErrorList {
	errs := validateMeta(&pc.ObjectMeta, false, nameIsSubdomain)
	if strings.HasPrefix(pc.Name, "system-") {
		want, known := systemPriorityClasses[pc.Name]
		switch {
		case !known:
			errs = append(errs, field.Forbidden(metadataPath.Child("name"),
				fmt.Sprintf("priority class names with 'system-' prefix are reserved for system use only. error: %v is not a known system priority class", pc.Name)))
		case pc.Value != want:
			errs = append(errs, field.Forbidden(metadataPath.Child("name"),
				fmt.Sprintf("priority class names with 'system-' prefix are reserved for system use only. error: value of %v PriorityClass must be %v", pc.Name, want)))
		}
	} else if pc.Value > highestUserPriority {
		errs = append(errs, field.Forbidden(field.NewPath("value"), fmt.Sprintf("maximum allowed value of a user defined priority is %v", highestUserPriority)))
	}
	if pc.PreemptionPolicy != nil {
		errs = append(errs, oneOf(*pc.PreemptionPolicy, field.NewPath("preemptionPolicy"), corev1.PreemptNever, corev1.PreemptLowerPriority)...)
	}
	return errs
}

func validatePriorityClassUpdate(pc, old *schedulingv1.PriorityClass) field.ErrorList {
	errs := validateMetaUpdate(&pc.ObjectMeta, &old.ObjectMeta)
	if pc.Value != old.Value {
		errs = append(errs, field.Forbidden(field.NewPath("value"), "may not be changed in an update."))
	}
	return append(errs, immutable(pc.PreemptionPolicy, old.PreemptionPolicy, field.NewPath("preemptionPolicy"))...)
}
