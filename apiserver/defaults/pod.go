package defaults

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// pod sets the defaults of a Pod: those of every pod spec, plus the ones
// Kubernetes gives only to Pods (never to templates).
func pod(p *corev1.Pod) {
	podSpec(&p.Spec)
	for i := range p.Spec.Containers {
		requestsFromLimits(&p.Spec.Containers[i].Resources)
	}
	for i := range p.Spec.InitContainers {
		requestsFromLimits(&p.Spec.InitContainers[i].Resources)
	}
	setBool(&p.Spec.EnableServiceLinks, corev1.DefaultEnableServiceLinks)
	if p.Spec.HostNetwork {
		hostNetworkPorts(p.Spec.Containers)
		hostNetworkPorts(p.Spec.InitContainers)
	}
}

// podTemplateSpec sets the defaults of a pod template.
func podTemplateSpec(t *corev1.PodTemplateSpec) {
	podSpec(&t.Spec)
}

// podSpec sets the defaults shared by Pods and pod templates.
func podSpec(s *corev1.PodSpec) {
	setString((*string)(&s.DNSPolicy), string(corev1.DNSClusterFirst))
	setString((*string)(&s.RestartPolicy), string(corev1.RestartPolicyAlways))
	if s.SecurityContext == nil {
		s.SecurityContext = &corev1.PodSecurityContext{}
	}
	setInt64(&s.TerminationGracePeriodSeconds, corev1.DefaultTerminationGracePeriodSeconds)
	setString(&s.SchedulerName, corev1.DefaultSchedulerName)
	// The v1 API keeps the deprecated serviceAccount field in step.
	if s.ServiceAccountName == "" {
		s.ServiceAccountName = s.DeprecatedServiceAccount
	}
	if s.ServiceAccountName != "" {
		s.DeprecatedServiceAccount = s.ServiceAccountName
	}
	for i := range s.Containers {
		container(&s.Containers[i])
	}
	for i := range s.InitContainers {
		container(&s.InitContainers[i])
	}
	for i := range s.EphemeralContainers {
		// EphemeralContainerCommon has exactly the fields of Container.
		container((*corev1.Container)(&s.EphemeralContainers[i].EphemeralContainerCommon))
	}
	for i := range s.Volumes {
		volume(&s.Volumes[i])
	}
	if s.Overhead != nil {
		roundResources(s.Overhead)
	}
	if s.Resources != nil {
		roundResources(s.Resources.Limits)
		roundResources(s.Resources.Requests)
	}
}

func container(c *corev1.Container) {
	if c.ImagePullPolicy == "" {
		if imageTag(c.Image) == "latest" {
			c.ImagePullPolicy = corev1.PullAlways
		} else {
			c.ImagePullPolicy = corev1.PullIfNotPresent
		}
	}
	setString(&c.TerminationMessagePath, corev1.TerminationMessagePathDefault)
	setString((*string)(&c.TerminationMessagePolicy), string(corev1.TerminationMessageReadFile))
	for i := range c.Ports {
		setString((*string)(&c.Ports[i].Protocol), string(corev1.ProtocolTCP))
	}
	for i := range c.Env {
		if vf := c.Env[i].ValueFrom; vf != nil && vf.FieldRef != nil {
			setString(&vf.FieldRef.APIVersion, "v1")
		}
		if vf := c.Env[i].ValueFrom; vf != nil && vf.FileKeyRef != nil {
			setBool(&vf.FileKeyRef.Optional, false)
		}
	}
	roundResources(c.Resources.Limits)
	roundResources(c.Resources.Requests)
	probe(c.LivenessProbe)
	probe(c.ReadinessProbe)
	probe(c.StartupProbe)
	if c.Lifecycle != nil {
		lifecycleHandler(c.Lifecycle.PostStart)
		lifecycleHandler(c.Lifecycle.PreStop)
	}
}

// imageTag returns the tag an image reference names, "latest" when it names
// neither a tag nor a digest, and "" when it names only a digest or cannot
// be a valid reference.
func imageTag(image string) string {
	if image == "" || strings.ContainsAny(image, " \t\r\n") {
		return ""
	}
	name, hasDigest := image, false
	if i := strings.Index(name, "@"); i >= 0 {
		name, hasDigest = name[:i], true
	}
	slash := strings.LastIndex(name, "/")
	repo := name
	tag := ""
	if c := strings.LastIndex(name, ":"); c > slash {
		repo, tag = name[:c], name[c+1:]
	}
	// Repository paths (everything after the registry host) are lowercase.
	path := repo
	if first := strings.Index(repo, "/"); first >= 0 {
		host := repo[:first]
		if strings.ContainsAny(host, ".:") || host == "localhost" {
			path = repo[first+1:]
		}
	}
	if path != strings.ToLower(path) {
		return ""
	}
	if tag == "" && !hasDigest {
		return "latest"
	}
	return tag
}

func probe(p *corev1.Probe) {
	if p == nil {
		return
	}
	if p.TimeoutSeconds == 0 {
		p.TimeoutSeconds = 1
	}
	if p.PeriodSeconds == 0 {
		p.PeriodSeconds = 10
	}
	if p.SuccessThreshold == 0 {
		p.SuccessThreshold = 1
	}
	if p.FailureThreshold == 0 {
		p.FailureThreshold = 3
	}
	httpGet(p.HTTPGet)
	if p.GRPC != nil && p.GRPC.Service == nil {
		empty := ""
		p.GRPC.Service = &empty
	}
}

func lifecycleHandler(h *corev1.LifecycleHandler) {
	if h != nil {
		httpGet(h.HTTPGet)
	}
}

func httpGet(h *corev1.HTTPGetAction) {
	if h == nil {
		return
	}
	setString(&h.Path, "/")
	setString((*string)(&h.Scheme), string(corev1.URISchemeHTTP))
}

func requestsFromLimits(r *corev1.ResourceRequirements) {
	if r.Limits == nil {
		return
	}
	if r.Requests == nil {
		r.Requests = corev1.ResourceList{}
	}
	for name, q := range r.Limits {
		if _, ok := r.Requests[name]; !ok {
			r.Requests[name] = q.DeepCopy()
		}
	}
}

// roundResources rounds quantities up to milli precision, as the v1 API
// does for every resource list.
func roundResources(l corev1.ResourceList) {
	for name, q := range l {
		if !q.RoundUp(resource.Milli) {
			l[name] = q
		}
	}
}

func hostNetworkPorts(cs []corev1.Container) {
	for i := range cs {
		for j := range cs[i].Ports {
			if cs[i].Ports[j].HostPort == 0 {
				cs[i].Ports[j].HostPort = cs[i].Ports[j].ContainerPort
			}
		}
	}
}

func volume(v *corev1.Volume) {
	if v.VolumeSource == (corev1.VolumeSource{}) {
		v.VolumeSource.EmptyDir = &corev1.EmptyDirVolumeSource{}
	}
	s := &v.VolumeSource
	if s.HostPath != nil {
		hostPathType(&s.HostPath.Type)
	}
	if s.Secret != nil {
		setInt32(&s.Secret.DefaultMode, corev1.SecretVolumeSourceDefaultMode)
	}
	if s.ConfigMap != nil {
		setInt32(&s.ConfigMap.DefaultMode, corev1.ConfigMapVolumeSourceDefaultMode)
	}
	if s.DownwardAPI != nil {
		setInt32(&s.DownwardAPI.DefaultMode, corev1.DownwardAPIVolumeSourceDefaultMode)
		downwardAPIFiles(s.DownwardAPI.Items)
	}
	if s.Projected != nil {
		setInt32(&s.Projected.DefaultMode, corev1.ProjectedVolumeSourceDefaultMode)
		for i := range s.Projected.Sources {
			src := &s.Projected.Sources[i]
			if src.DownwardAPI != nil {
				downwardAPIFiles(src.DownwardAPI.Items)
			}
			if src.ServiceAccountToken != nil {
				setInt64(&src.ServiceAccountToken.ExpirationSeconds, 3600)
			}
		}
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
	if s.Ephemeral != nil && s.Ephemeral.VolumeClaimTemplate != nil {
		pvcSpec(&s.Ephemeral.VolumeClaimTemplate.Spec)
	}
}

func hostPathType(t **corev1.HostPathType) {
	if *t == nil {
		unset := corev1.HostPathUnset
		*t = &unset
	}
}

func azureDisk(a *corev1.AzureDiskVolumeSource) {
	if a.CachingMode == nil {
		m := corev1.AzureDataDiskCachingReadWrite
		a.CachingMode = &m
	}
	if a.Kind == nil {
		k := corev1.AzureSharedBlobDisk
		a.Kind = &k
	}
	if a.FSType == nil {
		fs := "ext4"
		a.FSType = &fs
	}
	setBool(&a.ReadOnly, false)
}

func downwardAPIFiles(items []corev1.DownwardAPIVolumeFile) {
	for i := range items {
		if items[i].FieldRef != nil {
			setString(&items[i].FieldRef.APIVersion, "v1")
		}
	}
}
