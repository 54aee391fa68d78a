package volumes

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	v1 "k8s.io/api/core/v1"
)

// Permission bits fsGroup ownership adds: group read (and write for
// writable volumes) on everything, group search and setgid on directories,
// so new files inherit the group.
const (
	groupRW   os.FileMode = 0o660
	groupRO   os.FileMode = 0o440
	groupExec os.FileMode = 0o110
)

// specialBits are the mode bits kept besides the permissions.
const specialBits = os.ModeSetuid | os.ModeSetgid | os.ModeSticky

// fsGroupMode is the mode an entry gets under fsGroup ownership.
func fsGroupMode(mode os.FileMode, isDir, readOnly bool) os.FileMode {
	mode &= os.ModePerm | specialBits
	add := groupRW
	if readOnly {
		add = groupRO
	}
	if isDir {
		add |= groupExec | os.ModeSetgid
	}
	return mode | add
}

// needsOwnershipChange decides whether a volume's tree must be walked to
// apply fsGroup. Only policy OnRootMismatch can skip it, when the root
// directory already has the group, the setgid bit and the group bits.
func needsOwnershipChange(policy *v1.PodFSGroupChangePolicy, rootGID uint32, rootMode os.FileMode, fsGroup int64, readOnly bool) bool {
	if policy == nil || *policy != v1.FSGroupChangeOnRootMismatch {
		return true
	}
	if int64(rootGID) != fsGroup || !rootMode.IsDir() {
		return true
	}
	want := fsGroupMode(0, true, readOnly)
	return rootMode&want != want
}

// podFSGroup returns the pod's fsGroup and change policy, if it has one.
func podFSGroup(pod *v1.Pod) (int64, *v1.PodFSGroupChangePolicy, bool) {
	sc := pod.Spec.SecurityContext
	if sc == nil || sc.FSGroup == nil {
		return 0, nil, false
	}
	return *sc.FSGroup, sc.FSGroupChangePolicy, true
}

// applyOwnership gives the tree at root the group fsGroup and the group
// permissions of fsGroupMode, unless the policy says it is already done.
// Symlinks get the group but keep their mode; the walk does not follow them.
func applyOwnership(root string, fsGroup int64, readOnly bool, policy *v1.PodFSGroupChangePolicy) error {
	info, err := os.Lstat(root)
	if err != nil {
		return fmt.Errorf("fsGroup: %w", err)
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("fsGroup: no ownership information for %s", root)
	}
	if !needsOwnershipChange(policy, st.Gid, info.Mode(), fsGroup, readOnly) {
		return nil
	}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return setGroup(path, d.Type(), fsGroup, readOnly)
	})
	if err != nil {
		return fmt.Errorf("fsGroup %d on %s: %w", fsGroup, root, err)
	}
	return nil
}

// setGroup applies fsGroup to one entry of type typ (a fs.FileMode type).
func setGroup(path string, typ fs.FileMode, fsGroup int64, readOnly bool) error {
	if err := os.Lchown(path, -1, int(fsGroup)); err != nil {
		return err
	}
	if typ&fs.ModeSymlink != 0 {
		return nil
	}
	info, err := os.Lstat(path)
	if err != nil {
		return err
	}
	want := fsGroupMode(info.Mode(), info.IsDir(), readOnly)
	if info.Mode()&(os.ModePerm|specialBits) == want {
		return nil
	}
	return os.Chmod(path, want)
}
