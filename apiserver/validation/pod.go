package validation

import (
	"fmt"
	"math"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func validatePod(p *corev1.Pod) field.ErrorList {
	errs := validateMeta(&p.ObjectMeta, true, nameIsSubdomain)
	errs = append(errs, validatePodSpec(&p.Spec, field.NewPath("spec"))...)
	if p.Spec.HostNetwork {
		errs = append(errs, hostNetworkPorts(&p.Spec, field.NewPath("spec"))...)
	}
	return errs
}

func validatePodTemplate(t *corev1.PodTemplate) field.ErrorList {
	errs := validateMeta(&t.ObjectMeta, true, nameIsSubdomain)
	return append(errs, validatePodTemplateSpec(&t.Template, field.NewPath("template"))...)
}

func validatePodTemplateUpdate(t, old *corev1.PodTemplate) field.ErrorList {
	return withMetaUpdate(&t.ObjectMeta, &old.ObjectMeta, validatePodTemplateSpec(&t.Template, field.NewPath("template")))
}

// validatePodTemplateSpec checks a pod template's labels, annotations and
// spec.
func validatePodTemplateSpec(t *corev1.PodTemplateSpec, p *field.Path) field.ErrorList {
	errs := labels(t.Labels, p.Child("metadata", "labels"))
	errs = append(errs, annotations(t.Annotations, p.Child("metadata", "annotations"))...)
	return append(errs, validatePodSpec(&t.Spec, p.Child("spec"))...)
}

var (
	restartPolicies = []corev1.RestartPolicy{corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}
	dnsPolicies     = []corev1.DNSPolicy{corev1.DNSClusterFirst, corev1.DNSClusterFirstWithHostNet, corev1.DNSDefault, corev1.DNSNone}
)

// validatePodSpec checks the rules every pod spec, of a Pod or a template,
// must follow.
func validatePodSpec(s *corev1.PodSpec, p *field.Path) field.ErrorList {
	volumes, errs := validateVolumes(s.Volumes, p.Child("volumes"))
	errs = append(errs, validateAllContainers(s, volumes, p)...)
	errs = append(errs, oneOf(s.RestartPolicy, p.Child("restartPolicy"), restartPolicies...)...)
	errs = append(errs, oneOf(s.DNSPolicy, p.Child("dnsPolicy"), dnsPolicies...)...)
	errs = append(errs, validateDNSConfig(s, p)...)
	errs = append(errs, labels(s.NodeSelector, p.Child("nodeSelector"))...)
	if s.ServiceAccountName != "" {
		errs = append(errs, msgs(p.Child("serviceAccountName"), s.ServiceAccountName, nameIsSubdomain(s.ServiceAccountName, false))...)
	}
	if s.NodeName != "" {
		errs = append(errs, msgs(p.Child("nodeName"), s.NodeName, nameIsSubdomain(s.NodeName, false))...)
	}
	if s.Hostname != "" {
		errs = append(errs, dnsLabel(s.Hostname, p.Child("hostname"))...)
	}
	if s.Subdomain != "" {
		errs = append(errs, dnsLabel(s.Subdomain, p.Child("subdomain"))...)
	}
	if s.PriorityClassName != "" {
		errs = append(errs, dnsSubdomain(s.PriorityClassName, p.Child("priorityClassName"))...)
	}
	if s.RuntimeClassName != nil {
		errs = append(errs, dnsSubdomain(*s.RuntimeClassName, p.Child("runtimeClassName"))...)
	}
	if s.ActiveDeadlineSeconds != nil {
		if v := *s.ActiveDeadlineSeconds; v < 1 || v > math.MaxInt32 {
			errs = append(errs, field.Invalid(p.Child("activeDeadlineSeconds"), v, validation.InclusiveRangeError(1, math.MaxInt32)))
		}
	}
	errs = append(errs, validateTolerations(s.Tolerations, p.Child("tolerations"))...)
	errs = append(errs, validatePodSecurityContext(s.SecurityContext, p.Child("securityContext"))...)
	errs = append(errs, validateAffinity(s.Affinity, p.Child("affinity"))...)
	errs = append(errs, validateTopologySpread(s.TopologySpreadConstraints, p.Child("topologySpreadConstraints"))...)
	for i, g := range s.ReadinessGates {
		errs = append(errs, qualifiedName(string(g.ConditionType), p.Child("readinessGates").Index(i).Child("conditionType"))...)
	}
	for i, a := range s.HostAliases {
		ap := p.Child("hostAliases").Index(i)
		errs = append(errs, validation.IsValidIP(ap.Child("ip"), a.IP)...)
		for j, h := range a.Hostnames {
			errs = append(errs, dnsSubdomain(h, ap.Child("hostnames").Index(j))...)
		}
	}
	for i, sec := range s.ImagePullSecrets {
		if sec.Name == "" {
			errs = append(errs, field.Required(p.Child("imagePullSecrets").Index(i).Child("name"), ""))
		}
	}
	for i, g := range s.SchedulingGates {
		errs = append(errs, qualifiedName(g.Name, p.Child("schedulingGates").Index(i).Child("name"))...)
	}
	return errs
}

// hostNetworkPorts: with host networking a container port is a host port.
func hostNetworkPorts(s *corev1.PodSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	check := func(cs []corev1.Container, cp *field.Path) {
		for i, c := range cs {
			for j, port := range c.Ports {
				if port.HostPort != port.ContainerPort {
					errs = append(errs, field.Invalid(cp.Index(i).Child("ports").Index(j).Child("hostPort"), port.HostPort,
						"must match `containerPort` when `hostNetwork` is true"))
				}
			}
		}
	}
	check(s.Containers, p.Child("containers"))
	check(s.InitContainers, p.Child("initContainers"))
	return errs
}

// validateAllContainers checks containers, init containers and ephemeral
// containers, whose names share one namespace.
func validateAllContainers(s *corev1.PodSpec, volumes map[string]corev1.VolumeSource, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := sets.New[string]()
	hostPorts := sets.New[string]()
	if len(s.Containers) == 0 {
		errs = append(errs, field.Required(p.Child("containers"), ""))
	}
	for i := range s.InitContainers {
		c := &s.InitContainers[i]
		cp := p.Child("initContainers").Index(i)
		errs = append(errs, validateContainer(c, volumes, names, cp)...)
		sidecar := c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
		if c.RestartPolicy != nil {
			errs = append(errs, optionalOneOf(*c.RestartPolicy, cp.Child("restartPolicy"), corev1.ContainerRestartPolicyAlways)...)
		}
		if !sidecar {
			const msg = "may not be set for init containers without restartPolicy=Always"
			if c.Lifecycle != nil {
				errs = append(errs, field.Forbidden(cp.Child("lifecycle"), msg))
			}
			if c.LivenessProbe != nil {
				errs = append(errs, field.Forbidden(cp.Child("livenessProbe"), msg))
			}
			if c.ReadinessProbe != nil {
				errs = append(errs, field.Forbidden(cp.Child("readinessProbe"), msg))
			}
			if c.StartupProbe != nil {
				errs = append(errs, field.Forbidden(cp.Child("startupProbe"), msg))
			}
		}
		errs = append(errs, uniqueHostPorts(c, hostPorts, cp)...)
	}
	for i := range s.Containers {
		c := &s.Containers[i]
		cp := p.Child("containers").Index(i)
		errs = append(errs, validateContainer(c, volumes, names, cp)...)
		if c.RestartPolicy != nil {
			errs = append(errs, field.Forbidden(cp.Child("restartPolicy"), "may not be set for non-init containers"))
		}
		errs = append(errs, uniqueHostPorts(c, hostPorts, cp)...)
	}
	for i := range s.EphemeralContainers {
		ec := &s.EphemeralContainers[i]
		cp := p.Child("ephemeralContainers").Index(i)
		c := (*corev1.Container)(&ec.EphemeralContainerCommon)
		errs = append(errs, validateContainer(c, volumes, names, cp)...)
		for _, f := range []struct {
			name string
			set  bool
		}{{"ports", len(c.Ports) > 0}, {"livenessProbe", c.LivenessProbe != nil}, {"readinessProbe", c.ReadinessProbe != nil},
			{"startupProbe", c.StartupProbe != nil}, {"lifecycle", c.Lifecycle != nil}} {
			if f.set {
				errs = append(errs, field.Forbidden(cp.Child(f.name), "cannot be set for an Ephemeral Container"))
			}
		}
		if ec.TargetContainerName != "" && !containerNamed(s, ec.TargetContainerName) {
			errs = append(errs, field.NotFound(cp.Child("targetContainerName"), ec.TargetContainerName))
		}
	}
	return errs
}

func containerNamed(s *corev1.PodSpec, name string) bool {
	for _, c := range append(append([]corev1.Container{}, s.InitContainers...), s.Containers...) {
		if c.Name == name {
			return true
		}
	}
	return false
}

// uniqueHostPorts rejects two containers binding one host port.
func uniqueHostPorts(c *corev1.Container, seen sets.Set[string], cp *field.Path) field.ErrorList {
	var errs field.ErrorList
	for j, port := range c.Ports {
		if port.HostPort == 0 {
			continue
		}
		key := fmt.Sprintf("%s/%s/%d", port.Protocol, port.HostIP, port.HostPort)
		if seen.Has(key) {
			errs = append(errs, field.Duplicate(cp.Child("ports").Index(j).Child("hostPort"), key))
		}
		seen.Insert(key)
	}
	return errs
}

var pullPolicies = []corev1.PullPolicy{corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever}

func validateContainer(c *corev1.Container, volumes map[string]corev1.VolumeSource, names sets.Set[string], p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if c.Name == "" {
		errs = append(errs, field.Required(p.Child("name"), ""))
	} else {
		errs = append(errs, dnsLabel(c.Name, p.Child("name"))...)
		if names.Has(c.Name) {
			errs = append(errs, field.Duplicate(p.Child("name"), c.Name))
		}
		names.Insert(c.Name)
	}
	if c.Image == "" {
		errs = append(errs, field.Required(p.Child("image"), ""))
	} else if c.Image != strings.TrimSpace(c.Image) {
		errs = append(errs, field.Invalid(p.Child("image"), c.Image, "must not have leading or trailing whitespace"))
	}
	errs = append(errs, oneOf(c.ImagePullPolicy, p.Child("imagePullPolicy"), pullPolicies...)...)
	errs = append(errs, oneOf(c.TerminationMessagePolicy, p.Child("terminationMessagePolicy"),
		corev1.TerminationMessageReadFile, corev1.TerminationMessageFallbackToLogsOnError)...)
	errs = append(errs, validateContainerPorts(c.Ports, p.Child("ports"))...)
	errs = append(errs, validateEnv(c.Env, p.Child("env"))...)
	errs = append(errs, validateEnvFrom(c.EnvFrom, p.Child("envFrom"))...)
	errs = append(errs, validateVolumeMounts(c, volumes, p)...)
	errs = append(errs, validateResources(&c.Resources, p.Child("resources"))...)
	errs = append(errs, validateProbe(c.LivenessProbe, p.Child("livenessProbe"))...)
	errs = append(errs, validateProbe(c.ReadinessProbe, p.Child("readinessProbe"))...)
	errs = append(errs, validateProbe(c.StartupProbe, p.Child("startupProbe"))...)
	if c.LivenessProbe != nil && c.LivenessProbe.SuccessThreshold != 1 {
		errs = append(errs, field.Invalid(p.Child("livenessProbe", "successThreshold"), c.LivenessProbe.SuccessThreshold, "must be 1"))
	}
	if c.StartupProbe != nil && c.StartupProbe.SuccessThreshold != 1 {
		errs = append(errs, field.Invalid(p.Child("startupProbe", "successThreshold"), c.StartupProbe.SuccessThreshold, "must be 1"))
	}
	if c.ReadinessProbe != nil && c.ReadinessProbe.TerminationGracePeriodSeconds != nil {
		errs = append(errs, field.Invalid(p.Child("readinessProbe", "terminationGracePeriodSeconds"),
			*c.ReadinessProbe.TerminationGracePeriodSeconds, "must not be set for readinessProbes"))
	}
	if c.Lifecycle != nil {
		errs = append(errs, validateLifecycleHandler(c.Lifecycle.PostStart, p.Child("lifecycle", "postStart"))...)
		errs = append(errs, validateLifecycleHandler(c.Lifecycle.PreStop, p.Child("lifecycle", "preStop"))...)
	}
	if sc := c.SecurityContext; sc != nil {
		scp := p.Child("securityContext")
		if sc.Privileged != nil && *sc.Privileged && sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
			errs = append(errs, field.Invalid(scp, sc, "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"))
		}
		errs = append(errs, validateIDs(sc.RunAsUser, sc.RunAsGroup, scp)...)
	}
	return errs
}

func validateContainerPorts(ports []corev1.ContainerPort, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := sets.New[string]()
	for i, port := range ports {
		pp := p.Index(i)
		if port.Name != "" {
			errs = append(errs, msgs(pp.Child("name"), port.Name, validation.IsValidPortName(port.Name))...)
			if names.Has(port.Name) {
				errs = append(errs, field.Duplicate(pp.Child("name"), port.Name))
			}
			names.Insert(port.Name)
		}
		if port.ContainerPort == 0 {
			errs = append(errs, field.Required(pp.Child("containerPort"), ""))
		} else {
			errs = append(errs, portNum(port.ContainerPort, pp.Child("containerPort"))...)
		}
		if port.HostPort != 0 {
			errs = append(errs, portNum(port.HostPort, pp.Child("hostPort"))...)
		}
		errs = append(errs, oneOf(port.Protocol, pp.Child("protocol"), protocols...)...)
		if port.HostIP != "" {
			errs = append(errs, validation.IsValidIP(pp.Child("hostIP"), port.HostIP)...)
		}
	}
	return errs
}

// Field paths the downward API can expose as environment variables.
var envFieldPaths = sets.New("metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
	"spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs")

// Field paths the downward API can expose as files.
var volumeFieldPaths = sets.New("metadata.name", "metadata.namespace", "metadata.uid", "metadata.labels", "metadata.annotations")

var resourceFieldPaths = sets.New("limits.cpu", "limits.memory", "limits.ephemeral-storage",
	"requests.cpu", "requests.memory", "requests.ephemeral-storage")

func validateEnv(env []corev1.EnvVar, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, ev := range env {
		ep := p.Index(i)
		if ev.Name == "" {
			errs = append(errs, field.Required(ep.Child("name"), ""))
		} else {
			errs = append(errs, msgs(ep.Child("name"), ev.Name, validation.IsRelaxedEnvVarName(ev.Name))...)
		}
		errs = append(errs, validateEnvSource(ev, ep.Child("valueFrom"))...)
	}
	return errs
}

func validateEnvSource(ev corev1.EnvVar, p *field.Path) field.ErrorList {
	vf := ev.ValueFrom
	if vf == nil {
		return nil
	}
	var errs field.ErrorList
	n := 0
	if vf.FieldRef != nil {
		n++
		errs = append(errs, validateFieldRef(vf.FieldRef, envFieldPaths, p.Child("fieldRef"))...)
	}
	if vf.ResourceFieldRef != nil {
		n++
		errs = append(errs, validateResourceFieldRef(vf.ResourceFieldRef, false, p.Child("resourceFieldRef"))...)
	}
	if ref := vf.ConfigMapKeyRef; ref != nil {
		n++
		errs = append(errs, validateKeyRef(ref.Name, ref.Key, p.Child("configMapKeyRef"))...)
	}
	if ref := vf.SecretKeyRef; ref != nil {
		n++
		errs = append(errs, validateKeyRef(ref.Name, ref.Key, p.Child("secretKeyRef"))...)
	}
	if ref := vf.FileKeyRef; ref != nil {
		n++
		fp := p.Child("fileKeyRef")
		if ref.VolumeName == "" {
			errs = append(errs, field.Required(fp.Child("volumeName"), ""))
		}
		if ref.Path == "" {
			errs = append(errs, field.Required(fp.Child("path"), ""))
		} else {
			errs = append(errs, localPath(ref.Path, fp.Child("path"))...)
		}
		if ref.Key == "" {
			errs = append(errs, field.Required(fp.Child("key"), ""))
		}
	}
	switch {
	case n == 0:
		errs = append(errs, field.Invalid(p, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"))
	case n > 1:
		errs = append(errs, field.Invalid(p, "", "may not have more than one field specified at a time"))
	}
	if ev.Value != "" {
		errs = append(errs, field.Invalid(p, "", "may not be specified when `value` is not empty"))
	}
	return errs
}

func validateKeyRef(name, key string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if name == "" {
		errs = append(errs, field.Required(p.Child("name"), ""))
	}
	if key == "" {
		errs = append(errs, field.Required(p.Child("key"), ""))
	} else {
		errs = append(errs, msgs(p.Child("key"), key, validation.IsConfigMapKey(key))...)
	}
	return errs
}

// validateFieldRef checks a downward API field reference against the paths
// allowed where it is used.
func validateFieldRef(f *corev1.ObjectFieldSelector, allowed sets.Set[string], p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if f.APIVersion == "" {
		errs = append(errs, field.Required(p.Child("apiVersion"), ""))
	} else if f.APIVersion != "v1" {
		errs = append(errs, field.Invalid(p.Child("apiVersion"), f.APIVersion, "only v1 is supported"))
	}
	fp := p.Child("fieldPath")
	if f.FieldPath == "" {
		return append(errs, field.Required(fp, ""))
	}
	if base, key, ok := splitSubscript(f.FieldPath); ok {
		switch base {
		case "metadata.annotations":
			errs = append(errs, qualifiedName(strings.ToLower(key), fp)...)
		case "metadata.labels":
			errs = append(errs, qualifiedName(key, fp)...)
		default:
			errs = append(errs, field.Invalid(fp, base, "does not support subscript"))
		}
		return errs
	}
	if !allowed.Has(f.FieldPath) {
		errs = append(errs, field.NotSupported(fp, f.FieldPath, sets.List(allowed)))
	}
	return errs
}

// splitSubscript splits "metadata.labels['key']" into its path and key.
func splitSubscript(s string) (string, string, bool) {
	if !strings.HasSuffix(s, "']") {
		return "", "", false
	}
	i := strings.Index(s, "['")
	if i < 0 {
		return "", "", false
	}
	return s[:i], s[i+2 : len(s)-2], true
}

func validateResourceFieldRef(r *corev1.ResourceFieldSelector, needContainer bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if needContainer && r.ContainerName == "" {
		errs = append(errs, field.Required(p.Child("containerName"), ""))
	}
	switch {
	case r.Resource == "":
		errs = append(errs, field.Required(p.Child("resource"), ""))
	case resourceFieldPaths.Has(r.Resource),
		strings.HasPrefix(r.Resource, "limits.hugepages-"), strings.HasPrefix(r.Resource, "requests.hugepages-"):
	default:
		errs = append(errs, field.NotSupported(p.Child("resource"), r.Resource, sets.List(resourceFieldPaths)))
	}
	if r.Divisor.Sign() < 0 {
		errs = append(errs, field.Invalid(p.Child("divisor"), r.Divisor.String(), "must be greater than or equal to 0"))
	}
	return errs
}

func validateEnvFrom(from []corev1.EnvFromSource, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, ef := range from {
		ep := p.Index(i)
		if ef.Prefix != "" {
			errs = append(errs, msgs(ep.Child("prefix"), ef.Prefix, validation.IsRelaxedEnvVarName(ef.Prefix))...)
		}
		n := 0
		if ef.ConfigMapRef != nil {
			n++
			if ef.ConfigMapRef.Name == "" {
				errs = append(errs, field.Required(ep.Child("configMapRef", "name"), ""))
			}
		}
		if ef.SecretRef != nil {
			n++
			if ef.SecretRef.Name == "" {
				errs = append(errs, field.Required(ep.Child("secretRef", "name"), ""))
			}
		}
		switch {
		case n == 0:
			errs = append(errs, field.Invalid(ep, "", "must specify one of: `configMapRef` or `secretRef`"))
		case n > 1:
			errs = append(errs, field.Invalid(ep, "", "may not have more than one field specified at a time"))
		}
	}
	return errs
}
