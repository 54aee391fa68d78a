package volumes

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// A projected volume directory (configMap, secret, downwardAPI, projected)
// is laid out so that readers switch from one version to the next at once:
//
//	..2026_01_02_15_04_05.123456789/   one complete version of the files
//	..data -> ..2026_01_02_15_04_05.123456789
//	key    -> ..data/key                (one link per top-level name)
//
// An update writes a new version directory, then renames a fresh symlink
// over ..data (an atomic replace), then fixes the top-level links and
// removes the old version.
const (
	dataLink    = "..data"
	dataLinkTmp = "..data_tmp"
	versionFmt  = "..2006_01_02_15_04_05."
	versionDir  = os.FileMode(0o755)
)

// file is one file of a volume's content.
type file struct {
	data []byte
	mode os.FileMode
}

// payload maps paths relative to the volume root to their content.
type payload map[string]file

// validPayloadPath checks a user path: relative, no "..", no empty
// components, and not starting with ".." (reserved for the writer).
func validPayloadPath(p string) error {
	switch {
	case p == "":
		return errors.New("empty path")
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("path %q must be relative", p)
	case strings.HasPrefix(p, ".."):
		return fmt.Errorf("path %q must not start with '..'", p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("path %q must not contain empty, '.' or '..' components", p)
		}
	}
	return nil
}

// topLevel returns the first component of each path.
func topLevel(p payload) map[string]bool {
	out := map[string]bool{}
	for path := range p {
		first, _, _ := strings.Cut(path, "/")
		out[first] = true
	}
	return out
}

// atomicWriter writes payloads into dir.
type atomicWriter struct {
	dir string
	now func() time.Time
	gid int // group of every file and directory, or -1
}

// write makes dir show exactly p. It does nothing when the current version
// already has the same content, modes and group (changed is then false).
func (w *atomicWriter) write(p payload) (changed bool, err error) {
	for path := range p {
		if err := validPayloadPath(path); err != nil {
			return false, err
		}
	}
	linkPath := filepath.Join(w.dir, dataLink)
	current, err := os.Readlink(linkPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("read %s: %w", linkPath, err)
	}
	tops := topLevel(p)
	if current != "" {
		same, err := w.matches(filepath.Join(w.dir, current), p)
		if err != nil {
			return false, err
		}
		if same {
			return false, w.finish(current, tops)
		}
	}

	version, err := os.MkdirTemp(w.dir, w.now().UTC().Format(versionFmt))
	if err != nil {
		return false, fmt.Errorf("create version dir: %w", err)
	}
	if err := w.fill(version, p); err != nil {
		_ = os.RemoveAll(version)
		return false, err
	}
	tmp := filepath.Join(w.dir, dataLinkTmp)
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("remove %s: %w", tmp, err)
	}
	if err := os.Symlink(filepath.Base(version), tmp); err != nil {
		return false, fmt.Errorf("link new version: %w", err)
	}
	if err := w.lchown(tmp); err != nil {
		return false, err
	}
	if err := os.Rename(tmp, linkPath); err != nil {
		return false, fmt.Errorf("switch %s to the new version: %w", dataLink, err)
	}
	return true, w.finish(filepath.Base(version), tops)
}

// fill writes p into the fresh version directory.
func (w *atomicWriter) fill(version string, p payload) error {
	dirMode := w.dirMode()
	if err := os.Chmod(version, dirMode); err != nil {
		return fmt.Errorf("chmod %s: %w", version, err)
	}
	if err := w.lchown(version); err != nil {
		return err
	}
	for path, f := range p {
		full := filepath.Join(version, path)
		if err := w.mkdirs(version, filepath.Dir(path), dirMode); err != nil {
			return err
		}
		if err := os.WriteFile(full, f.data, f.mode.Perm()); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		if err := w.lchown(full); err != nil {
			return err
		}
		// Chmod after chown (which may clear setgid) and against the umask.
		if err := os.Chmod(full, f.mode&(os.ModePerm|specialBits)); err != nil {
			return fmt.Errorf("chmod %s: %w", path, err)
		}
	}
	return nil
}

// mkdirs creates the directories of rel (relative) below base.
func (w *atomicWriter) mkdirs(base, rel string, mode os.FileMode) error {
	if rel == "." || rel == "" {
		return nil
	}
	cur := base
	for _, part := range strings.Split(rel, "/") {
		cur = filepath.Join(cur, part)
		err := os.Mkdir(cur, mode.Perm())
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("create %s: %w", cur, err)
		}
		if err := w.lchown(cur); err != nil {
			return err
		}
		if err := os.Chmod(cur, mode); err != nil {
			return fmt.Errorf("chmod %s: %w", cur, err)
		}
	}
	return nil
}

// dirMode is the mode of directories inside a version.
func (w *atomicWriter) dirMode() os.FileMode {
	if w.gid >= 0 {
		return fsGroupMode(versionDir, true, true)
	}
	return versionDir
}

func (w *atomicWriter) lchown(path string) error {
	if w.gid < 0 {
		return nil
	}
	if err := os.Lchown(path, -1, w.gid); err != nil {
		return fmt.Errorf("chown %s: %w", path, err)
	}
	return nil
}

// matches reports whether the version directory holds exactly p.
func (w *atomicWriter) matches(version string, p payload) (bool, error) {
	seen := 0
	same := true
	err := filepath.WalkDir(version, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(version, path)
		if err != nil {
			return err
		}
		want, ok := p[rel]
		if !ok || !d.Type().IsRegular() {
			same = false
			return filepath.SkipAll
		}
		seen++
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode()&(os.ModePerm|specialBits) != want.mode&(os.ModePerm|specialBits) || !w.groupMatches(info) {
			same = false
			return filepath.SkipAll
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !bytes.Equal(data, want.data) {
			same = false
			return filepath.SkipAll
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("compare %s: %w", version, err)
	}
	return same && seen == len(p), nil
}

func (w *atomicWriter) groupMatches(info fs.FileInfo) bool {
	if w.gid < 0 {
		return true
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	return ok && int(st.Gid) == w.gid
}

// finish points one link per top-level name through ..data, removes the
// links of names no longer present and deletes old versions.
func (w *atomicWriter) finish(current string, tops map[string]bool) error {
	for name := range tops {
		link := filepath.Join(w.dir, name)
		target := filepath.Join(dataLink, name)
		if got, err := os.Readlink(link); err == nil && got == target {
			continue
		}
		tmp := filepath.Join(w.dir, dataLinkTmp)
		_ = os.Remove(tmp)
		if err := os.Symlink(target, tmp); err != nil {
			return fmt.Errorf("link %s: %w", name, err)
		}
		if err := w.lchown(tmp); err != nil {
			return err
		}
		if info, err := os.Lstat(link); err == nil && info.IsDir() {
			// Not something this writer made; it is in the way.
			if err := os.RemoveAll(link); err != nil {
				return fmt.Errorf("remove %s: %w", link, err)
			}
		}
		if err := os.Rename(tmp, link); err != nil {
			return fmt.Errorf("link %s: %w", name, err)
		}
	}
	entries, err := os.ReadDir(w.dir)
	if err != nil {
		return fmt.Errorf("list %s: %w", w.dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(w.dir, name)
		switch {
		case name == dataLink || name == current:
		case strings.HasPrefix(name, ".."):
			// An old version, or a temporary link left by a crash.
			if err := os.RemoveAll(path); err != nil {
				return fmt.Errorf("remove old version %s: %w", path, err)
			}
		case !tops[name]:
			if target, err := os.Readlink(path); err == nil && strings.HasPrefix(target, dataLink+"/") {
				if err := os.Remove(path); err != nil {
					return fmt.Errorf("remove stale link %s: %w", path, err)
				}
			}
		}
	}
	return nil
}
