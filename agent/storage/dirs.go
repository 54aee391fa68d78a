package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// volumeMode is the mode of a volume directory: anyone may write, as any
// container user may run in the pod.
const volumeMode fs.FileMode = 0o777

// childOf checks that path names a direct child of base (both cleaned,
// absolute) and returns the child's name.
func childOf(base, path string) (string, error) {
	if !filepath.IsAbs(path) {
		return "", fmt.Errorf("path %q is not absolute", path)
	}
	clean := filepath.Clean(path)
	if filepath.Dir(clean) != base {
		return "", fmt.Errorf("path %q is not directly under %s", path, base)
	}
	name := filepath.Base(clean)
	if name == "." || name == ".." || name == string(filepath.Separator) || strings.ContainsRune(name, filepath.Separator) {
		return "", fmt.Errorf("path %q has no usable name", path)
	}
	return name, nil
}

// ensureBase makes the base directory if it is missing.
func ensureBase(base string) error {
	if err := os.MkdirAll(base, 0o755); err != nil {
		return fmt.Errorf("local-path: making base directory %s: %w", base, err)
	}
	return nil
}

// makeDir creates base/name with mode 0777 and reports whether it did; an
// existing directory is fine, anything else there (a file, a symlink) is
// an error. A missing base is made again.
func makeDir(base, name string) (bool, error) {
	path := filepath.Join(base, name)
	err := os.Mkdir(path, volumeMode)
	if errors.Is(err, fs.ErrNotExist) {
		if err := ensureBase(base); err != nil {
			return false, err
		}
		err = os.Mkdir(path, volumeMode)
	}
	switch {
	case err == nil:
		// The umask trimmed the mode; set it as meant.
		if err := os.Chmod(path, volumeMode); err != nil {
			return true, fmt.Errorf("setting the mode of %s: %w", path, err)
		}
		return true, nil
	case !errors.Is(err, fs.ErrExist):
		return false, fmt.Errorf("making %s: %w", path, err)
	}
	info, err := os.Lstat(path)
	if err != nil {
		return false, fmt.Errorf("checking %s: %w", path, err)
	}
	if !info.IsDir() {
		return false, fmt.Errorf("%s exists and is not a directory (%v)", path, info.Mode().Type())
	}
	return false, nil
}

// removeDir removes base/name and everything in it without following
// symlinks: a symlink in its place is unlinked, not its target.
func removeDir(base, name string) error {
	path := filepath.Join(base, name)
	info, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case !info.IsDir():
		return os.Remove(path)
	}
	return os.RemoveAll(path)
}
