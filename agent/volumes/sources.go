package volumes

import (
	"context"
	"fmt"
	"os"
	"sort"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/agent/envvars"
)

// defaultFileMode is the mode of projected files when neither the item
// nor the volume says otherwise.
const defaultFileMode os.FileMode = 0o644

// fileMode picks the item mode, else the volume's default mode, else 0644.
func fileMode(item, volumeDefault *int32) os.FileMode {
	switch {
	case item != nil:
		return os.FileMode(*item) & os.ModePerm
	case volumeDefault != nil:
		return os.FileMode(*volumeDefault) & os.ModePerm
	}
	return defaultFileMode
}

// fetcher reads the objects volumes project, in the pod's namespace.
type fetcher struct {
	client kubernetes.Interface
	ns     string
}

// configMap returns the named configMap, or nil without error when it is
// missing and optional.
func (f fetcher) configMap(ctx context.Context, name string, optional bool) (*v1.ConfigMap, error) {
	return envvars.GetConfigMap(ctx, f.client, f.ns, name, optional)
}

// secret is configMap for secrets.
func (f fetcher) secret(ctx context.Context, name string, optional bool) (*v1.Secret, error) {
	return envvars.GetSecret(ctx, f.client, f.ns, name, optional)
}

// configMapData merges a configMap's data and binaryData.
func configMapData(cm *v1.ConfigMap) map[string][]byte {
	if cm == nil {
		return nil
	}
	out := make(map[string][]byte, len(cm.Data)+len(cm.BinaryData))
	for k, v := range cm.Data {
		out[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		out[k] = v
	}
	return out
}

// addKeys projects the keys of a configMap or secret (kind and name are
// for errors) into p: all keys under their own names when items is empty,
// else each item's key at its path. A missing key is an error unless
// optional. data is nil when an optional object is missing.
func addKeys(p payload, kind, name string, data map[string][]byte, items []v1.KeyToPath, defaultMode *int32, optional bool) error {
	if len(items) == 0 {
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if err := validPayloadPath(k); err != nil {
				return fmt.Errorf("%s %q: key %w", kind, name, err)
			}
			p[k] = file{data: data[k], mode: fileMode(nil, defaultMode)}
		}
		return nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if optional {
				continue
			}
			return fmt.Errorf("%s %q has no key %q", kind, name, it.Key)
		}
		if err := validPayloadPath(it.Path); err != nil {
			return fmt.Errorf("%s %q item %q: %w", kind, name, it.Key, err)
		}
		p[it.Path] = file{data: v, mode: fileMode(it.Mode, defaultMode)}
	}
	return nil
}

// addDownwardAPI projects downward API items of pod into p.
func addDownwardAPI(p payload, pod *v1.Pod, items []v1.DownwardAPIVolumeFile, defaultMode *int32, allocatable v1.ResourceList) error {
	for _, it := range items {
		if err := validPayloadPath(it.Path); err != nil {
			return fmt.Errorf("downwardAPI item: %w", err)
		}
		var value string
		switch {
		case it.FieldRef != nil:
			v, err := envvars.PodField(pod, it.FieldRef.FieldPath)
			if err != nil {
				return fmt.Errorf("downwardAPI item %q: %w", it.Path, err)
			}
			value = v
		case it.ResourceFieldRef != nil:
			name := it.ResourceFieldRef.ContainerName
			c := envvars.FindContainer(pod, name)
			if c == nil {
				return fmt.Errorf("downwardAPI item %q: container %q not found in the pod", it.Path, name)
			}
			v, err := envvars.ResourceValue(c, it.ResourceFieldRef, allocatable)
			if err != nil {
				return fmt.Errorf("downwardAPI item %q: %w", it.Path, err)
			}
			value = v
		default:
			return fmt.Errorf("downwardAPI item %q has neither fieldRef nor resourceFieldRef", it.Path)
		}
		p[it.Path] = file{data: []byte(value), mode: fileMode(it.Mode, defaultMode)}
	}
	return nil
}

// apiPayload computes the content of a configMap, secret, downwardAPI or
// projected volume from the current objects.
func apiPayload(ctx context.Context, f fetcher, pod *v1.Pod, src *v1.VolumeSource, allocatable v1.ResourceList) (payload, error) {
	p := payload{}
	switch {
	case src.ConfigMap != nil:
		s := src.ConfigMap
		optional := s.Optional != nil && *s.Optional
		cm, err := f.configMap(ctx, s.Name, optional)
		if err != nil {
			return nil, err
		}
		return p, addKeys(p, "configmap", s.Name, configMapData(cm), s.Items, s.DefaultMode, optional)
	case src.Secret != nil:
		s := src.Secret
		optional := s.Optional != nil && *s.Optional
		sec, err := f.secret(ctx, s.SecretName, optional)
		if err != nil {
			return nil, err
		}
		var data map[string][]byte
		if sec != nil {
			data = sec.Data
		}
		return p, addKeys(p, "secret", s.SecretName, data, s.Items, s.DefaultMode, optional)
	case src.DownwardAPI != nil:
		return p, addDownwardAPI(p, pod, src.DownwardAPI.Items, src.DownwardAPI.DefaultMode, allocatable)
	case src.Projected != nil:
		return p, addProjected(ctx, p, f, pod, src.Projected, allocatable)
	}
	return nil, fmt.Errorf("not a projected volume source")
}

// addProjected merges the sources of a projected volume into p.
func addProjected(ctx context.Context, p payload, f fetcher, pod *v1.Pod, proj *v1.ProjectedVolumeSource, allocatable v1.ResourceList) error {
	for _, s := range proj.Sources {
		switch {
		case s.ConfigMap != nil:
			optional := s.ConfigMap.Optional != nil && *s.ConfigMap.Optional
			cm, err := f.configMap(ctx, s.ConfigMap.Name, optional)
			if err != nil {
				return err
			}
			if err := addKeys(p, "configmap", s.ConfigMap.Name, configMapData(cm), s.ConfigMap.Items, proj.DefaultMode, optional); err != nil {
				return err
			}
		case s.Secret != nil:
			optional := s.Secret.Optional != nil && *s.Secret.Optional
			sec, err := f.secret(ctx, s.Secret.Name, optional)
			if err != nil {
				return err
			}
			var data map[string][]byte
			if sec != nil {
				data = sec.Data
			}
			if err := addKeys(p, "secret", s.Secret.Name, data, s.Secret.Items, proj.DefaultMode, optional); err != nil {
				return err
			}
		case s.DownwardAPI != nil:
			if err := addDownwardAPI(p, pod, s.DownwardAPI.Items, proj.DefaultMode, allocatable); err != nil {
				return err
			}
		case s.ServiceAccountToken != nil:
			return fmt.Errorf("service account tokens are not available yet in Skiff")
		case s.ClusterTrustBundle != nil:
			return fmt.Errorf("cluster trust bundles are not available yet in Skiff")
		case s.PodCertificate != nil:
			return fmt.Errorf("pod certificates are not available yet in Skiff")
		default:
			return fmt.Errorf("projected volume has a source type Skiff does not know")
		}
	}
	return nil
}
