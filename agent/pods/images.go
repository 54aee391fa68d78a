package pods

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/agent/images"
)

// ensureImage makes the container's image present per its pull policy and
// returns the image reference to create the container from. On failure
// the container waits with the kubelet's reasons (ErrImagePull,
// ImagePullBackOff, ErrImageNeverPull).
func (m *Manager) ensureImage(ctx context.Context, w *worker, pod *corev1.Pod, c *corev1.Container) (string, error) {
	image := c.Image
	if image == "" {
		w.setWaiting(c.Name, "InvalidImageName", "the container has no image")
		return "", fmt.Errorf("no image")
	}
	policy := c.ImagePullPolicy
	if policy == "" {
		policy = corev1.PullIfNotPresent
		if strings.HasSuffix(images.NormalizeRef(image), ":latest") {
			policy = corev1.PullAlways
		}
	}
	st, err := m.cfg.Images.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: image}})
	if err != nil {
		w.setWaiting(c.Name, "InvalidImageName", err.Error())
		return "", err
	}
	present := st.Image != nil
	if !present && m.cfg.RestoreLocal != nil && m.cfg.LocalImage(image) && m.cfg.RestoreLocal(ctx, image) {
		m.log.Warn("re-imported a local image the runtime had lost", "image", image)
		if st, err = m.cfg.Images.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: image}}); err == nil {
			present = st.Image != nil
		}
	}
	switch {
	case policy == corev1.PullNever && !present:
		msg := fmt.Sprintf("Container image %q is not present with pull policy of Never", image)
		w.setWaiting(c.Name, "ErrImageNeverPull", msg)
		m.events.Event(pod, corev1.EventTypeWarning, "ErrImageNeverPull", msg)
		return "", fmt.Errorf("%s", msg)
	case present && (policy != corev1.PullAlways || m.cfg.LocalImage(image)):
		m.events.Event(pod, corev1.EventTypeNormal, "Pulled", fmt.Sprintf("Container image %q already present on machine", image))
		return st.Image.Id, nil
	}
	key := string(pod.UID) + "/image/" + image
	now := m.clock.Now()
	if wait, _, _ := m.backoff.waiting(key, now); wait {
		msg := fmt.Sprintf("Back-off pulling image %q", image)
		w.setWaiting(c.Name, "ImagePullBackOff", msg)
		m.events.Event(pod, corev1.EventTypeNormal, "BackOff", msg)
		return "", fmt.Errorf("%s", msg)
	}
	m.events.Event(pod, corev1.EventTypeNormal, "Pulling", fmt.Sprintf("Pulling image %q", image))
	auths, err := m.pullAuths(ctx, pod, image)
	if err != nil {
		m.log.Warn("reading image pull secrets", "pod", pod.Namespace+"/"+pod.Name, "err", err)
	}
	start := m.clock.Now()
	var ref string
	var pullErr error
	if len(auths) == 0 {
		auths = []*runtimeapi.AuthConfig{nil}
	}
	for _, a := range auths {
		resp, err := m.cfg.Images.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: image}, Auth: a})
		if err == nil {
			ref, pullErr = resp.ImageRef, nil
			break
		}
		pullErr = err
	}
	if pullErr != nil {
		m.backoff.failed(key, now)
		msg := fmt.Sprintf("Failed to pull image %q: %v", image, pullErr)
		w.setWaiting(c.Name, "ErrImagePull", msg)
		m.events.Event(pod, corev1.EventTypeWarning, "Failed", msg)
		m.events.Event(pod, corev1.EventTypeWarning, "Failed", "Error: ErrImagePull")
		return "", pullErr
	}
	took := m.clock.Since(start).Round(time.Millisecond)
	m.events.Event(pod, corev1.EventTypeNormal, "Pulled", fmt.Sprintf("Successfully pulled image %q in %s", image, took))
	return ref, nil
}

// registryHost is the registry an image reference names (docker.io when it
// names none).
func registryHost(image string) string {
	first, _, found := strings.Cut(image, "/")
	if !found || !(strings.ContainsAny(first, ".:") || first == "localhost") {
		return "docker.io"
	}
	return first
}

// dockerConfig is the content of a kubernetes.io/dockerconfigjson secret
// (or, without the "auths" wrapper, of a kubernetes.io/dockercfg one).
type dockerConfig struct {
	Auths map[string]dockerAuth `json:"auths"`
}

type dockerAuth struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Auth     string `json:"auth"`
}

// pullAuths returns the credentials of the pod's imagePullSecrets that
// match the image's registry.
func (m *Manager) pullAuths(ctx context.Context, pod *corev1.Pod, image string) ([]*runtimeapi.AuthConfig, error) {
	host := registryHost(image)
	var out []*runtimeapi.AuthConfig
	var firstErr error
	for _, ref := range pod.Spec.ImagePullSecrets {
		s, err := m.cfg.Client.CoreV1().Secrets(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		var cfg dockerConfig
		switch s.Type {
		case corev1.SecretTypeDockerConfigJson:
			err = json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &cfg)
		case corev1.SecretTypeDockercfg:
			err = json.Unmarshal(s.Data[corev1.DockerConfigKey], &cfg.Auths)
		default:
			continue
		}
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("secret %s: %w", ref.Name, err)
			}
			continue
		}
		for reg, a := range cfg.Auths {
			if normalizeRegistry(reg) != host {
				continue
			}
			user, pass := a.Username, a.Password
			if a.Auth != "" && user == "" {
				if raw, err := base64.StdEncoding.DecodeString(a.Auth); err == nil {
					user, pass, _ = strings.Cut(string(raw), ":")
				}
			}
			out = append(out, &runtimeapi.AuthConfig{Username: user, Password: pass})
		}
	}
	return out, firstErr
}

// normalizeRegistry reduces a docker config key ("https://index.docker.io/v1/",
// "registry:5000") to a registry host.
func normalizeRegistry(s string) string {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	s, _, _ = strings.Cut(s, "/")
	switch s {
	case "index.docker.io", "registry-1.docker.io", "docker.io":
		return "docker.io"
	}
	return s
}
