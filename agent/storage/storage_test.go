package storage

import (
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-sh/skiff/controllers/volumebinding/pvmatch"
)

func TestChildOf(t *testing.T) {
	cases := []struct {
		path, want string
		ok         bool
	}{
		{"/base/pvc-1_ns_data", "pvc-1_ns_data", true},
		{"/base/pvc-1/", "pvc-1", true},
		{"/base/./pvc-1", "pvc-1", true},
		{"/base", "", false},
		{"/base/a/b", "", false},
		{"/base/../etc", "", false},
		{"/other/pvc-1", "", false},
		{"base/pvc-1", "", false},
		{"/base/..", "", false},
	}
	for _, tc := range cases {
		got, err := childOf("/base", tc.path)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("childOf(%q) = %q, %v; want %q, ok %v", tc.path, got, err, tc.want, tc.ok)
		}
	}
}

func TestDirs(t *testing.T) {
	base := filepath.Join(t.TempDir(), "storage")
	created, err := makeDir(base, "vol")
	if err != nil || !created {
		t.Fatalf("makeDir under a missing base: %v %v", created, err)
	}
	info, err := os.Stat(filepath.Join(base, "vol"))
	if err != nil || info.Mode().Perm() != 0o777 {
		t.Fatalf("mode: %v %v", info, err)
	}
	if created, err := makeDir(base, "vol"); err != nil || created {
		t.Errorf("existing directory: %v %v", created, err)
	}
	if err := os.WriteFile(filepath.Join(base, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := makeDir(base, "file"); err == nil {
		t.Error("a file in the way is an error")
	}
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "keep"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(base, "link")); err != nil {
		t.Fatal(err)
	}
	if _, err := makeDir(base, "link"); err == nil {
		t.Error("a symlink in the way is an error")
	}

	// Removal: contents go, symlinks inside are unlinked, not followed.
	if err := os.MkdirAll(filepath.Join(base, "vol", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(base, "vol", "sub", "escape")); err != nil {
		t.Fatal(err)
	}
	if err := removeDir(base, "vol"); err != nil {
		t.Fatal(err)
	}
	if err := removeDir(base, "link"); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{"vol", "link"} {
		if _, err := os.Lstat(filepath.Join(base, gone)); !os.IsNotExist(err) {
			t.Errorf("%s still there: %v", gone, err)
		}
	}
	if _, err := os.Stat(filepath.Join(outside, "keep")); err != nil {
		t.Errorf("a symlink's target was removed: %v", err)
	}
	if err := removeDir(base, "never"); err != nil {
		t.Errorf("a missing directory is already removed: %v", err)
	}
}

func TestOwns(t *testing.T) {
	m := New(nil, "node-1", "/base", nil)
	vol := func(ann map[string]string, host string, local bool) *corev1.PersistentVolume {
		v := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "v", Annotations: ann}}
		if local {
			v.Spec.Local = &corev1.LocalVolumeSource{Path: "/base/v"}
		}
		if host != "" {
			v.Spec.NodeAffinity = &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{host}}}}}}}
		}
		return v
	}
	ours := pvmatch.LocalPathProvisioner
	cases := []struct {
		name string
		v    *corev1.PersistentVolume
		want bool
	}{
		{"annotated for this node", vol(map[string]string{pvmatch.AnnProvisionedBy: ours, pvmatch.AnnLocalPathNode: "node-1"}, "other-host", true), true},
		{"annotated for another node", vol(map[string]string{pvmatch.AnnProvisionedBy: ours, pvmatch.AnnLocalPathNode: "node-2"}, "node-1", true), false},
		{"affinity only", vol(map[string]string{pvmatch.AnnProvisionedBy: ours}, "node-1", true), true},
		{"another provisioner", vol(map[string]string{pvmatch.AnnProvisionedBy: "example.com/disk", pvmatch.AnnLocalPathNode: "node-1"}, "node-1", true), false},
		{"hand-made", vol(nil, "node-1", true), false},
		{"not a local volume", vol(map[string]string{pvmatch.AnnProvisionedBy: ours, pvmatch.AnnLocalPathNode: "node-1"}, "node-1", false), false},
	}
	for _, tc := range cases {
		if got := m.owns(tc.v); got != tc.want {
			t.Errorf("%s: owns = %v, want %v", tc.name, got, tc.want)
		}
	}
	if BaseDir("/var/lib/skiff/agent") != pvmatch.DefaultLocalPathBase {
		t.Errorf("BaseDir of the default data dir is %s, want the provisioner's fallback %s", BaseDir("/var/lib/skiff/agent"), pvmatch.DefaultLocalPathBase)
	}
}
