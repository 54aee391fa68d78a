#!/usr/bin/env bash
# Prints the -ldflags value for building bin/skiff: the embedded kubectl's
# version, taken from the k8s.io/api version in go.mod (v0.M.P serves
# Kubernetes v1.M.P), so `skiff kubectl version` reports a real version.
set -euo pipefail
cd "$(dirname "$0")/.."
v=$(awk '$1 == "k8s.io/api" { print $2; exit }' go.mod)
minor=$(echo "$v" | cut -d. -f2)
patch=$(echo "$v" | cut -d. -f3)
pkg=k8s.io/component-base/version
echo "-s -w -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitVersion=v1.$minor.$patch -X $pkg.gitTreeState=clean"
