package pvmatch

import (
	"errors"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// BoundToClaim reports whether a volume's claimRef names the claim: same
// namespace and name, and the claim's UID or none (a volume pre-bound by
// name only).
func BoundToClaim(v *corev1.PersistentVolume, c *corev1.PersistentVolumeClaim) bool {
	ref := v.Spec.ClaimRef
	if ref == nil || ref.Namespace != c.Namespace || ref.Name != c.Name {
		return false
	}
	return ref.UID == "" || ref.UID == c.UID
}

// Request is the storage a claim asks for (zero when it does not say).
func Request(c *corev1.PersistentVolumeClaim) int64 {
	q := c.Spec.Resources.Requests[corev1.ResourceStorage]
	return q.Value()
}

// Capacity is a volume's storage capacity.
func Capacity(v *corev1.PersistentVolume) int64 {
	q := v.Spec.Capacity[corev1.ResourceStorage]
	return q.Value()
}

func volumeMode(m *corev1.PersistentVolumeMode) corev1.PersistentVolumeMode {
	if m == nil {
		return corev1.PersistentVolumeFilesystem
	}
	return *m
}

// HasAccessModes reports whether a volume offers every access mode the
// claim asks for.
func HasAccessModes(v *corev1.PersistentVolume, c *corev1.PersistentVolumeClaim) bool {
	for _, m := range c.Spec.AccessModes {
		if !slices.Contains(v.Spec.AccessModes, m) {
			return false
		}
	}
	return true
}

// Satisfies says why a volume cannot serve a claim that names it in
// spec.volumeName (nil when it can): too small, another class, another
// volume mode, or missing access modes.
func Satisfies(v *corev1.PersistentVolume, c *corev1.PersistentVolumeClaim) error {
	switch {
	case Capacity(v) < Request(c):
		return errors.New("requested PV is too small")
	case VolumeClass(v) != ClaimClass(c):
		return errors.New("storageClassName does not match")
	case volumeMode(v.Spec.VolumeMode) != volumeMode(c.Spec.VolumeMode):
		return errors.New("incompatible volumeMode")
	case !HasAccessModes(v, c):
		return errors.New("incompatible accessMode")
	}
	return nil
}

// Match finds the volume to bind a claim to, or nil. A volume pre-bound
// to the claim (claimRef) wins if it is big enough, of the claim's volume
// mode and access modes, not being deleted, and (when node is given)
// allowed on node. Otherwise the candidates are Available volumes with
// no claimRef, of the claim's class, big enough, of its volume mode,
// offering its access modes, matching its selector and, when node is
// given, allowed on node; the one with the fewest access modes, then the
// smallest, then the first by name is chosen. delay (a WaitForFirstConsumer
// claim whose node is not chosen yet) admits pre-bound volumes only.
func Match(c *corev1.PersistentVolumeClaim, volumes []*corev1.PersistentVolume, node *corev1.Node, delay bool) *corev1.PersistentVolume {
	req := Request(c)
	class := ClaimClass(c)
	mode := volumeMode(c.Spec.VolumeMode)
	var sel labels.Selector
	if c.Spec.Selector != nil {
		s, err := metav1.LabelSelectorAsSelector(c.Spec.Selector)
		if err != nil {
			sel = labels.Nothing()
		} else {
			sel = s
		}
	}
	var best *corev1.PersistentVolume
	for _, v := range volumes {
		prebound := BoundToClaim(v, c)
		switch {
		case v.Spec.ClaimRef != nil && !prebound,
			Capacity(v) < req,
			volumeMode(v.Spec.VolumeMode) != mode,
			v.DeletionTimestamp != nil,
			!HasAccessModes(v, c):
			continue
		}
		allowed := node == nil || NodeAllowed(v, node)
		if prebound {
			if !allowed {
				return nil
			}
			return v
		}
		switch {
		case delay && node == nil,
			v.Status.Phase != corev1.VolumeAvailable,
			sel != nil && !sel.Matches(labels.Set(v.Labels)),
			VolumeClass(v) != class,
			!allowed:
			continue
		}
		if best == nil || better(v, best) {
			best = v
		}
	}
	return best
}

// better orders candidate volumes: fewer access modes, then smaller, then
// by name.
func better(a, b *corev1.PersistentVolume) bool {
	if la, lb := len(a.Spec.AccessModes), len(b.Spec.AccessModes); la != lb {
		return la < lb
	}
	if ca, cb := Capacity(a), Capacity(b); ca != cb {
		return ca < cb
	}
	return a.Name < b.Name
}
