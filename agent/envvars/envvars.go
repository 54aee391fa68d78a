// Package envvars computes a container's environment the way a kubelet
// does: service link variables, envFrom, env with $(VAR) expansion and the
// configMap, secret, downward API and resource sources. It also holds the
// downward API field and resource resolution that agent/volumes shares.
package envvars

import (
	"context"
	"fmt"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
)

// InvalidEnvReason is the event reason for envFrom keys that were skipped
// because they are not valid variable names.
const InvalidEnvReason = "InvalidEnvironmentVariableNames"

// EnvVar is one variable of a container's environment.
type EnvVar struct {
	Name, Value string
}

// Map turns an environment into a name -> value map (later entries win).
func Map(env []EnvVar) map[string]string {
	m := make(map[string]string, len(env))
	for _, e := range env {
		m[e.Name] = e.Value
	}
	return m
}

// Input is everything Build needs to know about a container.
type Input struct {
	Pod       *v1.Pod
	Container *v1.Container
	// Client reads the configMaps and secrets env and envFrom refer to.
	Client kubernetes.Interface
	// Services are the services of the pod's namespace and
	// default/kubernetes; see ServiceEnv for which are used.
	Services []*v1.Service
	NodeName string
	HostIP   string
	// HostIPs, when set, is status.hostIPs; otherwise the pod's status or
	// HostIP is used.
	HostIPs []string
	// PodIPs are the sandbox's IPs; the first is status.podIP. When empty
	// the pod's status is used.
	PodIPs []string
	// NodeAllocatable stands in for unset limits in resourceFieldRef.
	NodeAllocatable v1.ResourceList
	// Warn, when set, receives the non-fatal problems (envFrom keys that
	// are not valid variable names and were skipped); report them as
	// events with reason InvalidEnvReason.
	Warn func(message string)
}

// ordered is an environment under construction: a name keeps the position
// of its first definition and the value of its last.
type ordered struct {
	names []string
	vals  map[string]string
}

func (o *ordered) set(name, value string) {
	if o.vals == nil {
		o.vals = map[string]string{}
	}
	if _, ok := o.vals[name]; !ok {
		o.names = append(o.names, name)
	}
	o.vals[name] = value
}

// Build returns the container's environment: service variables first, then
// envFrom in order, then env in order, each name once with the value of its
// last definition. An env value's $(VAR) references see the variables from
// envFrom and the env entries declared before it, then the service
// variables. Errors name the missing configMap, secret or key.
func Build(ctx context.Context, in Input) ([]EnvVar, error) {
	pod, c := in.Pod, in.Container
	if pod == nil || c == nil {
		return nil, fmt.Errorf("envvars: pod and container are required")
	}
	links := pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks
	services := ServiceEnv(pod.Namespace, links, in.Services)
	serviceMap := Map(services)

	src := &sources{client: in.Client, ns: pod.Namespace, cms: map[string]*v1.ConfigMap{}, secrets: map[string]*v1.Secret{}}
	var own ordered // envFrom and env: what $(VAR) sees before services
	for _, from := range c.EnvFrom {
		if err := src.envFrom(ctx, from, &own, in.Warn); err != nil {
			return nil, err
		}
	}
	for i := range c.Env {
		e := &c.Env[i]
		value := e.Value
		switch {
		case value != "":
			value = ExpandFunc(value, func(name string) (string, bool) {
				if v, ok := own.vals[name]; ok {
					return v, true
				}
				v, ok := serviceMap[name]
				return v, ok
			})
		case e.ValueFrom != nil:
			v, set, err := in.valueFrom(ctx, src, e)
			if err != nil {
				return nil, err
			}
			if !set {
				continue
			}
			value = v
		}
		own.set(e.Name, value)
	}

	var all ordered
	for _, s := range services {
		all.set(s.Name, s.Value)
	}
	for _, n := range own.names {
		all.set(n, own.vals[n])
	}
	out := make([]EnvVar, 0, len(all.names))
	for _, n := range all.names {
		out = append(out, EnvVar{Name: n, Value: all.vals[n]})
	}
	return out, nil
}

// sources fetches each configMap and secret once per Build.
type sources struct {
	client  kubernetes.Interface
	ns      string
	cms     map[string]*v1.ConfigMap
	secrets map[string]*v1.Secret
}

// configMap returns the named configMap, or nil without error when it does
// not exist and optional is set.
func (s *sources) configMap(ctx context.Context, name string, optional bool) (*v1.ConfigMap, error) {
	if cm, ok := s.cms[name]; ok {
		return cm, nil
	}
	cm, err := GetConfigMap(ctx, s.client, s.ns, name, optional)
	if err == nil && cm != nil {
		s.cms[name] = cm
	}
	return cm, err
}

// secret is configMap for secrets.
func (s *sources) secret(ctx context.Context, name string, optional bool) (*v1.Secret, error) {
	if sec, ok := s.secrets[name]; ok {
		return sec, nil
	}
	sec, err := GetSecret(ctx, s.client, s.ns, name, optional)
	if err == nil && sec != nil {
		s.secrets[name] = sec
	}
	return sec, err
}

// GetConfigMap reads a configMap of namespace ns. A missing one is an
// error with kube's wording, or (nil, nil) when optional.
func GetConfigMap(ctx context.Context, client kubernetes.Interface, ns, name string, optional bool) (*v1.ConfigMap, error) {
	if client == nil {
		return nil, fmt.Errorf("cannot read configmap %q: no API client", name)
	}
	cm, err := client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	return found(cm, err, "configmap", ns, name, optional)
}

// GetSecret is GetConfigMap for secrets.
func GetSecret(ctx context.Context, client kubernetes.Interface, ns, name string, optional bool) (*v1.Secret, error) {
	if client == nil {
		return nil, fmt.Errorf("cannot read secret %q: no API client", name)
	}
	sec, err := client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	return found(sec, err, "secret", ns, name, optional)
}

// found turns a read's not-found into kube's message, or nothing when the
// source is optional.
func found[T any](obj *T, err error, kind, ns, name string, optional bool) (*T, error) {
	switch {
	case apierrors.IsNotFound(err):
		if optional {
			return nil, nil
		}
		return nil, fmt.Errorf("%s %q not found", kind, name)
	case err != nil:
		return nil, fmt.Errorf("get %s %s/%s: %w", kind, ns, name, err)
	}
	return obj, nil
}

// envFrom adds every key of a configMap or secret, prefixed, to env; keys
// that are not valid variable names are skipped and reported through warn.
func (s *sources) envFrom(ctx context.Context, from v1.EnvFromSource, env *ordered, warn func(string)) error {
	var (
		kind, name string
		data       map[string]string
	)
	switch {
	case from.ConfigMapRef != nil:
		kind, name = "configMap", from.ConfigMapRef.Name
		cm, err := s.configMap(ctx, name, isTrue(from.ConfigMapRef.Optional))
		if err != nil || cm == nil {
			return err
		}
		data = cm.Data
	case from.SecretRef != nil:
		kind, name = "secret", from.SecretRef.Name
		sec, err := s.secret(ctx, name, isTrue(from.SecretRef.Optional))
		if err != nil || sec == nil {
			return err
		}
		data = make(map[string]string, len(sec.Data))
		for k, v := range sec.Data {
			data[k] = string(v)
		}
	default:
		return fmt.Errorf("envFrom entry has neither configMapRef nor secretRef")
	}
	var invalid []string
	for _, k := range sortedKeys(data) {
		full := from.Prefix + k
		if errs := validation.IsRelaxedEnvVarName(full); len(errs) > 0 {
			invalid = append(invalid, full)
			continue
		}
		env.set(full, data[k])
	}
	if len(invalid) > 0 && warn != nil {
		warn(fmt.Sprintf("Keys [%s] from the EnvFrom %s %s/%s were skipped since they are not valid environment variable names.",
			strings.Join(invalid, ", "), kind, s.ns, name))
	}
	return nil
}

// valueFrom resolves an env entry's source. set is false when an optional
// source is missing: the variable is then left out altogether.
func (in *Input) valueFrom(ctx context.Context, src *sources, e *v1.EnvVar) (value string, set bool, err error) {
	vf := e.ValueFrom
	switch {
	case vf.ConfigMapKeyRef != nil:
		ref := vf.ConfigMapKeyRef
		optional := isTrue(ref.Optional)
		cm, err := src.configMap(ctx, ref.Name, optional)
		if err != nil || cm == nil {
			return "", false, err
		}
		v, ok := cm.Data[ref.Key]
		if !ok {
			if optional {
				return "", false, nil
			}
			return "", false, fmt.Errorf("couldn't find key %s in ConfigMap %s/%s", ref.Key, src.ns, ref.Name)
		}
		return v, true, nil
	case vf.SecretKeyRef != nil:
		ref := vf.SecretKeyRef
		optional := isTrue(ref.Optional)
		sec, err := src.secret(ctx, ref.Name, optional)
		if err != nil || sec == nil {
			return "", false, err
		}
		v, ok := sec.Data[ref.Key]
		if !ok {
			if optional {
				return "", false, nil
			}
			return "", false, fmt.Errorf("couldn't find key %s in Secret %s/%s", ref.Key, src.ns, ref.Name)
		}
		return string(v), true, nil
	case vf.FieldRef != nil:
		v, err := in.fieldValue(vf.FieldRef.FieldPath)
		if err != nil {
			return "", false, fmt.Errorf("env %s: %w", e.Name, err)
		}
		return v, true, nil
	case vf.ResourceFieldRef != nil:
		c := in.Container
		if n := vf.ResourceFieldRef.ContainerName; n != "" {
			if c = FindContainer(in.Pod, n); c == nil {
				return "", false, fmt.Errorf("env %s: container %q not found in the pod", e.Name, n)
			}
		}
		v, err := ResourceValue(c, vf.ResourceFieldRef, in.NodeAllocatable)
		if err != nil {
			return "", false, fmt.Errorf("env %s: %w", e.Name, err)
		}
		return v, true, nil
	case vf.FileKeyRef != nil:
		return "", false, fmt.Errorf("env %s: fileKeyRef is not supported by Skiff", e.Name)
	}
	return "", false, fmt.Errorf("env %s: valueFrom names no source", e.Name)
}

// fieldValue resolves a fieldRef path for an env var: the pod metadata
// paths of PodField plus the node and address fields only known at run
// time.
func (in *Input) fieldValue(path string) (string, error) {
	pod := in.Pod
	switch path {
	case "spec.nodeName":
		if in.NodeName != "" {
			return in.NodeName, nil
		}
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP":
		if ips := in.hostIPs(); len(ips) > 0 {
			return ips[0], nil
		}
		return "", nil
	case "status.hostIPs":
		return strings.Join(in.hostIPs(), ","), nil
	case "status.podIP":
		if ips := in.podIPs(); len(ips) > 0 {
			return ips[0], nil
		}
		return "", nil
	case "status.podIPs":
		return strings.Join(in.podIPs(), ","), nil
	}
	return PodField(pod, path)
}

func (in *Input) hostIPs() []string {
	if len(in.HostIPs) > 0 {
		return in.HostIPs
	}
	if in.HostIP != "" {
		return []string{in.HostIP}
	}
	var ips []string
	for _, ip := range in.Pod.Status.HostIPs {
		ips = append(ips, ip.IP)
	}
	if len(ips) == 0 && in.Pod.Status.HostIP != "" {
		ips = []string{in.Pod.Status.HostIP}
	}
	return ips
}

func (in *Input) podIPs() []string {
	if len(in.PodIPs) > 0 {
		return in.PodIPs
	}
	var ips []string
	for _, ip := range in.Pod.Status.PodIPs {
		ips = append(ips, ip.IP)
	}
	if len(ips) == 0 && in.Pod.Status.PodIP != "" {
		ips = []string{in.Pod.Status.PodIP}
	}
	return ips
}

func isTrue(b *bool) bool { return b != nil && *b }

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
