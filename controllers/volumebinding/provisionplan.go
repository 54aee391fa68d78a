package volumebinding

import (
	"fmt"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-sh/skiff/controllers/volumebinding/pvmatch"
)

// Event reasons of the provisioner, as external provisioners record them.
const (
	ReasonProvisioning          = "Provisioning"
	ReasonProvisioningSucceeded = "ProvisioningSucceeded"
)

// maxDirName bounds a volume directory's name (most filesystems allow 255
// bytes per name).
const maxDirName = 255

// provisionInput is what the provisioner observed about one claim.
type provisionInput struct {
	Claim *corev1.PersistentVolumeClaim
	// Class is the claim's class, nil if it names none or it is gone.
	Class *storagev1.StorageClass
	// Node is the selected node, nil if none is selected or it is gone.
	Node *corev1.Node
	// Exists says the claim's volume (pvc-<uid>) exists already.
	Exists bool
	// DefaultBase is the base directory of nodes that do not announce one.
	DefaultBase string
}

// provisionPlan is what the provisioner does about one claim: create
// Volume, or record Fail (and, when Unselect, drop the selected-node
// annotation so the scheduler chooses again). The zero plan does nothing.
type provisionPlan struct {
	Volume   *corev1.PersistentVolume
	Fail     string
	Unselect bool
}

// planProvision decides whether a claim needs a local-path volume now.
// It acts only on claims of a class provisioned by skiff.sh/local-path
// that the binder handed to that provisioner (storage-provisioner
// annotation) and that have no volume yet.
func planProvision(in provisionInput) provisionPlan {
	c, sc := in.Claim, in.Class
	if c.DeletionTimestamp != nil || c.Spec.VolumeName != "" || in.Exists ||
		sc == nil || sc.Provisioner != pvmatch.LocalPathProvisioner ||
		(c.Annotations[pvmatch.AnnStorageProvisioner] != pvmatch.LocalPathProvisioner &&
			c.Annotations[pvmatch.AnnBetaStorageProvisioner] != pvmatch.LocalPathProvisioner) {
		return provisionPlan{}
	}
	selected := c.Annotations[pvmatch.AnnSelectedNode]
	switch {
	case selected == "" && pvmatch.WaitsForConsumer(sc):
		return provisionPlan{}
	case selected == "":
		return provisionPlan{Fail: fmt.Sprintf("%s needs a node: use volumeBindingMode WaitForFirstConsumer in storage class %q", pvmatch.LocalPathProvisioner, sc.Name)}
	case in.Node == nil:
		return provisionPlan{Fail: fmt.Sprintf("selected node %q not found", selected), Unselect: true}
	case c.Spec.VolumeMode != nil && *c.Spec.VolumeMode != corev1.PersistentVolumeFilesystem:
		return provisionPlan{Fail: fmt.Sprintf("%s provisions only Filesystem volumes", pvmatch.LocalPathProvisioner)}
	case c.Spec.DataSource != nil || c.Spec.DataSourceRef != nil:
		return provisionPlan{Fail: fmt.Sprintf("%s cannot fill a volume from a data source", pvmatch.LocalPathProvisioner)}
	}
	return provisionPlan{Volume: localVolume(c, sc, in.Node, in.DefaultBase)}
}

// VolumeName is the name of the volume provisioned for a claim.
func VolumeName(c *corev1.PersistentVolumeClaim) string { return "pvc-" + string(c.UID) }

// NodeBase is the directory under which node keeps local-path volumes:
// the absolute path it announces, or def.
func NodeBase(node *corev1.Node, def string) string {
	if b := node.Annotations[pvmatch.AnnLocalPathBase]; b != "" && filepath.IsAbs(b) {
		return filepath.Clean(b)
	}
	return def
}

// VolumeDir is a claim's directory name under the base:
// pvc-<uid>_<namespace>_<name>, cut to fit one path element.
func VolumeDir(c *corev1.PersistentVolumeClaim) string {
	d := fmt.Sprintf("%s_%s_%s", VolumeName(c), c.Namespace, c.Name)
	if len(d) > maxDirName {
		d = d[:maxDirName]
	}
	return d
}

// localVolume is the volume provisioned for claim c of class sc on node.
func localVolume(c *corev1.PersistentVolumeClaim, sc *storagev1.StorageClass, node *corev1.Node, defaultBase string) *corev1.PersistentVolume {
	host := node.Labels[corev1.LabelHostname]
	if host == "" {
		host = node.Name
	}
	policy := corev1.PersistentVolumeReclaimDelete
	if sc.ReclaimPolicy != nil {
		policy = *sc.ReclaimPolicy
	}
	fs := corev1.PersistentVolumeFilesystem
	size := c.Spec.Resources.Requests[corev1.ResourceStorage]
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name: VolumeName(c),
			Annotations: map[string]string{
				pvmatch.AnnProvisionedBy: pvmatch.LocalPathProvisioner,
				pvmatch.AnnLocalPathNode: node.Name,
			},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: size.DeepCopy()},
			AccessModes:                   append([]corev1.PersistentVolumeAccessMode(nil), c.Spec.AccessModes...),
			PersistentVolumeReclaimPolicy: policy,
			StorageClassName:              sc.Name,
			MountOptions:                  append([]string(nil), sc.MountOptions...),
			VolumeMode:                    &fs,
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				Local: &corev1.LocalVolumeSource{Path: filepath.Join(NodeBase(node, defaultBase), VolumeDir(c))},
			},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{
					Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{host},
				}},
			}}}},
			ClaimRef: &corev1.ObjectReference{
				Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: c.Namespace, Name: c.Name, UID: c.UID, ResourceVersion: c.ResourceVersion,
			},
		},
	}
}

// LocalPathClass is the built-in StorageClass: local-path, the default,
// provisioned by skiff.sh/local-path, bound when first used, deleted with
// its claim.
func LocalPathClass() *storagev1.StorageClass {
	mode := storagev1.VolumeBindingWaitForFirstConsumer
	policy := corev1.PersistentVolumeReclaimDelete
	return &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{
			Name:        pvmatch.LocalPathClass,
			Annotations: map[string]string{pvmatch.AnnDefaultClass: "true"},
		},
		Provisioner:       pvmatch.LocalPathProvisioner,
		ReclaimPolicy:     &policy,
		VolumeBindingMode: &mode,
	}
}
