// Package volumes makes a pod's volumes real on the node: emptyDir
// directories and tmpfs mounts, hostPath checks, configMap, secret,
// downwardAPI and projected content written so that updates are atomic for
// readers, persistent volume claims bound to local or hostPath volumes,
// fsGroup ownership, and the per-container CRI mounts including safe
// subPath bind mounts. Everything of a pod lives under Root/<uid>.
package volumes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Kind is the type of a volume as the agent handles it; for the kinds that
// have a directory of their own it is also the directory's name under
// Root/<uid>/volumes.
type Kind string

const (
	KindEmptyDir    Kind = "empty-dir"
	KindHostPath    Kind = "host-path"
	KindConfigMap   Kind = "configmap"
	KindSecret      Kind = "secret"
	KindDownwardAPI Kind = "downward-api"
	KindProjected   Kind = "projected"
	KindPVC         Kind = "persistent-volume-claim"
)

// Volume is one set-up volume.
type Volume struct {
	Kind Kind
	// Path is the directory (or, for some hostPaths, file) on the host.
	Path string
	// ReadOnly volumes are mounted read-only into every container:
	// configMap, secret, downwardAPI and projected always, a claim when the
	// pod says so.
	ReadOnly bool
}

// PodVolumes are the set-up volumes of a pod, by volume name.
type PodVolumes struct {
	UID  types.UID
	vols map[string]Volume
}

// Get returns the named volume.
func (p *PodVolumes) Get(name string) (Volume, bool) {
	v, ok := p.vols[name]
	return v, ok
}

// Names lists the volume names, sorted.
func (p *PodVolumes) Names() []string {
	names := make([]string, 0, len(p.vols))
	for n := range p.vols {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Manager sets up and tears down the volumes of the pods of one node.
type Manager struct {
	// Root is AGENT_DIR/pods; a pod's volumes are in
	// Root/<uid>/volumes/<kind>/<name> and its subPath binds in
	// Root/<uid>/volume-subpaths/<volume>/<container>/<mount index>.
	Root string
	// Client reads configMaps, secrets, claims and persistent volumes.
	Client kubernetes.Interface
	Log    *slog.Logger
	// NodeAllocatable stands in for unset limits in downward API
	// resourceFieldRefs.
	NodeAllocatable v1.ResourceList
	// Now names the version directories of projected volumes; nil means
	// time.Now.
	Now func() time.Time

	locks sync.Map // types.UID -> *sync.Mutex
	owned sync.Map // ownershipKey -> struct{}: fsGroup applied in this run
}

// VolumeError is a failure to set up one volume; its text is what the
// pod's FailedMount event says.
type VolumeError struct {
	Volume string
	Err    error
}

func (e *VolumeError) Error() string {
	return fmt.Sprintf("MountVolume.SetUp failed for volume %q : %v", e.Volume, e.Err)
}

func (e *VolumeError) Unwrap() error { return e.Err }

func (m *Manager) log() *slog.Logger {
	if m.Log != nil {
		return m.Log
	}
	return slog.Default()
}

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// lock serializes the work on one pod's directory.
func (m *Manager) lock(uid types.UID) func() {
	mu, _ := m.locks.LoadOrStore(uid, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	return mu.(*sync.Mutex).Unlock
}

// podDir returns the pod's directory (resolved, as the mount table shows
// it), creating Root if needed.
func (m *Manager) podDir(uid types.UID) (string, error) {
	s := string(uid)
	if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\x00") {
		return "", fmt.Errorf("invalid pod uid %q", s)
	}
	root, err := realDir(m.Root)
	if err != nil {
		return "", err
	}
	return filepath.Join(root, s), nil
}

// Setup makes every volume of the pod ready on the host. Calling it again
// (after an agent restart, say) reuses what exists and rewrites projected
// content that changed. The error is a *VolumeError for the first volume
// that failed.
func (m *Manager) Setup(ctx context.Context, pod *v1.Pod) (*PodVolumes, error) {
	defer m.lock(pod.UID)()
	dir, err := m.podDir(pod.UID)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "volumes"), 0o750); err != nil {
		return nil, fmt.Errorf("create pod volume dir: %w", err)
	}
	pv := &PodVolumes{UID: pod.UID, vols: map[string]Volume{}}
	for i := range pod.Spec.Volumes {
		vol := &pod.Spec.Volumes[i]
		v, err := m.setupVolume(ctx, dir, pod, vol)
		if err != nil {
			return nil, &VolumeError{Volume: vol.Name, Err: err}
		}
		pv.vols[vol.Name] = v
	}
	return pv, nil
}

// Refresh rewrites the configMap, secret, downwardAPI and projected volumes
// of the pod from their current sources; readers switch to the new content
// at once. Volumes that fail keep their old content; the errors are joined.
// Volumes Setup has not made (or Teardown removed) are left alone.
func (m *Manager) Refresh(ctx context.Context, pod *v1.Pod) error {
	defer m.lock(pod.UID)()
	dir, err := m.podDir(pod.UID)
	if err != nil {
		return err
	}
	var errs []error
	for i := range pod.Spec.Volumes {
		vol := &pod.Spec.Volumes[i]
		kind, ok := apiKind(&vol.VolumeSource)
		if !ok {
			continue
		}
		// Only volumes Setup made: a Refresh racing a Teardown must not
		// bring the pod's directory back.
		if _, err := os.Stat(filepath.Join(dir, "volumes", string(kind), vol.Name)); err != nil {
			continue
		}
		if _, err := m.setupAPIVolume(ctx, dir, pod, vol, kind); err != nil {
			errs = append(errs, &VolumeError{Volume: vol.Name, Err: err})
		}
	}
	return errors.Join(errs...)
}

// apiKind tells the volumes whose content comes from API objects.
func apiKind(src *v1.VolumeSource) (Kind, bool) {
	switch {
	case src.ConfigMap != nil:
		return KindConfigMap, true
	case src.Secret != nil:
		return KindSecret, true
	case src.DownwardAPI != nil:
		return KindDownwardAPI, true
	case src.Projected != nil:
		return KindProjected, true
	}
	return "", false
}

// sourceType names the volume type set in src, as the API spells it.
func sourceType(src *v1.VolumeSource) string {
	raw, err := json.Marshal(src)
	if err != nil {
		return "unknown"
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || len(fields) == 0 {
		return "unknown"
	}
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	return names[0]
}

func (m *Manager) setupVolume(ctx context.Context, podDir string, pod *v1.Pod, vol *v1.Volume) (Volume, error) {
	src := &vol.VolumeSource
	if kind, ok := apiKind(src); ok {
		return m.setupAPIVolume(ctx, podDir, pod, vol, kind)
	}
	fsGroup, policy, hasFSGroup := podFSGroup(pod)
	switch {
	case src.EmptyDir != nil:
		dir := filepath.Join(podDir, "volumes", string(KindEmptyDir), vol.Name)
		if err := setupEmptyDir(dir, src.EmptyDir); err != nil {
			return Volume{}, err
		}
		if hasFSGroup {
			if err := m.ownOnce(pod.UID, vol.Name, dir, fsGroup, policy); err != nil {
				return Volume{}, err
			}
		}
		return Volume{Kind: KindEmptyDir, Path: dir}, nil
	case src.HostPath != nil:
		if err := checkHostPath(src.HostPath.Path, src.HostPath.Type); err != nil {
			return Volume{}, err
		}
		return Volume{Kind: KindHostPath, Path: src.HostPath.Path}, nil
	case src.PersistentVolumeClaim != nil:
		path, err := fetcher{client: m.Client, ns: pod.Namespace}.claimPath(ctx, src.PersistentVolumeClaim.ClaimName)
		if err != nil {
			return Volume{}, err
		}
		ro := src.PersistentVolumeClaim.ReadOnly
		if hasFSGroup && !ro {
			if err := m.ownOnce(pod.UID, vol.Name, path, fsGroup, policy); err != nil {
				return Volume{}, err
			}
		}
		return Volume{Kind: KindPVC, Path: path, ReadOnly: ro}, nil
	}
	return Volume{}, fmt.Errorf("volume type %s is not supported by Skiff", sourceType(src))
}

// ownershipKey identifies one application of fsGroup to a volume.
type ownershipKey struct {
	uid     types.UID
	volume  string
	fsGroup int64
	policy  v1.PodFSGroupChangePolicy
}

// ownOnce applies fsGroup to a writable volume the first time Setup sees
// it with this group and policy in this agent run; later Setups (a pod
// worker may call Setup on every sync) skip the walk, as the kubelet only
// sets ownership when it mounts.
func (m *Manager) ownOnce(uid types.UID, volume, path string, fsGroup int64, policy *v1.PodFSGroupChangePolicy) error {
	key := ownershipKey{uid: uid, volume: volume, fsGroup: fsGroup}
	if policy != nil {
		key.policy = *policy
	}
	if _, done := m.owned.Load(key); done {
		return nil
	}
	if err := applyOwnership(path, fsGroup, false, policy); err != nil {
		return err
	}
	m.owned.Store(key, struct{}{})
	return nil
}

// setupEmptyDir makes an emptyDir's directory (a tmpfs for medium Memory),
// world-writable as Kubernetes makes it.
func setupEmptyDir(dir string, ed *v1.EmptyDirVolumeSource) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("create emptyDir: %w", err)
	}
	switch ed.Medium {
	case v1.StorageMediumDefault:
	case v1.StorageMediumMemory:
		var size int64
		if ed.SizeLimit != nil {
			size = ed.SizeLimit.Value()
		}
		if err := mountTmpfs(dir, size); err != nil {
			return err
		}
	default:
		return fmt.Errorf("emptyDir medium %q is not supported by Skiff", ed.Medium)
	}
	return ensurePerm(dir, 0o777)
}

// ensurePerm sets the permission bits of path, keeping setgid and sticky.
func ensurePerm(path string, perm os.FileMode) error {
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	if info.Mode().Perm() == perm {
		return nil
	}
	if err := os.Chmod(path, info.Mode()&specialBits|perm); err != nil {
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	return nil
}

// setupAPIVolume writes a configMap, secret, downwardAPI or projected
// volume. Secret and projected volumes (which may hold secrets) are on a
// tmpfs so their content never touches the disk.
func (m *Manager) setupAPIVolume(ctx context.Context, podDir string, pod *v1.Pod, vol *v1.Volume, kind Kind) (Volume, error) {
	dir := filepath.Join(podDir, "volumes", string(kind), vol.Name)
	v := Volume{Kind: kind, Path: dir, ReadOnly: true}
	p, err := apiPayload(ctx, fetcher{client: m.Client, ns: pod.Namespace}, pod, &vol.VolumeSource, m.NodeAllocatable)
	if err != nil {
		return v, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return v, fmt.Errorf("create volume dir: %w", err)
	}
	if kind == KindSecret || kind == KindProjected {
		if err := mountTmpfs(dir, 0); err != nil {
			return v, err
		}
	}
	if err := ensurePerm(dir, 0o777); err != nil {
		return v, err
	}
	gid := -1
	if fsGroup, _, ok := podFSGroup(pod); ok {
		gid = int(fsGroup)
		for path, f := range p {
			p[path] = file{data: f.data, mode: fsGroupMode(f.mode, false, true)}
		}
		if err := setGroup(dir, fs.ModeDir, fsGroup, true); err != nil {
			return v, fmt.Errorf("fsGroup on %s: %w", dir, err)
		}
	}
	w := &atomicWriter{dir: dir, now: m.now, gid: gid}
	changed, err := w.write(p)
	if err != nil {
		return v, fmt.Errorf("write volume content: %w", err)
	}
	if changed {
		m.log().Debug("volume content updated", "pod", pod.Namespace+"/"+pod.Name, "volume", vol.Name, "files", len(p))
	}
	return v, nil
}

// Teardown unmounts and removes everything of the pod: tmpfs mounts,
// subPath binds and directories. It refuses to remove anything while a
// mount is left below the pod's directory. Tearing down an absent pod is
// not an error.
func (m *Manager) Teardown(podUID types.UID) error {
	unlock := m.lock(podUID)
	defer unlock()
	dir, err := m.podDir(podUID)
	if err != nil {
		return err
	}
	if err := unmountAllUnder(dir); err != nil {
		return fmt.Errorf("teardown pod %s: %w", podUID, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("teardown pod %s: %w", podUID, err)
	}
	m.owned.Range(func(k, _ any) bool {
		if k.(ownershipKey).uid == podUID {
			m.owned.Delete(k)
		}
		return true
	})
	m.locks.Delete(podUID)
	return nil
}

// MakeRootShared makes Root a shared mount, bind-mounting it onto itself
// first when it is not a mount point of its own. Volume mounts with
// mountPropagation HostToContainer or Bidirectional need their source on a
// shared mount (containerd refuses them otherwise); call it once at agent
// start. It does nothing when Root already is on a shared mount.
func (m *Manager) MakeRootShared() error {
	root, err := realDir(m.Root)
	if err != nil {
		return err
	}
	entries, err := readMountInfo()
	if err != nil {
		return err
	}
	e, ok := containingMount(entries, root)
	if ok && e.shared() {
		return nil
	}
	if !ok || e.MountPoint != root {
		if err := unix.Mount(root, root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s onto itself: %w", root, err)
		}
	}
	if err := unix.Mount("", root, "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make %s shared: %w", root, err)
	}
	return nil
}

// PodDirs lists the UIDs of the pods that have a directory under Root.
func (m *Manager) PodDirs() ([]types.UID, error) {
	entries, err := os.ReadDir(m.Root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list pod dirs: %w", err)
	}
	var out []types.UID
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, types.UID(e.Name()))
		}
	}
	return out, nil
}
