package volumes

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestMountsSubPath(t *testing.T) {
	requireRoot(t)
	m, _ := newManager(t)
	hostDir := t.TempDir()
	pod := volumePod("uid-subpath",
		v1.Volume{Name: "work", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
		v1.Volume{Name: "host", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: hostDir}}},
	)
	pv, err := m.Setup(context.Background(), pod)
	if err != nil {
		t.Fatal(err)
	}
	work, _ := pv.Get("work")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(work.Path, "conf"), 0o755))
	must(os.WriteFile(filepath.Join(work.Path, "conf/app.yaml"), []byte("app"), 0o644))
	must(os.MkdirAll(filepath.Join(work.Path, "dir"), 0o755))
	must(os.WriteFile(filepath.Join(work.Path, "dir/marker"), []byte("original"), 0o644))
	must(os.Symlink("dir", filepath.Join(work.Path, "inner")))
	must(os.Symlink("/etc", filepath.Join(work.Path, "abs")))
	must(os.Symlink("../../../../../../../../etc", filepath.Join(work.Path, "rel")))
	must(os.Symlink("/proc/self/root/etc", filepath.Join(work.Path, "magic")))
	must(os.WriteFile(filepath.Join(hostDir, "keep"), []byte("host data"), 0o644))

	c := &v1.Container{Name: "app", VolumeMounts: []v1.VolumeMount{
		{Name: "work", MountPath: "/etc/app.yaml", SubPath: "conf/app.yaml", ReadOnly: true},
		{Name: "work", MountPath: "/dir", SubPath: "dir"},
		{Name: "work", MountPath: "/inner", SubPath: "inner"},
		{Name: "work", MountPath: "/new", SubPathExpr: "logs/$(POD_NAME)"},
		{Name: "work", MountPath: "/whole", MountPropagation: ptr(v1.MountPropagationHostToContainer)},
		{Name: "host", MountPath: "/host", SubPath: "."},
	}}
	env := map[string]string{"POD_NAME": "web-0"}
	mounts, err := m.Mounts(pv, pod, c, env)
	if err != nil {
		t.Fatal(err)
	}
	podDir, _ := m.podDir(pod.UID)
	sub := func(i int) string {
		return filepath.Join(podDir, "volume-subpaths", "work", "app", string(rune('0'+i)))
	}
	want := []*runtimeapi.Mount{
		{ContainerPath: "/etc/app.yaml", HostPath: sub(0), Readonly: true},
		{ContainerPath: "/dir", HostPath: sub(1)},
		{ContainerPath: "/inner", HostPath: sub(2)},
		{ContainerPath: "/new", HostPath: sub(3)},
		{ContainerPath: "/whole", HostPath: work.Path, Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
		{ContainerPath: "/host", HostPath: filepath.Join(podDir, "volume-subpaths", "host", "app", "5")},
	}
	if len(mounts) != len(want) {
		t.Fatalf("got %d mounts, want %d", len(mounts), len(want))
	}
	for i := range want {
		g, w := mounts[i], want[i]
		if g.ContainerPath != w.ContainerPath || g.HostPath != w.HostPath || g.Readonly != w.Readonly || g.Propagation != w.Propagation {
			t.Errorf("mount %d = %v, want %v", i, g, w)
		}
	}
	if got := readFile(t, sub(0)); got != "app" {
		t.Errorf("file subPath shows %q", got)
	}
	if got := readFile(t, filepath.Join(sub(1), "marker")); got != "original" {
		t.Errorf("dir subPath shows %q", got)
	}
	if got := readFile(t, filepath.Join(sub(2), "marker")); got != "original" {
		t.Errorf("symlink inside the volume: %q", got)
	}
	info, err := os.Stat(filepath.Join(work.Path, "logs/web-0"))
	if err != nil || !info.IsDir() || info.Mode().Perm() != 0o777 {
		t.Errorf("missing subPath not created as a dir with the volume's mode: %v, %v", info, err)
	}
	if got := readFile(t, filepath.Join(mounts[5].HostPath, "keep")); got != "host data" {
		t.Errorf("hostPath subPath shows %q", got)
	}

	// Calling again reuses the binds.
	before := mountsBelow(t, podDir)
	if len(before) != 5 {
		t.Errorf("subPath mounts = %v, want 5", before)
	}
	if _, err := m.Mounts(pv, pod, c, env); err != nil {
		t.Fatal(err)
	}
	if after := mountsBelow(t, podDir); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("second Mounts changed the mounts: %v -> %v", before, after)
	}

	// Escapes fail.
	for _, bad := range []string{"abs", "rel", "abs/passwd", "magic", "inner/../../../etc"} {
		c := &v1.Container{Name: "evil", VolumeMounts: []v1.VolumeMount{{Name: "work", MountPath: "/x", SubPath: bad}}}
		if _, err := m.Mounts(pv, pod, c, env); err == nil {
			t.Errorf("subPath %q escaping the volume was accepted", bad)
		} else if bad != "inner/../../../etc" && !strings.Contains(err.Error(), "outside the volume") && !strings.Contains(err.Error(), "symlinks") {
			t.Errorf("subPath %q: unexpected error %v", bad, err)
		}
	}
	for _, m := range mountsBelow(t, filepath.Join(podDir, "volume-subpaths", "work", "evil")) {
		t.Errorf("failed subPath left a mount: %s", m)
	}

	// Swapping the directory for a symlink after the bind changes nothing
	// for the bind, and a new resolution refuses the escape.
	must(os.Rename(filepath.Join(work.Path, "dir"), filepath.Join(work.Path, "dir-old")))
	must(os.Symlink("/etc", filepath.Join(work.Path, "dir")))
	if got := readFile(t, filepath.Join(sub(1), "marker")); got != "original" {
		t.Errorf("bind followed the swap: %q", got)
	}
	if _, err := os.Stat(filepath.Join(sub(1), "passwd")); err == nil {
		t.Error("bind shows /etc after the swap")
	}
	if _, err := m.Mounts(pv, pod, c, env); err == nil || !strings.Contains(err.Error(), "outside the volume") {
		t.Errorf("re-resolving the swapped subPath: %v", err)
	}

	// Missing subPathExpr variables and volumes are errors.
	bad := &v1.Container{Name: "b", VolumeMounts: []v1.VolumeMount{{Name: "work", MountPath: "/x", SubPathExpr: "$(NOPE)"}}}
	if _, err := m.Mounts(pv, pod, bad, env); err == nil || !strings.Contains(err.Error(), "missing value for NOPE") {
		t.Errorf("missing subPathExpr var: %v", err)
	}
	bad = &v1.Container{Name: "b", VolumeMounts: []v1.VolumeMount{{Name: "ghost", MountPath: "/x"}}}
	if _, err := m.Mounts(pv, pod, bad, env); err == nil || !strings.Contains(err.Error(), `volume "ghost"`) {
		t.Errorf("unknown volume: %v", err)
	}

	if err := m.Teardown(pod.UID); err != nil {
		t.Fatal(err)
	}
	if left := mountsBelow(t, podDir); len(left) != 0 {
		t.Errorf("mounts left: %v", left)
	}
	if readFile(t, filepath.Join(hostDir, "keep")) != "host data" {
		t.Error("teardown removed hostPath content")
	}
	var st unix.Stat_t
	if err := unix.Stat("/etc/passwd", &st); err != nil {
		t.Errorf("/etc/passwd damaged: %v", err)
	}
}

func TestMakeRootShared(t *testing.T) {
	requireRoot(t)
	m, _ := newManager(t)
	if err := m.MakeRootShared(); err != nil {
		t.Fatal(err)
	}
	root, err := realDir(m.Root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unmount(root) })
	check := func() {
		t.Helper()
		entries, err := readMountInfo()
		if err != nil {
			t.Fatal(err)
		}
		e, ok := containingMount(entries, root)
		if !ok || !e.shared() {
			t.Errorf("root mount %+v is not shared", e)
		}
		n := 0
		for _, e := range entries {
			if e.MountPoint == root {
				n++
			}
		}
		if n > 1 {
			t.Errorf("%d mounts stacked on root", n)
		}
	}
	check()
	if err := m.MakeRootShared(); err != nil {
		t.Fatal(err)
	}
	check()
}
