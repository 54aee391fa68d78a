package pods

import (
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/types"
)

// cgroupFS is where the cgroup hierarchies are mounted.
const cgroupFS = "/sys/fs/cgroup"

// podCgroup is the cgroup parent of a pod's sandbox and containers.
func podCgroup(root string, uid types.UID) string {
	if root == "" {
		root = "/skiff"
	}
	return filepath.Join(root, "pod"+string(uid))
}

// removeCgroups removes the pod's (now empty) cgroup directories from every
// hierarchy: runc removes the containers' own cgroups but not the parents
// it created on the way.
func removeCgroups(root string, uid types.UID) {
	rel := podCgroup(root, uid)
	entries, err := os.ReadDir(cgroupFS)
	if err != nil {
		return
	}
	dirs := []string{filepath.Join(cgroupFS, rel)} // cgroup v2 (unified at the top)
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, filepath.Join(cgroupFS, e.Name(), rel))
		}
	}
	for _, d := range dirs {
		removeCgroupTree(d)
	}
}

// removeCgroupTree removes a cgroup directory and its child cgroups,
// deepest first. Cgroup directories can only be removed with rmdir.
func removeCgroupTree(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.IsDir() {
			removeCgroupTree(filepath.Join(dir, e.Name()))
		}
	}
	_ = os.Remove(dir)
}

// RemoveNodeCgroups removes the (empty) cgroup directories under root, the
// parent of all of a node's pods, from every hierarchy: what is left once
// the node's pods are gone.
func RemoveNodeCgroups(root string) {
	entries, err := os.ReadDir(cgroupFS)
	if err != nil {
		return
	}
	removeCgroupTree(filepath.Join(cgroupFS, root))
	_ = os.Remove(filepath.Join(cgroupFS, filepath.Dir(root))) // the shared parent, once empty
	for _, e := range entries {
		if e.IsDir() {
			removeCgroupTree(filepath.Join(cgroupFS, e.Name(), root))
			_ = os.Remove(filepath.Join(cgroupFS, e.Name(), filepath.Dir(root)))
		}
	}
}
