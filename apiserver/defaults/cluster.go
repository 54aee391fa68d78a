package defaults

import (
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
)

func namespace(ns *corev1.Namespace) {
	// A namespace is always labelled with its own name; names made from
	// generateName are labelled once they exist.
	if ns.Name != "" {
		if ns.Labels == nil {
			ns.Labels = map[string]string{}
		}
		ns.Labels[corev1.LabelMetadataName] = ns.Name
	}
	if ns.Status.Phase == "" {
		ns.Status.Phase = corev1.NamespaceActive
	}
}

func node(n *corev1.Node) {
	roundResources(n.Status.Capacity)
	roundResources(n.Status.Allocatable)
	if n.Status.Allocatable == nil && n.Status.Capacity != nil {
		n.Status.Allocatable = make(corev1.ResourceList, len(n.Status.Capacity))
		for k, v := range n.Status.Capacity {
			n.Status.Allocatable[k] = v.DeepCopy()
		}
	}
}

func persistentVolume(pv *corev1.PersistentVolume) {
	if pv.Status.Phase == "" {
		pv.Status.Phase = corev1.VolumePending
	}
	if pv.Spec.PersistentVolumeReclaimPolicy == "" {
		pv.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
	}
	volumeMode(&pv.Spec.VolumeMode)
	roundResources(pv.Spec.Capacity)
	s := &pv.Spec.PersistentVolumeSource
	if s.HostPath != nil {
		hostPathType(&s.HostPath.Type)
	}
	if s.ISCSI != nil {
		setString(&s.ISCSI.ISCSIInterface, "default")
	}
	if s.RBD != nil {
		setString(&s.RBD.RBDPool, "rbd")
		setString(&s.RBD.RadosUser, "admin")
		setString(&s.RBD.Keyring, "/etc/ceph/keyring")
	}
	if s.AzureDisk != nil {
		azureDisk(s.AzureDisk)
	}
	if s.ScaleIO != nil {
		setString(&s.ScaleIO.StorageMode, "ThinProvisioned")
		setString(&s.ScaleIO.FSType, "xfs")
	}
}

func persistentVolumeClaim(pvc *corev1.PersistentVolumeClaim) {
	if pvc.Status.Phase == "" {
		pvc.Status.Phase = corev1.ClaimPending
	}
	pvcSpec(&pvc.Spec)
}

func pvcSpec(s *corev1.PersistentVolumeClaimSpec) {
	volumeMode(&s.VolumeMode)
	roundResources(s.Resources.Limits)
	roundResources(s.Resources.Requests)
}

func volumeMode(m **corev1.PersistentVolumeMode) {
	if *m == nil {
		fs := corev1.PersistentVolumeFilesystem
		*m = &fs
	}
}

func limitRangeItem(l *corev1.LimitRangeItem) {
	for _, rl := range []corev1.ResourceList{l.Max, l.Min, l.Default, l.DefaultRequest, l.MaxLimitRequestRatio} {
		roundResources(rl)
	}
	if l.Type != corev1.LimitTypeContainer {
		return
	}
	if l.Default == nil {
		l.Default = corev1.ResourceList{}
	}
	if l.DefaultRequest == nil {
		l.DefaultRequest = corev1.ResourceList{}
	}
	// Default limit from max, default request from the default limit, and
	// then from min.
	fill := func(dst, src corev1.ResourceList) {
		for k, v := range src {
			if _, ok := dst[k]; !ok {
				dst[k] = v.DeepCopy()
			}
		}
	}
	fill(l.Default, l.Max)
	fill(l.DefaultRequest, l.Default)
	fill(l.DefaultRequest, l.Min)
}

func roleRef(r *rbacv1.RoleRef) {
	setString(&r.APIGroup, rbacv1.GroupName)
}

func subjects(ss []rbacv1.Subject) {
	for i := range ss {
		if ss[i].APIGroup != "" {
			continue
		}
		switch ss[i].Kind {
		case rbacv1.UserKind, rbacv1.GroupKind:
			ss[i].APIGroup = rbacv1.GroupName
		}
	}
}

func storageClass(sc *storagev1.StorageClass) {
	if sc.ReclaimPolicy == nil {
		p := corev1.PersistentVolumeReclaimDelete
		sc.ReclaimPolicy = &p
	}
	if sc.VolumeBindingMode == nil {
		m := storagev1.VolumeBindingImmediate
		sc.VolumeBindingMode = &m
	}
}
