// Package volumebinding binds PersistentVolumeClaims to PersistentVolumes,
// as Kubernetes' persistent volume controller does, and runs Skiff's
// built-in local-path provisioner.
//
// # The binder
//
// Binder keeps claims and volumes paired. A Pending claim is bound to the
// volume pre-bound to it (the volume's claimRef, or the claim's
// spec.volumeName), or else to the best Available volume of its class
// that is big enough, offers its access modes and volume mode, matches its
// selector and, once a node is selected, may be used on that node (fewest
// access modes, then smallest, wins). Binding writes the volume's claimRef
// and phase Bound, then the claim's volumeName, its annotations
// pv.kubernetes.io/bind-completed and (when the binder chose)
// pv.kubernetes.io/bound-by-controller, and its status (phase Bound,
// access modes, capacity).
//
// A claim whose class binds WaitForFirstConsumer waits (event
// WaitForFirstConsumer) until the scheduler writes the node of its first
// pod into volume.kubernetes.io/selected-node. A claim with no matching
// volume and a class with a provisioner is handed to that provisioner
// (annotation volume.kubernetes.io/storage-provisioner, event
// ExternalProvisioning). A claim without a class gets the default class
// when one exists (Kubernetes' retroactive assignment; the API server's
// admission normally does it on create).
//
// A volume whose claim is gone becomes Released and its reclaim policy
// applies: Retain keeps it; Delete leaves a provisioned volume to its
// provisioner (for local-path, the node agent's package agent/storage
// removes the directory and then the volume) and fails any other; Recycle
// is not supported. A bound claim whose volume vanished or belongs to
// another claim becomes Lost.
//
// Work is keyed "claim:<ns>/<name>", "volume:<name>", "class:<name>"
// (every unbound claim of a class) and "resync" (every 15s, unbound claims
// and volumes not Bound). Decisions are pure functions (planClaim,
// planVolume) of cached state; only releasing a volume asks the API first
// whether its claim is really gone.
//
// # The local-path provisioner
//
// Provisioner creates, at start, the StorageClass local-path (provisioner
// skiff.sh/local-path, WaitForFirstConsumer, reclaim Delete, the default
// unless another class is) if it does not exist, and then, for each claim
// handed to skiff.sh/local-path with a selected node, a volume
// pvc-<claim uid>: capacity and access modes from the claim, the class's
// reclaim policy, spec.local.path <base>/pvc-<uid>_<ns>_<name> where
// <base> is the node's skiff.sh/local-path-base annotation (set by its
// agent; /var/lib/skiff/agent/storage otherwise), node affinity
// kubernetes.io/hostname of that node, and a claimRef to the claim. The
// binder then binds the two. The directory itself is made and removed on
// the node by agent/storage.
//
// Package pvmatch holds the pure matching rules and the annotation names
// shared with the scheduler, the agent and the API server.
package volumebinding
