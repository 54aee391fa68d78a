// Package storage is the node agent's half of local-path volumes: it keeps
// the directories of the skiff.sh/local-path volumes of its node.
//
// The controller manager's provisioner (controllers/volumebinding) creates
// a PersistentVolume pvc-<uid> with spec.local.path under the base
// directory the node announces (annotation skiff.sh/local-path-base,
// BaseDir of the agent's data dir) and node affinity to this node. Manager
// watches PersistentVolumes and:
//
//   - creates the directory (mode 0777, so any container user can write)
//     as soon as such a volume exists, before a pod needs it;
//   - once the volume is Released with reclaim policy Delete, and no pod of
//     this node still uses its claim, removes the directory and then
//     deletes the PersistentVolume.
//
// It only ever creates or removes direct children of its base directory,
// never follows a symlink there, and leaves Retain volumes (and their
// data) alone.
package storage
