package volumes

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/agent/envvars"
)

// Mounts returns the CRI mounts of container c of pod: one per
// volumeMount, read-only when the mount or the volume says so, with the
// mount propagation asked for. A subPath (or subPathExpr, expanded against
// env; a variable that is missing or empty is an error) is resolved inside
// the volume without following symlinks out of it, created as a directory
// when missing, and bind-mounted to a place of its own under
// Root/<uid>/volume-subpaths so that replacing a symlink later cannot
// redirect it.
func (m *Manager) Mounts(pv *PodVolumes, pod *v1.Pod, c *v1.Container, env map[string]string) ([]*runtimeapi.Mount, error) {
	if len(c.VolumeDevices) > 0 {
		return nil, fmt.Errorf("container %q: volumeDevices (raw block volumes) are not supported by Skiff", c.Name)
	}
	defer m.lock(pod.UID)()
	var out []*runtimeapi.Mount
	for i := range c.VolumeMounts {
		vm := &c.VolumeMounts[i]
		vol, ok := pv.Get(vm.Name)
		if !ok {
			return nil, fmt.Errorf("container %q mounts volume %q, which the pod does not have", c.Name, vm.Name)
		}
		sub, err := subPathOf(vm, env)
		if err != nil {
			return nil, fmt.Errorf("container %q volumeMount %q: %w", c.Name, vm.Name, err)
		}
		host := vol.Path
		if sub != "" {
			host, err = m.bindSubPath(pod.UID, vol.Path, vm.Name, c.Name, i, sub)
			if err != nil {
				return nil, fmt.Errorf("container %q volumeMount %q: %w", c.Name, vm.Name, err)
			}
		}
		prop, err := propagation(vm.MountPropagation, c)
		if err != nil {
			return nil, fmt.Errorf("container %q volumeMount %q: %w", c.Name, vm.Name, err)
		}
		ro := vm.ReadOnly || vol.ReadOnly
		if vm.RecursiveReadOnly != nil && *vm.RecursiveReadOnly == v1.RecursiveReadOnlyEnabled {
			return nil, fmt.Errorf("container %q volumeMount %q: recursiveReadOnly Enabled is not supported by Skiff's runtime", c.Name, vm.Name)
		}
		out = append(out, &runtimeapi.Mount{
			ContainerPath: vm.MountPath,
			HostPath:      host,
			Readonly:      ro,
			Propagation:   prop,
		})
	}
	return out, nil
}

// subPathOf returns the mount's subPath, expanding subPathExpr, and checks
// it is relative and does not climb with "..".
func subPathOf(vm *v1.VolumeMount, env map[string]string) (string, error) {
	sub := vm.SubPath
	if vm.SubPathExpr != "" {
		expanded, missing := envvars.ExpandStrict(vm.SubPathExpr, env)
		if len(missing) > 0 {
			return "", fmt.Errorf("subPathExpr %q: missing value for %s", vm.SubPathExpr, strings.Join(missing, ", "))
		}
		sub = expanded
	}
	if sub == "" {
		return "", nil
	}
	if filepath.IsAbs(sub) {
		return "", fmt.Errorf("subPath %q must not be an absolute path", sub)
	}
	for _, part := range strings.Split(sub, "/") {
		if part == ".." {
			return "", fmt.Errorf("subPath %q must not contain '..'", sub)
		}
	}
	return filepath.Clean(sub), nil
}

// propagation maps a volumeMount's mountPropagation to CRI.
func propagation(p *v1.MountPropagationMode, c *v1.Container) (runtimeapi.MountPropagation, error) {
	if p == nil {
		return runtimeapi.MountPropagation_PROPAGATION_PRIVATE, nil
	}
	switch *p {
	case v1.MountPropagationNone:
		return runtimeapi.MountPropagation_PROPAGATION_PRIVATE, nil
	case v1.MountPropagationHostToContainer:
		return runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER, nil
	case v1.MountPropagationBidirectional:
		if c.SecurityContext == nil || c.SecurityContext.Privileged == nil || !*c.SecurityContext.Privileged {
			return 0, fmt.Errorf("mountPropagation Bidirectional is only allowed for privileged containers")
		}
		return runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL, nil
	}
	return 0, fmt.Errorf("unknown mountPropagation %q", *p)
}

// resolveFlags keep a path walk inside the starting directory: no absolute
// symlinks, no ".." above it, no /proc magic links.
const resolveFlags = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS

// openBeneath opens rel below the directory fd root as an O_PATH fd,
// retrying when the kernel reports a concurrent rename.
func openBeneath(root int, rel string, flags uint64) (int, error) {
	how := &unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: resolveFlags}
	for range 8 {
		fd, err := unix.Openat2(root, rel, how)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		return fd, err
	}
	return unix.Openat2(root, rel, how)
}

// openSubPath opens sub inside the volume at volRoot without leaving it,
// creating missing directories (with the mode of the volume's root). The
// returned fd is O_PATH.
func openSubPath(volRoot, sub string) (int, error) {
	root, err := unix.Open(volRoot, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open volume %s: %w", volRoot, err)
	}
	defer unix.Close(root)
	fd, err := openBeneath(root, sub, unix.O_PATH)
	if err == nil {
		return fd, nil
	}
	if !errors.Is(err, unix.ENOENT) {
		return -1, subPathError(sub, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(root, &st); err != nil {
		return -1, fmt.Errorf("stat volume %s: %w", volRoot, err)
	}
	perm := st.Mode & (0o777 | unix.S_ISGID)
	parts := strings.Split(sub, "/")
	for i := range parts {
		prefix := strings.Join(parts[:i+1], "/")
		fd, err := openBeneath(root, prefix, unix.O_PATH)
		if err == nil {
			unix.Close(fd)
			continue
		}
		if !errors.Is(err, unix.ENOENT) {
			return -1, subPathError(sub, err)
		}
		if err := mkdirBeneath(root, parts[:i], parts[i], perm); err != nil {
			return -1, subPathError(sub, err)
		}
	}
	fd, err = openBeneath(root, sub, unix.O_PATH)
	if err != nil {
		return -1, subPathError(sub, err)
	}
	return fd, nil
}

// mkdirBeneath creates directory name in the directory parent (components
// below root) and gives it perm. An entry that appeared meanwhile is fine:
// the caller opens the result beneath root again.
func mkdirBeneath(root int, parent []string, name string, perm uint32) error {
	dir := root
	if len(parent) > 0 {
		fd, err := openBeneath(root, strings.Join(parent, "/"), unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		dir = fd
	}
	err := unix.Mkdirat(dir, name, perm&0o777)
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	if err != nil {
		return err
	}
	fd, err := openBeneath(dir, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Fchmod(fd, perm)
}

func subPathError(sub string, err error) error {
	switch {
	case errors.Is(err, unix.EXDEV):
		return fmt.Errorf("subPath %q resolves outside the volume", sub)
	case errors.Is(err, unix.ELOOP):
		return fmt.Errorf("subPath %q: too many or forbidden symlinks", sub)
	}
	return fmt.Errorf("subPath %q: %w", sub, err)
}

// bindSubPath resolves sub inside the volume and bind-mounts what it opened
// (through /proc/self/fd, so no path is looked up twice) onto
// Root/<uid>/volume-subpaths/<volume>/<container>/<index>, which it
// returns. An existing bind of the same file is reused.
func (m *Manager) bindSubPath(uid types.UID, volRoot, volName, container string, index int, sub string) (string, error) {
	podDir, err := m.podDir(uid)
	if err != nil {
		return "", err
	}
	fd, err := openSubPath(volRoot, sub)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	var src unix.Stat_t
	if err := unix.Fstat(fd, &src); err != nil {
		return "", fmt.Errorf("stat subPath %q: %w", sub, err)
	}
	isDir := src.Mode&unix.S_IFMT == unix.S_IFDIR

	target := filepath.Join(podDir, "volume-subpaths", volName, container, strconv.Itoa(index))
	if err := os.MkdirAll(filepath.Dir(target), 0o750); err != nil {
		return "", fmt.Errorf("create subPath mount point: %w", err)
	}
	mounted, err := isMountPoint(target)
	if err != nil {
		return "", err
	}
	if mounted {
		if sameFile(target, &src) {
			return target, nil
		}
		if err := unmount(target); err != nil {
			return "", err
		}
	}
	if err := makeMountPoint(target, isDir); err != nil {
		return "", err
	}
	if err := unix.Mount("/proc/self/fd/"+strconv.Itoa(fd), target, "", unix.MS_BIND, ""); err != nil {
		return "", fmt.Errorf("bind subPath %q to %s: %w", sub, target, err)
	}
	if !sameFile(target, &src) {
		_ = unmount(target)
		return "", fmt.Errorf("bind subPath %q: mount at %s does not show the resolved file", sub, target)
	}
	return target, nil
}

// sameFile reports whether path is the file described by st.
func sameFile(path string, st *unix.Stat_t) bool {
	var got unix.Stat_t
	if err := unix.Lstat(path, &got); err != nil {
		return false
	}
	return got.Dev == st.Dev && got.Ino == st.Ino
}

// makeMountPoint makes target an empty directory or file to bind onto,
// replacing an entry of the wrong type.
func makeMountPoint(target string, isDir bool) error {
	info, err := os.Lstat(target)
	if err == nil {
		if info.IsDir() == isDir && (isDir || info.Mode().IsRegular()) {
			return nil
		}
		if err := os.Remove(target); err != nil {
			return fmt.Errorf("replace subPath mount point %s: %w", target, err)
		}
	}
	if isDir {
		if err := os.Mkdir(target, 0o750); err != nil {
			return fmt.Errorf("create subPath mount point: %w", err)
		}
		return nil
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("create subPath mount point: %w", err)
	}
	return f.Close()
}
