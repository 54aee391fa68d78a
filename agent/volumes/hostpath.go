package volumes

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// checkHostPath enforces a hostPath volume's type, creating the directory
// or file for the *OrCreate types. Symlinks are followed, as a bind mount
// would.
func checkHostPath(path string, typ *v1.HostPathType) error {
	t := v1.HostPathUnset
	if typ != nil {
		t = *typ
	}
	failed := func(what string) error {
		return fmt.Errorf("hostPath type check failed: %s is not a %s", path, what)
	}
	info, err := os.Stat(path)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("hostPath type check failed: %w", err)
	}
	switch t {
	case v1.HostPathUnset:
		return nil
	case v1.HostPathDirectoryOrCreate:
		if !exists {
			if err := os.MkdirAll(path, 0o755); err != nil {
				return fmt.Errorf("hostPath type check failed: create directory %s: %w", path, err)
			}
			return os.Chmod(path, 0o755)
		}
		if !info.IsDir() {
			return failed("directory")
		}
	case v1.HostPathDirectory:
		if !exists || !info.IsDir() {
			return failed("directory")
		}
	case v1.HostPathFileOrCreate:
		if !exists {
			// The parent must exist: like the kubelet, only the file is made.
			f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
			if errors.Is(err, fs.ErrExist) {
				return checkHostPath(path, typ)
			}
			if err != nil {
				return fmt.Errorf("hostPath type check failed: create file %s: %w", path, err)
			}
			if err := f.Close(); err != nil {
				return fmt.Errorf("hostPath type check failed: create file %s: %w", path, err)
			}
			return os.Chmod(path, 0o644)
		}
		if !info.Mode().IsRegular() {
			return failed("file")
		}
	case v1.HostPathFile:
		if !exists || !info.Mode().IsRegular() {
			return failed("file")
		}
	case v1.HostPathSocket:
		if !exists || info.Mode()&fs.ModeSocket == 0 {
			return failed("socket file")
		}
	case v1.HostPathCharDev:
		if !exists || info.Mode()&fs.ModeCharDevice == 0 {
			return failed("character device")
		}
	case v1.HostPathBlockDev:
		if !exists || info.Mode()&fs.ModeDevice == 0 || info.Mode()&fs.ModeCharDevice != 0 {
			return failed("block device")
		}
	default:
		return fmt.Errorf("hostPath type %q is not known", t)
	}
	return nil
}

// claimPath finds the host directory behind a persistentVolumeClaim volume:
// the claim must be bound to a local or hostPath persistent volume.
func (f fetcher) claimPath(ctx context.Context, claimName string) (string, error) {
	if f.client == nil {
		return "", fmt.Errorf("cannot read persistentvolumeclaim %q: no API client", claimName)
	}
	pvc, err := f.client.CoreV1().PersistentVolumeClaims(f.ns).Get(ctx, claimName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return "", fmt.Errorf("persistentvolumeclaim %q not found", claimName)
	case err != nil:
		return "", fmt.Errorf("get persistentvolumeclaim %s/%s: %w", f.ns, claimName, err)
	}
	if pvc.Status.Phase != v1.ClaimBound || pvc.Spec.VolumeName == "" {
		return "", fmt.Errorf("persistentvolumeclaim %q is not bound", claimName)
	}
	pvName := pvc.Spec.VolumeName
	pv, err := f.client.CoreV1().PersistentVolumes().Get(ctx, pvName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return "", fmt.Errorf("persistentvolume %q of claim %q not found", pvName, claimName)
	case err != nil:
		return "", fmt.Errorf("get persistentvolume %s: %w", pvName, err)
	}
	if ref := pv.Spec.ClaimRef; ref != nil && (ref.Namespace != pvc.Namespace || ref.Name != pvc.Name || (ref.UID != "" && ref.UID != pvc.UID)) {
		return "", fmt.Errorf("persistentvolume %q is bound to claim %s/%s, not to %s/%s", pvName, ref.Namespace, ref.Name, pvc.Namespace, pvc.Name)
	}
	switch {
	case pv.Spec.Local != nil:
		path := pv.Spec.Local.Path
		info, err := os.Stat(path)
		if err != nil {
			return "", fmt.Errorf("local persistentvolume %q: %w", pvName, err)
		}
		if !info.IsDir() {
			return "", fmt.Errorf("local persistentvolume %q: %s is not a directory", pvName, path)
		}
		return path, nil
	case pv.Spec.HostPath != nil:
		if err := checkHostPath(pv.Spec.HostPath.Path, pv.Spec.HostPath.Type); err != nil {
			return "", fmt.Errorf("persistentvolume %q: %w", pvName, err)
		}
		return pv.Spec.HostPath.Path, nil
	}
	return "", fmt.Errorf("persistentvolume %q is neither local nor hostPath, which is all Skiff can mount", pvName)
}
