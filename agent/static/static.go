// Package static runs static pods: pod manifests in a directory on the
// node (DATA_DIR/manifests by default), which the agent runs without
// anyone creating them through the API. Each one is mirrored to the API as
// a pod named NAME-NODE, bound to the node and owned by the Node object,
// with the kubelet's config annotations; the agent's pod manager then runs
// the mirror like any pod. Editing a manifest replaces its pod, removing
// the file deletes it, and a mirror pod deleted through the API comes back.
//
// Unlike the kubelet, Skiff runs a static pod through its mirror, so a
// static pod starts only while the API server is reachable.
package static

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
)

// Annotations the kubelet puts on static pods' mirrors.
const (
	AnnotationSource = "kubernetes.io/config.source"
	AnnotationHash   = "kubernetes.io/config.hash"
	AnnotationMirror = "kubernetes.io/config.mirror"
)

// Syncer mirrors the manifests of Dir to the API.
type Syncer struct {
	Dir      string
	NodeName string
	NodeUID  types.UID
	Client   kubernetes.Interface
	Log      *slog.Logger
	// Period is how often the directory is read; default 2s.
	Period time.Duration

	// idle is set once a pass found no manifests and no mirrors: until a
	// manifest appears there is nothing to ask the API.
	idle bool
}

// manifest is one static pod read from a file.
type manifest struct {
	file string
	pod  *corev1.Pod
	hash string
}

// Run syncs until ctx ends.
func (s *Syncer) Run(ctx context.Context) error {
	if s.Log == nil {
		s.Log = slog.Default()
	}
	if s.Period == 0 {
		s.Period = 2 * time.Second
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("static pods: %w", err)
	}
	t := time.NewTicker(s.Period)
	defer t.Stop()
	for {
		if err := s.sync(ctx); err != nil && ctx.Err() == nil {
			s.Log.Warn("static pods", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// read parses every manifest in the directory; files that do not parse
// are reported and skipped.
func (s *Syncer) read() map[string]manifest {
	out := map[string]manifest{}
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		return out
	}
	names := []string{}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, ".") {
			continue
		}
		if ext := filepath.Ext(n); ext == ".yaml" || ext == ".yml" || ext == ".json" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(s.Dir, n))
		if err != nil {
			continue
		}
		pod, err := decodePod(data)
		if err != nil {
			s.Log.Warn("static pod manifest skipped", "file", n, "err", err)
			continue
		}
		m := s.mirror(pod, data)
		if _, dup := out[m.pod.Namespace+"/"+m.pod.Name]; dup {
			s.Log.Warn("static pod manifest skipped: duplicate pod name", "file", n, "pod", m.pod.Name)
			continue
		}
		m.file = n
		out[m.pod.Namespace+"/"+m.pod.Name] = m
	}
	return out
}

func decodePod(data []byte) (*corev1.Pod, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	pod := &corev1.Pod{}
	if err := dec.Decode(pod); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty manifest")
		}
		return nil, err
	}
	if pod.Kind != "" && pod.Kind != "Pod" {
		return nil, fmt.Errorf("kind %q is not Pod", pod.Kind)
	}
	if pod.Name == "" {
		return nil, errors.New("the pod has no name")
	}
	return pod, nil
}

// mirror turns a manifest's pod into its mirror pod.
func (s *Syncer) mirror(pod *corev1.Pod, data []byte) manifest {
	sum := sha256.Sum256(append([]byte(s.NodeName+"\n"), data...))
	hash := hex.EncodeToString(sum[:16])
	p := pod.DeepCopy()
	if p.Namespace == "" {
		p.Namespace = metav1.NamespaceDefault
	}
	p.Name = p.Name + "-" + s.NodeName
	p.ResourceVersion, p.UID = "", ""
	p.Spec.NodeName = s.NodeName
	if p.Annotations == nil {
		p.Annotations = map[string]string{}
	}
	p.Annotations[AnnotationSource] = "file"
	p.Annotations[AnnotationHash] = hash
	p.Annotations[AnnotationMirror] = hash
	if s.NodeUID != "" {
		ctl := true
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: s.NodeName, UID: s.NodeUID, Controller: &ctl}}
	}
	p.Status = corev1.PodStatus{}
	return manifest{pod: p, hash: hash}
}

// sync makes the mirror pods match the manifests.
func (s *Syncer) sync(ctx context.Context) error {
	want := s.read()
	if len(want) == 0 && s.idle {
		return nil
	}
	list, err := s.Client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", s.NodeName).String(),
	})
	if err != nil {
		return err
	}
	have := map[string]*corev1.Pod{}
	for i := range list.Items {
		p := &list.Items[i]
		if _, ok := p.Annotations[AnnotationMirror]; ok {
			have[p.Namespace+"/"+p.Name] = p
		}
	}
	var errs []error
	for key, m := range want {
		cur := have[key]
		if cur != nil && cur.Annotations[AnnotationHash] == m.hash {
			continue
		}
		if cur != nil {
			if cur.DeletionTimestamp == nil {
				s.Log.Info("static pod changed, replacing it", "pod", key, "file", m.file)
				if err := s.delete(ctx, cur); err != nil {
					errs = append(errs, err)
				}
			}
			continue // created again once the old one is gone
		}
		if _, err := s.Client.CoreV1().Pods(m.pod.Namespace).Create(ctx, m.pod, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			errs = append(errs, fmt.Errorf("mirror pod %s (%s): %w", key, m.file, err))
			continue
		}
		s.Log.Info("static pod mirrored", "pod", key, "file", m.file)
	}
	s.idle = len(want) == 0 && len(have) == 0
	for key, p := range have {
		if _, ok := want[key]; !ok && p.DeletionTimestamp == nil {
			s.Log.Info("static pod manifest removed, deleting its pod", "pod", key)
			if err := s.delete(ctx, p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (s *Syncer) delete(ctx context.Context, p *corev1.Pod) error {
	err := s.Client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &p.UID}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("deleting mirror pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	return nil
}
