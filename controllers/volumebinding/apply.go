package volumebinding

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-sh/skiff/controllers/reconcile"
	"github.com/skiff-sh/skiff/controllers/volumebinding/pvmatch"
)

var (
	metaGet    = metav1.GetOptions{}
	metaUpdate = metav1.UpdateOptions{}
)

// applyClaim carries out a claim's plan. Every write is skipped when it
// would change nothing, so a converged claim costs no API calls.
func (b *Binder) applyClaim(ctx context.Context, c *corev1.PersistentVolumeClaim, p claimPlan) error {
	claims := b.client.CoreV1().PersistentVolumeClaims(c.Namespace)
	key := reconcile.Key(c.Namespace, c.Name)
	switch {
	case p.SetClass != "":
		c = c.DeepCopy()
		class := p.SetClass
		c.Spec.StorageClassName = &class
		if _, err := claims.Update(ctx, c, metaUpdate); err != nil {
			if apierrors.IsInvalid(err) || apierrors.IsForbidden(err) {
				// The API server does not allow assigning a class after
				// creation (its admission should have done it on
				// create): leave the claim without one.
				b.fixedClass.Store(c.UID, struct{}{})
				b.log.Info("cannot give a claim the default storage class", "claim", key, "class", class, "err", err)
				b.ctrl.Enqueue(claimPrefix + key)
				return nil
			}
			return fmt.Errorf("volumebinding: giving claim %s the default class %s: %w", key, class, err)
		}
		b.log.Info("assigned the default storage class", "claim", key, "class", class)
		return nil
	case p.Bind != nil:
		return b.bind(ctx, c, p.Bind)
	}
	if p.Provisioner != "" && (c.Annotations[pvmatch.AnnStorageProvisioner] != p.Provisioner || c.Annotations[pvmatch.AnnBetaStorageProvisioner] != p.Provisioner) {
		c = c.DeepCopy()
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations[pvmatch.AnnStorageProvisioner] = p.Provisioner
		c.Annotations[pvmatch.AnnBetaStorageProvisioner] = p.Provisioner
		updated, err := claims.Update(ctx, c, metaUpdate)
		if err != nil {
			return fmt.Errorf("volumebinding: naming the provisioner of claim %s: %w", key, err)
		}
		c = updated
	}
	changed := p.Phase != "" && c.Status.Phase != p.Phase
	if changed {
		c = c.DeepCopy()
		c.Status.Phase = p.Phase
		if p.Phase == corev1.ClaimPending {
			// A lost claim keeps what its volume gave it, as in
			// Kubernetes; a pending one has nothing.
			c.Status.AccessModes, c.Status.Capacity = nil, nil
		}
		updated, err := claims.UpdateStatus(ctx, c, metaUpdate)
		if err != nil {
			return fmt.Errorf("volumebinding: setting claim %s %s: %w", key, p.Phase, err)
		}
		c = updated
	}
	if p.Event != nil && (!p.OnChange || changed) {
		b.events.Event(c, p.Event.Type, p.Event.Reason, p.Event.Message)
	}
	return nil
}

// applyVolume carries out a volume's plan.
func (b *Binder) applyVolume(ctx context.Context, v *corev1.PersistentVolume, p volumePlan) error {
	vols := b.client.CoreV1().PersistentVolumes()
	if p.SyncClaim && v.Spec.ClaimRef != nil {
		b.ctrl.Enqueue(claimPrefix + reconcile.Key(v.Spec.ClaimRef.Namespace, v.Spec.ClaimRef.Name))
	}
	if p.Unbind || p.ForgetUID {
		v = v.DeepCopy()
		if p.Unbind {
			v.Spec.ClaimRef = nil
			delete(v.Annotations, pvmatch.AnnBoundByController)
		} else {
			v.Spec.ClaimRef.UID = ""
			v.Spec.ClaimRef.ResourceVersion = ""
		}
		updated, err := vols.Update(ctx, v, metaUpdate)
		if err != nil {
			return fmt.Errorf("volumebinding: unbinding volume %s: %w", v.Name, err)
		}
		v = updated
	}
	changed := false
	if p.Phase != "" && (v.Status.Phase != p.Phase || v.Status.Message != p.Message) {
		var err error
		changed = v.Status.Phase != p.Phase
		if v, err = b.setVolumePhase(ctx, v, p.Phase, p.Message); err != nil {
			return err
		}
		if changed {
			b.log.Info("volume phase", "volume", v.Name, "phase", p.Phase)
		}
	}
	if p.Event != nil && changed {
		b.events.Event(v, p.Event.Type, p.Event.Reason, p.Event.Message)
	}
	return nil
}

// setVolumePhase records a volume's phase and message.
func (b *Binder) setVolumePhase(ctx context.Context, v *corev1.PersistentVolume, phase corev1.PersistentVolumePhase, msg string) (*corev1.PersistentVolume, error) {
	v = v.DeepCopy()
	if v.Status.Phase != phase {
		now := metav1.NewTime(b.opts.Clock.Now())
		v.Status.LastPhaseTransitionTime = &now
	}
	v.Status.Phase, v.Status.Message = phase, msg
	updated, err := b.client.CoreV1().PersistentVolumes().UpdateStatus(ctx, v, metaUpdate)
	if err != nil {
		return nil, fmt.Errorf("volumebinding: setting volume %s %s: %w", v.Name, phase, err)
	}
	return updated, nil
}

// bind binds claim c and volume v to each other, in Kubernetes' order:
// the volume's claimRef, the volume's phase, the claim's volumeName and
// annotations, the claim's status. Each step is skipped when done, so an
// interrupted bind resumes where it stopped.
func (b *Binder) bind(ctx context.Context, c *corev1.PersistentVolumeClaim, v *corev1.PersistentVolume) error {
	key := reconcile.Key(c.Namespace, c.Name)
	if !volumeRefersTo(v, c) {
		setByUs := !pvmatch.BoundToClaim(v, c)
		v = v.DeepCopy()
		v.Spec.ClaimRef = &corev1.ObjectReference{
			Kind: "PersistentVolumeClaim", APIVersion: "v1",
			Namespace: c.Namespace, Name: c.Name, UID: c.UID, ResourceVersion: c.ResourceVersion,
		}
		if setByUs {
			metav1.SetMetaDataAnnotation(&v.ObjectMeta, pvmatch.AnnBoundByController, "yes")
		}
		updated, err := b.client.CoreV1().PersistentVolumes().Update(ctx, v, metaUpdate)
		if err != nil {
			return fmt.Errorf("volumebinding: binding volume %s to claim %s: %w", v.Name, key, err)
		}
		v = updated
	}
	if v.Status.Phase != corev1.VolumeBound || v.Status.Message != "" {
		var err error
		if v, err = b.setVolumePhase(ctx, v, corev1.VolumeBound, ""); err != nil {
			return err
		}
	}
	claims := b.client.CoreV1().PersistentVolumeClaims(c.Namespace)
	if c.Spec.VolumeName != v.Name || !metav1.HasAnnotation(c.ObjectMeta, pvmatch.AnnBindCompleted) {
		c = c.DeepCopy()
		if c.Spec.VolumeName != v.Name {
			if c.Spec.VolumeName != "" {
				return reconcile.Terminal(errors.New("volumebinding: claim " + key + " names volume " + c.Spec.VolumeName + ", not " + v.Name))
			}
			c.Spec.VolumeName = v.Name
			metav1.SetMetaDataAnnotation(&c.ObjectMeta, pvmatch.AnnBoundByController, "yes")
		}
		metav1.SetMetaDataAnnotation(&c.ObjectMeta, pvmatch.AnnBindCompleted, "yes")
		updated, err := claims.Update(ctx, c, metaUpdate)
		if err != nil {
			return fmt.Errorf("volumebinding: binding claim %s to volume %s: %w", key, v.Name, err)
		}
		c = updated
	}
	want := corev1.PersistentVolumeClaimStatus{
		Phase:       corev1.ClaimBound,
		AccessModes: v.Spec.AccessModes,
		Capacity:    corev1.ResourceList{corev1.ResourceStorage: v.Spec.Capacity[corev1.ResourceStorage]},
	}
	if c.Status.Phase != want.Phase || !apiequality.Semantic.DeepEqual(c.Status.AccessModes, want.AccessModes) ||
		!apiequality.Semantic.DeepEqual(c.Status.Capacity, want.Capacity) {
		wasBound := c.Status.Phase == corev1.ClaimBound
		c = c.DeepCopy()
		c.Status.Phase, c.Status.AccessModes, c.Status.Capacity = want.Phase, want.AccessModes, want.Capacity
		if _, err := claims.UpdateStatus(ctx, c, metaUpdate); err != nil {
			return fmt.Errorf("volumebinding: setting claim %s Bound: %w", key, err)
		}
		if !wasBound {
			b.log.Info("bound", "claim", key, "volume", v.Name)
		}
	}
	return nil
}

// volumeRefersTo reports whether a volume's claimRef names exactly this
// claim, UID included.
func volumeRefersTo(v *corev1.PersistentVolume, c *corev1.PersistentVolumeClaim) bool {
	ref := v.Spec.ClaimRef
	return ref != nil && ref.Namespace == c.Namespace && ref.Name == c.Name && ref.UID == c.UID
}
