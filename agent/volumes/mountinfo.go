package volumes

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// mountEntry is one line of /proc/self/mountinfo.
type mountEntry struct {
	ID, Parent int
	MountPoint string
	Optional   []string // e.g. "shared:1", "master:2"
	FSType     string
}

// shared reports whether the mount is in a shared peer group.
func (e mountEntry) shared() bool {
	for _, o := range e.Optional {
		if strings.HasPrefix(o, "shared:") {
			return true
		}
	}
	return false
}

// unescapeMountPath undoes the octal escapes (\040 for a space, \011,
// \012, \134) the kernel uses for paths in mountinfo.
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// parseMountInfoLine parses one mountinfo line.
func parseMountInfoLine(line string) (mountEntry, error) {
	f := strings.Fields(line)
	if len(f) < 10 {
		return mountEntry{}, fmt.Errorf("short mountinfo line %q", line)
	}
	id, err1 := strconv.Atoi(f[0])
	parent, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		return mountEntry{}, fmt.Errorf("bad mount ids in mountinfo line %q", line)
	}
	e := mountEntry{ID: id, Parent: parent, MountPoint: unescapeMountPath(f[4])}
	sep := -1
	for i := 6; i < len(f); i++ {
		if f[i] == "-" {
			sep = i
			break
		}
	}
	if sep < 0 || sep+1 >= len(f) {
		return mountEntry{}, fmt.Errorf("no separator in mountinfo line %q", line)
	}
	e.Optional = f[6:sep]
	e.FSType = f[sep+1]
	return e, nil
}

// readMountInfo reads the calling process's mount table.
func readMountInfo() ([]mountEntry, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	defer f.Close()
	var out []mountEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		e, err := parseMountInfoLine(sc.Text())
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	return out, nil
}

// within reports whether path is dir or below it (both clean and absolute).
func within(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, dir+"/") || dir == "/"
}

// mountsUnder returns the mount points at or below dir, in the order they
// must be unmounted: deepest path first and, for mounts stacked on the same
// point, the newest first.
func mountsUnder(entries []mountEntry, dir string) []mountEntry {
	var out []mountEntry
	for _, e := range entries {
		if within(e.MountPoint, dir) {
			out = append(out, e)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		di, dj := strings.Count(out[i].MountPoint, "/"), strings.Count(out[j].MountPoint, "/")
		if di != dj {
			return di > dj
		}
		if out[i].MountPoint != out[j].MountPoint {
			return out[i].MountPoint > out[j].MountPoint
		}
		return out[i].ID > out[j].ID
	})
	return out
}

// containingMount returns the entry whose mount point is the longest
// prefix of path (the mount path lives on; the last one listed wins when
// several are stacked).
func containingMount(entries []mountEntry, path string) (mountEntry, bool) {
	var best mountEntry
	found := false
	for _, e := range entries {
		if !within(path, e.MountPoint) {
			continue
		}
		if !found || len(e.MountPoint) >= len(best.MountPoint) {
			best, found = e, true
		}
	}
	return best, found
}

// isMountPoint reports whether the (resolved) path is a mount point.
func isMountPoint(path string) (bool, error) {
	entries, err := readMountInfo()
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		if e.MountPoint == path {
			return true, nil
		}
	}
	return false, nil
}

// unmount removes one mount at path, detaching it lazily when busy. A path
// that is not (or no longer) mounted is not an error.
func unmount(path string) error {
	err := unix.Unmount(path, unix.UMOUNT_NOFOLLOW)
	if errors.Is(err, unix.EBUSY) {
		err = unix.Unmount(path, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
	}
	if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return fmt.Errorf("unmount %s: %w", path, err)
}

// unmountAllUnder unmounts every mount at or below dir, repeating for
// stacked mounts, and fails if any is left.
func unmountAllUnder(dir string) error {
	for range 16 {
		entries, err := readMountInfo()
		if err != nil {
			return err
		}
		left := mountsUnder(entries, dir)
		if len(left) == 0 {
			return nil
		}
		for _, e := range left {
			if err := unmount(e.MountPoint); err != nil {
				return err
			}
		}
	}
	entries, err := readMountInfo()
	if err != nil {
		return err
	}
	if left := mountsUnder(entries, dir); len(left) > 0 {
		return fmt.Errorf("%d mounts remain under %s, e.g. %s", len(left), dir, left[0].MountPoint)
	}
	return nil
}

// mountTmpfs mounts a tmpfs on dir unless one (or anything) is already
// mounted there; size 0 means the kernel's default.
func mountTmpfs(dir string, size int64) error {
	mounted, err := isMountPoint(dir)
	if err != nil || mounted {
		return err
	}
	opts := ""
	if size > 0 {
		opts = "size=" + strconv.FormatInt(size, 10)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", dir, err)
	}
	return nil
}

// realDir creates dir if needed and returns its absolute path with symlinks
// resolved, as the mount table shows it.
func realDir(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", dir, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", dir, err)
	}
	return real, nil
}
