package volumes

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

// requireRoot skips tests that mount things.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mount tests need root")
	}
}

func newManager(t *testing.T, objs ...runtime.Object) (*Manager, *fake.Clientset) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "pods")
	client := fake.NewClientset(objs...)
	m := &Manager{Root: root, Client: client, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	t.Cleanup(func() {
		// Never leave mounts behind, even when a test fails half way.
		if real, err := filepath.EvalSymlinks(root); err == nil {
			if err := unmountAllUnder(real); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	return m, client
}

// mountsBelow returns the mount points at or below dir.
func mountsBelow(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := readMountInfo()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range mountsUnder(entries, dir) {
		out = append(out, e.MountPoint)
	}
	return out
}

func fsType(t *testing.T, path string) string {
	t.Helper()
	entries, err := readMountInfo()
	if err != nil {
		t.Fatal(err)
	}
	e, _ := containingMount(entries, path)
	return e.FSType
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func modeOf(t *testing.T, path string) (os.FileMode, uint32) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Mode(), info.Sys().(*syscall.Stat_t).Gid
}

func volumePod(uid string, vols ...v1.Volume) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: types.UID(uid), Labels: map[string]string{"app": "web"}},
		Spec:       v1.PodSpec{Volumes: vols, Containers: []v1.Container{{Name: "c"}}},
	}
}

func TestSetupTeardown(t *testing.T) {
	requireRoot(t)
	hostDir := filepath.Join(t.TempDir(), "hp")
	localPV := t.TempDir()
	if err := os.WriteFile(filepath.Join(localPV, "keep"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, _ := newManager(t,
		&v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cm"},
			Data: map[string]string{"app.conf": "x=1", "other": "o"}, BinaryData: map[string][]byte{"blob": {0xff, 0}}},
		&v1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "sec"}, Data: map[string][]byte{"pw": []byte("hunter2")}},
		&v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "claim"},
			Spec: v1.PersistentVolumeClaimSpec{VolumeName: "pv1"}, Status: v1.PersistentVolumeClaimStatus{Phase: v1.ClaimBound}},
		&v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv1"},
			Spec: v1.PersistentVolumeSpec{PersistentVolumeSource: v1.PersistentVolumeSource{Local: &v1.LocalVolumeSource{Path: localPV}}}},
	)
	size := resource.MustParse("8Mi")
	pod := volumePod("uid-setup",
		v1.Volume{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
		v1.Volume{Name: "mem", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{Medium: v1.StorageMediumMemory, SizeLimit: &size}}},
		v1.Volume{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
			LocalObjectReference: v1.LocalObjectReference{Name: "cm"},
			Items:                []v1.KeyToPath{{Key: "app.conf", Path: "etc/app.conf", Mode: ptr[int32](0o600)}, {Key: "blob", Path: "blob"}}}}},
		v1.Volume{Name: "sec", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "sec", DefaultMode: ptr[int32](0o400)}}},
		v1.Volume{Name: "info", VolumeSource: v1.VolumeSource{DownwardAPI: &v1.DownwardAPIVolumeSource{Items: []v1.DownwardAPIVolumeFile{
			{Path: "labels", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.labels"}}}}}},
		v1.Volume{Name: "proj", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{Sources: []v1.VolumeProjection{
			{ConfigMap: &v1.ConfigMapProjection{LocalObjectReference: v1.LocalObjectReference{Name: "cm"}, Items: []v1.KeyToPath{{Key: "other", Path: "other"}}}},
			{Secret: &v1.SecretProjection{LocalObjectReference: v1.LocalObjectReference{Name: "sec"}}}}}}},
		v1.Volume{Name: "host", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: hostDir, Type: ptr(v1.HostPathDirectoryOrCreate)}}},
		v1.Volume{Name: "data", VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: "claim", ReadOnly: true}}},
	)
	ctx := context.Background()
	pv, err := m.Setup(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	get := func(name string) Volume {
		v, ok := pv.Get(name)
		if !ok {
			t.Fatalf("volume %s missing", name)
		}
		return v
	}
	podDir, _ := m.podDir(pod.UID)

	if v := get("scratch"); v.Path != filepath.Join(podDir, "volumes/empty-dir/scratch") || v.ReadOnly {
		t.Errorf("scratch = %+v", v)
	}
	if mode, _ := modeOf(t, get("scratch").Path); mode.Perm() != 0o777 {
		t.Errorf("emptyDir mode %v", mode)
	}
	mem := get("mem").Path
	if fsType(t, mem) != "tmpfs" {
		t.Errorf("memory emptyDir is on %s", fsType(t, mem))
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(mem, &sfs); err != nil || int64(sfs.Blocks)*sfs.Bsize != 8<<20 {
		t.Errorf("tmpfs size %d blocks of %d (%v), want 8Mi", sfs.Blocks, sfs.Bsize, err)
	}

	cfg := get("cfg")
	if !cfg.ReadOnly || cfg.Kind != KindConfigMap {
		t.Errorf("cfg = %+v", cfg)
	}
	if got := readFile(t, filepath.Join(cfg.Path, "etc/app.conf")); got != "x=1" {
		t.Errorf("app.conf = %q", got)
	}
	if mode, _ := modeOf(t, filepath.Join(cfg.Path, "etc/app.conf")); mode.Perm() != 0o600 {
		t.Errorf("app.conf mode %v", mode)
	}
	if got := readFile(t, filepath.Join(cfg.Path, "blob")); got != "\xff\x00" {
		t.Errorf("blob = %q", got)
	}
	if link, err := os.Readlink(filepath.Join(cfg.Path, "etc")); err != nil || link != "..data/etc" {
		t.Errorf("etc link = %q, %v", link, err)
	}
	if _, err := os.Lstat(filepath.Join(cfg.Path, "other")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("key not in items was projected: %v", err)
	}

	sec := get("sec").Path
	if fsType(t, sec) != "tmpfs" {
		t.Errorf("secret volume is on %s, want tmpfs", fsType(t, sec))
	}
	if got := readFile(t, filepath.Join(sec, "pw")); got != "hunter2" {
		t.Errorf("pw = %q", got)
	}
	if mode, _ := modeOf(t, filepath.Join(sec, "pw")); mode.Perm() != 0o400 {
		t.Errorf("pw mode %v", mode)
	}
	if got := readFile(t, filepath.Join(get("info").Path, "labels")); got != `app="web"` {
		t.Errorf("labels = %q", got)
	}
	proj := get("proj").Path
	if fsType(t, proj) != "tmpfs" || readFile(t, filepath.Join(proj, "other")) != "o" || readFile(t, filepath.Join(proj, "pw")) != "hunter2" {
		t.Errorf("projected volume wrong (fs %s)", fsType(t, proj))
	}
	if v := get("host"); v.Path != hostDir || v.Kind != KindHostPath {
		t.Errorf("host = %+v", v)
	}
	if v := get("data"); v.Path != localPV || !v.ReadOnly {
		t.Errorf("data = %+v", v)
	}

	// A second Setup (agent restart) reuses everything.
	before := mountsBelow(t, podDir)
	if len(before) != 3 {
		t.Errorf("mounts after setup = %v, want mem, sec, proj", before)
	}
	dataBefore, _ := os.Readlink(filepath.Join(cfg.Path, dataLink))
	if _, err := m.Setup(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if after := mountsBelow(t, podDir); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("second setup changed mounts: %v -> %v", before, after)
	}
	if dataAfter, _ := os.Readlink(filepath.Join(cfg.Path, dataLink)); dataAfter != dataBefore {
		t.Errorf("unchanged content was rewritten: %s -> %s", dataBefore, dataAfter)
	}
	if uids, err := m.PodDirs(); err != nil || len(uids) != 1 || uids[0] != pod.UID {
		t.Errorf("PodDirs = %v, %v", uids, err)
	}

	// A subPath bind into the claim must not let teardown delete its data.
	c := &v1.Container{Name: "c", VolumeMounts: []v1.VolumeMount{{Name: "data", MountPath: "/d", SubPath: "."}}}
	if _, err := m.Mounts(pv, pod, c, nil); err != nil {
		t.Fatal(err)
	}
	if err := m.Teardown(pod.UID); err != nil {
		t.Fatal(err)
	}
	if left := mountsBelow(t, podDir); len(left) != 0 {
		t.Errorf("mounts left after teardown: %v", left)
	}
	if _, err := os.Stat(podDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pod dir still there: %v", err)
	}
	if readFile(t, filepath.Join(localPV, "keep")) != "data" {
		t.Error("teardown touched the claim's data")
	}
	if _, err := os.Stat(hostDir); err != nil {
		t.Errorf("teardown touched the hostPath: %v", err)
	}
	if err := m.Teardown(pod.UID); err != nil {
		t.Errorf("second teardown: %v", err)
	}
	if uids, err := m.PodDirs(); err != nil || len(uids) != 0 {
		t.Errorf("PodDirs after teardown = %v, %v", uids, err)
	}
}

func TestSetupErrors(t *testing.T) {
	requireRoot(t)
	m, _ := newManager(t,
		&v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "x"}, Status: v1.PersistentVolumeClaimStatus{Phase: v1.ClaimPending}},
	)
	cases := []struct {
		src  v1.VolumeSource
		want string
	}{
		{v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "missing"}}},
			`MountVolume.SetUp failed for volume "v" : configmap "missing" not found`},
		{v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "missing"}},
			`MountVolume.SetUp failed for volume "v" : secret "missing" not found`},
		{v1.VolumeSource{NFS: &v1.NFSVolumeSource{Server: "s", Path: "/"}},
			`MountVolume.SetUp failed for volume "v" : volume type nfs is not supported by Skiff`},
		{v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{Sources: []v1.VolumeProjection{{ServiceAccountToken: &v1.ServiceAccountTokenProjection{Path: "t"}}}}},
			`MountVolume.SetUp failed for volume "v" : service account tokens are not available yet in Skiff`},
		{v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: "x"}},
			`MountVolume.SetUp failed for volume "v" : persistentvolumeclaim "x" is not bound`},
		{v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{Medium: v1.StorageMediumHugePages}},
			`MountVolume.SetUp failed for volume "v" : emptyDir medium "HugePages" is not supported by Skiff`},
		{v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: "/nonexistent-skiff", Type: ptr(v1.HostPathDirectory)}},
			`MountVolume.SetUp failed for volume "v" : hostPath type check failed: /nonexistent-skiff is not a directory`},
	}
	for i, c := range cases {
		pod := volumePod("uid-err", v1.Volume{Name: "v", VolumeSource: c.src})
		_, err := m.Setup(context.Background(), pod)
		var ve *VolumeError
		if err == nil || err.Error() != c.want || !errors.As(err, &ve) || ve.Volume != "v" {
			t.Errorf("case %d: err = %v\nwant %s", i, err, c.want)
		}
	}
	if err := m.Teardown("uid-err"); err != nil {
		t.Fatal(err)
	}
}

func TestFSGroupOwnership(t *testing.T) {
	requireRoot(t)
	const gid = 2345
	m, _ := newManager(t,
		&v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cm"}, Data: map[string]string{"a": "A", "b": "B"}},
	)
	pod := volumePod("uid-fsgroup",
		v1.Volume{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
		v1.Volume{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
			LocalObjectReference: v1.LocalObjectReference{Name: "cm"},
			Items:                []v1.KeyToPath{{Key: "a", Path: "sub/a", Mode: ptr[int32](0o400)}, {Key: "b", Path: "b"}}}}},
	)
	pod.Spec.SecurityContext = &v1.PodSecurityContext{FSGroup: ptr[int64](gid)}
	ctx := context.Background()
	pv, err := m.Setup(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	scratch, _ := pv.Get("scratch")
	if mode, g := modeOf(t, scratch.Path); g != gid || mode&os.ModeSetgid == 0 || mode.Perm() != 0o777 {
		t.Errorf("emptyDir root: mode %v gid %d", mode, g)
	}
	cfg, _ := pv.Get("cfg")
	checks := []struct {
		path string
		perm os.FileMode
		dir  bool
	}{
		{"sub/a", 0o440, false},
		{"b", 0o644, false},
		{"sub", 0o755, true},
		{".", 0o777, true},
	}
	for _, c := range checks {
		mode, g := modeOf(t, filepath.Join(cfg.Path, c.path))
		if g != gid || mode.Perm() != c.perm || c.dir && mode&os.ModeSetgid == 0 {
			t.Errorf("configMap %s: mode %v gid %d, want perm %o gid %d", c.path, mode, g, c.perm, gid)
		}
	}

	// A file the pod made with another group: OnRootMismatch leaves it
	// alone (the root already matches), Always fixes it.
	f := filepath.Join(scratch.Path, "made-by-pod")
	if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(f, 0, 0); err != nil {
		t.Fatal(err)
	}
	pod.Spec.SecurityContext.FSGroupChangePolicy = ptr(v1.FSGroupChangeOnRootMismatch)
	if _, err := m.Setup(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if mode, g := modeOf(t, f); g != 0 || mode.Perm() != 0o600 {
		t.Errorf("OnRootMismatch changed a file: mode %v gid %d", mode, g)
	}
	pod.Spec.SecurityContext.FSGroupChangePolicy = ptr(v1.FSGroupChangeAlways)
	if _, err := m.Setup(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if mode, g := modeOf(t, f); g != gid || mode.Perm() != 0o660 {
		t.Errorf("Always did not fix a file: mode %v gid %d", mode, g)
	}

	// Ownership is applied once per agent run: a repeated Setup does not
	// walk again, a restarted agent (a new Manager) does.
	f2 := filepath.Join(scratch.Path, "later")
	if err := os.WriteFile(f2, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(f2, 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Setup(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if _, g := modeOf(t, f2); g != 0 {
		t.Errorf("repeated Setup walked the volume again")
	}
	restarted := &Manager{Root: m.Root, Client: m.Client, Log: m.Log}
	if _, err := restarted.Setup(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if mode, g := modeOf(t, f2); g != gid || mode.Perm() != 0o660 {
		t.Errorf("Setup after a restart did not apply fsGroup: mode %v gid %d", mode, g)
	}
	if err := m.Teardown(pod.UID); err != nil {
		t.Fatal(err)
	}
}
