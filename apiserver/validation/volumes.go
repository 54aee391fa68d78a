package validation

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const fileModeErrorMsg = "must be a number between 0 and 0777 (octal), both inclusive"

// validateVolumes checks a pod's volumes and returns them by name.
func validateVolumes(vs []corev1.Volume, p *field.Path) (map[string]corev1.VolumeSource, field.ErrorList) {
	var errs field.ErrorList
	byName := map[string]corev1.VolumeSource{}
	for i, v := range vs {
		vp := p.Index(i)
		errs = append(errs, validateVolumeSource(&v.VolumeSource, vp)...)
		if v.Name == "" {
			errs = append(errs, field.Required(vp.Child("name"), ""))
		} else {
			errs = append(errs, dnsLabel(v.Name, vp.Child("name"))...)
		}
		if _, dup := byName[v.Name]; dup {
			errs = append(errs, field.Duplicate(vp.Child("name"), v.Name))
		} else {
			byName[v.Name] = v.VolumeSource
		}
	}
	return byName, errs
}

func fileMode(m *int32, p *field.Path) field.ErrorList {
	if m != nil && (*m > 0777 || *m < 0) {
		return field.ErrorList{field.Invalid(p, *m, fileModeErrorMsg)}
	}
	return nil
}

// volumePath checks a path inside a volume: relative, without "..", not
// starting with "..".
func volumePath(v string, p *field.Path) field.ErrorList {
	errs := localPath(v, p)
	if strings.HasPrefix(v, "..") && len(errs) == 0 {
		errs = append(errs, field.Invalid(p, v, "must not start with '..'"))
	}
	return errs
}

func keyToPaths(items []corev1.KeyToPath, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, it := range items {
		ip := p.Index(i)
		if it.Key == "" {
			errs = append(errs, field.Required(ip.Child("key"), ""))
		}
		if it.Path == "" {
			errs = append(errs, field.Required(ip.Child("path"), ""))
		} else {
			errs = append(errs, volumePath(it.Path, ip.Child("path"))...)
		}
		errs = append(errs, fileMode(it.Mode, ip.Child("mode"))...)
	}
	return errs
}

func downwardAPIFiles(items []corev1.DownwardAPIVolumeFile, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, it := range items {
		ip := p.Index(i)
		if it.Path == "" {
			errs = append(errs, field.Required(ip.Child("path"), ""))
		} else {
			errs = append(errs, volumePath(it.Path, ip.Child("path"))...)
		}
		errs = append(errs, fileMode(it.Mode, ip.Child("mode"))...)
		switch {
		case it.FieldRef != nil && it.ResourceFieldRef != nil:
			errs = append(errs, field.Invalid(ip, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously"))
		case it.FieldRef != nil:
			errs = append(errs, validateFieldRef(it.FieldRef, volumeFieldPaths, ip.Child("fieldRef"))...)
		case it.ResourceFieldRef != nil:
			errs = append(errs, validateResourceFieldRef(it.ResourceFieldRef, true, ip.Child("resourceFieldRef"))...)
		default:
			errs = append(errs, field.Required(ip, "one of fieldRef and resourceFieldRef is required"))
		}
	}
	return errs
}

var hostPathTypes = []corev1.HostPathType{corev1.HostPathUnset, corev1.HostPathDirectoryOrCreate, corev1.HostPathDirectory,
	corev1.HostPathFileOrCreate, corev1.HostPathFile, corev1.HostPathSocket, corev1.HostPathCharDev, corev1.HostPathBlockDev}

func validateHostPath(h *corev1.HostPathVolumeSource, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if h.Path == "" {
		errs = append(errs, field.Required(p.Child("path"), ""))
	} else {
		errs = append(errs, noBacksteps(h.Path, p.Child("path"))...)
	}
	if h.Type != nil && *h.Type != corev1.HostPathUnset {
		errs = append(errs, optionalOneOf(*h.Type, p.Child("type"), hostPathTypes...)...)
	}
	return errs
}

func validateNFS(n *corev1.NFSVolumeSource, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if n.Server == "" {
		errs = append(errs, field.Required(p.Child("server"), ""))
	}
	if n.Path == "" {
		errs = append(errs, field.Required(p.Child("path"), ""))
	} else if !strings.HasPrefix(n.Path, "/") {
		errs = append(errs, field.Invalid(p.Child("path"), n.Path, "must be an absolute path"))
	}
	return errs
}

// validateVolumeSource checks that exactly one source is set, and that one.
func validateVolumeSource(s *corev1.VolumeSource, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	n := 0
	one := func(name string, set bool, check func(sp *field.Path) field.ErrorList) {
		if !set {
			return
		}
		if n > 0 {
			errs = append(errs, field.Forbidden(p.Child(name), "may not specify more than 1 volume type"))
			return
		}
		n++
		if check != nil {
			errs = append(errs, check(p.Child(name))...)
		}
	}
	one("hostPath", s.HostPath != nil, func(sp *field.Path) field.ErrorList { return validateHostPath(s.HostPath, sp) })
	one("emptyDir", s.EmptyDir != nil, func(sp *field.Path) field.ErrorList {
		if l := s.EmptyDir.SizeLimit; l != nil && l.Sign() < 0 {
			return field.ErrorList{field.Forbidden(sp.Child("sizeLimit"), "SizeLimit field must be a valid resource quantity")}
		}
		return nil
	})
	one("gcePersistentDisk", s.GCEPersistentDisk != nil, nil)
	one("awsElasticBlockStore", s.AWSElasticBlockStore != nil, nil)
	one("gitRepo", s.GitRepo != nil, nil)
	one("secret", s.Secret != nil, func(sp *field.Path) field.ErrorList {
		var errs field.ErrorList
		if s.Secret.SecretName == "" {
			errs = append(errs, field.Required(sp.Child("secretName"), ""))
		}
		errs = append(errs, fileMode(s.Secret.DefaultMode, sp.Child("defaultMode"))...)
		return append(errs, keyToPaths(s.Secret.Items, sp.Child("items"))...)
	})
	one("nfs", s.NFS != nil, func(sp *field.Path) field.ErrorList { return validateNFS(s.NFS, sp) })
	one("iscsi", s.ISCSI != nil, nil)
	one("glusterfs", s.Glusterfs != nil, nil)
	one("persistentVolumeClaim", s.PersistentVolumeClaim != nil, func(sp *field.Path) field.ErrorList {
		if s.PersistentVolumeClaim.ClaimName == "" {
			return field.ErrorList{field.Required(sp.Child("claimName"), "")}
		}
		return nil
	})
	one("rbd", s.RBD != nil, nil)
	one("flexVolume", s.FlexVolume != nil, nil)
	one("cinder", s.Cinder != nil, nil)
	one("cephfs", s.CephFS != nil, nil)
	one("flocker", s.Flocker != nil, nil)
	one("downwardAPI", s.DownwardAPI != nil, func(sp *field.Path) field.ErrorList {
		errs := fileMode(s.DownwardAPI.DefaultMode, sp.Child("defaultMode"))
		return append(errs, downwardAPIFiles(s.DownwardAPI.Items, sp.Child("items"))...)
	})
	one("fc", s.FC != nil, nil)
	one("azureFile", s.AzureFile != nil, nil)
	one("configMap", s.ConfigMap != nil, func(sp *field.Path) field.ErrorList {
		var errs field.ErrorList
		if s.ConfigMap.Name == "" {
			errs = append(errs, field.Required(sp.Child("name"), ""))
		}
		errs = append(errs, fileMode(s.ConfigMap.DefaultMode, sp.Child("defaultMode"))...)
		return append(errs, keyToPaths(s.ConfigMap.Items, sp.Child("items"))...)
	})
	one("vsphereVolume", s.VsphereVolume != nil, nil)
	one("quobyte", s.Quobyte != nil, nil)
	one("azureDisk", s.AzureDisk != nil, nil)
	one("photonPersistentDisk", s.PhotonPersistentDisk != nil, nil)
	one("projected", s.Projected != nil, func(sp *field.Path) field.ErrorList { return validateProjected(s.Projected, sp) })
	one("portworxVolume", s.PortworxVolume != nil, nil)
	one("scaleIO", s.ScaleIO != nil, nil)
	one("storageos", s.StorageOS != nil, nil)
	one("csi", s.CSI != nil, func(sp *field.Path) field.ErrorList {
		if s.CSI.Driver == "" {
			return field.ErrorList{field.Required(sp.Child("driver"), "")}
		}
		return nil
	})
	one("ephemeral", s.Ephemeral != nil, func(sp *field.Path) field.ErrorList {
		t := s.Ephemeral.VolumeClaimTemplate
		if t == nil {
			return field.ErrorList{field.Required(sp.Child("volumeClaimTemplate"), "")}
		}
		tp := sp.Child("volumeClaimTemplate")
		errs := labels(t.Labels, tp.Child("metadata", "labels"))
		errs = append(errs, annotations(t.Annotations, tp.Child("metadata", "annotations"))...)
		return append(errs, validatePVCSpec(&t.Spec, tp.Child("spec"))...)
	})
	one("image", s.Image != nil, func(sp *field.Path) field.ErrorList {
		var errs field.ErrorList
		if s.Image.Reference == "" {
			errs = append(errs, field.Required(sp.Child("reference"), ""))
		}
		return append(errs, optionalOneOf(s.Image.PullPolicy, sp.Child("pullPolicy"), pullPolicies...)...)
	})
	if n == 0 {
		errs = append(errs, field.Required(p, "must specify a volume type"))
	}
	return errs
}

func validateProjected(pr *corev1.ProjectedVolumeSource, p *field.Path) field.ErrorList {
	errs := fileMode(pr.DefaultMode, p.Child("defaultMode"))
	for i, src := range pr.Sources {
		sp := p.Child("sources").Index(i)
		n := 0
		count := func(name string, set bool) bool {
			if !set {
				return false
			}
			if n > 0 {
				errs = append(errs, field.Forbidden(sp.Child(name), "may not specify more than 1 volume type per source"))
				return false
			}
			n++
			return true
		}
		if count("secret", src.Secret != nil) {
			if src.Secret.Name == "" {
				errs = append(errs, field.Required(sp.Child("secret", "name"), ""))
			}
			errs = append(errs, keyToPaths(src.Secret.Items, sp.Child("secret", "items"))...)
		}
		if count("configMap", src.ConfigMap != nil) {
			if src.ConfigMap.Name == "" {
				errs = append(errs, field.Required(sp.Child("configMap", "name"), ""))
			}
			errs = append(errs, keyToPaths(src.ConfigMap.Items, sp.Child("configMap", "items"))...)
		}
		if count("downwardAPI", src.DownwardAPI != nil) {
			errs = append(errs, downwardAPIFiles(src.DownwardAPI.Items, sp.Child("downwardAPI", "items"))...)
		}
		if count("serviceAccountToken", src.ServiceAccountToken != nil) {
			tp := sp.Child("serviceAccountToken")
			if e := src.ServiceAccountToken.ExpirationSeconds; e != nil && *e < 600 {
				errs = append(errs, field.Invalid(tp.Child("expirationSeconds"), *e, "may not specify a duration less than 10 minutes"))
			}
			if src.ServiceAccountToken.Path == "" {
				errs = append(errs, field.Required(tp.Child("path"), ""))
			} else {
				errs = append(errs, volumePath(src.ServiceAccountToken.Path, tp.Child("path"))...)
			}
		}
		count("clusterTrustBundle", src.ClusterTrustBundle != nil)
		count("podCertificate", src.PodCertificate != nil)
		if n == 0 {
			errs = append(errs, field.Required(sp, "must specify a source"))
		}
	}
	return errs
}

var mountPropagations = []corev1.MountPropagationMode{corev1.MountPropagationBidirectional,
	corev1.MountPropagationHostToContainer, corev1.MountPropagationNone}

// validateVolumeMounts checks a container's mounts and devices against the
// pod's volumes.
func validateVolumeMounts(c *corev1.Container, volumes map[string]corev1.VolumeSource, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	mountPaths := sets.New[string]()
	devices := map[string]string{}
	for _, d := range c.VolumeDevices {
		devices[d.Name] = d.DevicePath
	}
	for i, m := range c.VolumeMounts {
		mp := p.Child("volumeMounts").Index(i)
		if m.Name == "" {
			errs = append(errs, field.Required(mp.Child("name"), ""))
		}
		if _, ok := volumes[m.Name]; !ok {
			errs = append(errs, field.NotFound(mp.Child("name"), m.Name))
		}
		if _, ok := devices[m.Name]; ok {
			errs = append(errs, field.Invalid(mp.Child("name"), m.Name, "must not already exist in volumeDevices"))
		}
		if m.MountPath == "" {
			errs = append(errs, field.Required(mp.Child("mountPath"), ""))
		} else if mountPaths.Has(m.MountPath) {
			errs = append(errs, field.Invalid(mp.Child("mountPath"), m.MountPath, "must be unique"))
		}
		mountPaths.Insert(m.MountPath)
		if m.SubPath != "" {
			errs = append(errs, localPath(m.SubPath, mp.Child("subPath"))...)
		}
		if m.SubPathExpr != "" {
			if m.SubPath != "" {
				errs = append(errs, field.Invalid(mp.Child("subPathExpr"), m.SubPathExpr, "subPathExpr and subPath are mutually exclusive"))
			}
			errs = append(errs, localPath(m.SubPathExpr, mp.Child("subPathExpr"))...)
		}
		if m.MountPropagation != nil {
			errs = append(errs, oneOf(*m.MountPropagation, mp.Child("mountPropagation"), mountPropagations...)...)
			privileged := c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged
			if *m.MountPropagation == corev1.MountPropagationBidirectional && !privileged {
				errs = append(errs, field.Forbidden(mp.Child("mountPropagation"), "Bidirectional mount propagation is available only to privileged containers"))
			}
		}
	}
	devicePaths := sets.New[string]()
	for i, d := range c.VolumeDevices {
		dp := p.Child("volumeDevices").Index(i)
		if d.Name == "" {
			errs = append(errs, field.Required(dp.Child("name"), ""))
		}
		src, ok := volumes[d.Name]
		switch {
		case !ok:
			errs = append(errs, field.NotFound(dp.Child("name"), d.Name))
		case src.PersistentVolumeClaim == nil && src.Ephemeral == nil:
			errs = append(errs, field.Invalid(dp.Child("name"), d.Name, "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode"))
		}
		if d.DevicePath == "" {
			errs = append(errs, field.Required(dp.Child("devicePath"), ""))
		} else if devicePaths.Has(d.DevicePath) {
			errs = append(errs, field.Invalid(dp.Child("devicePath"), d.DevicePath, "must be unique"))
		} else if mountPaths.Has(d.DevicePath) {
			errs = append(errs, field.Invalid(dp.Child("devicePath"), d.DevicePath, "must not already exist as a path in volumeMounts"))
		}
		devicePaths.Insert(d.DevicePath)
	}
	return errs
}
