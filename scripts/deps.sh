#!/usr/bin/env bash
# Installs what building, running and testing Skiff need on Debian 12, and
# nothing that is already there. Idempotent; run as root (make deps).
set -euo pipefail

packages=(
  etcd-server   # a real external etcd for the storage and integration tests
  curl          # make run and the docs use it
  containerd    # the container runtime the agent starts and speaks CRI to
  runc          # containerd's OCI runtime
  containernetworking-plugins  # bridge, host-local, portmap, loopback
  nftables      # the agent's packet rules
  iptables      # the portmap CNI plugin programs hostPorts with it
  busybox-static  # the local busybox image is built from it
  nginx-light   # the local nginx image is built from Debian's nginx
  docker-registry # a registry on loopback for the image-pull tests
  iproute2      # network namespaces for multi-node tests
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "deps: need root to install packages" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Keep Debian from starting its own etcd service on the default ports:
  # tests start their own etcd processes on free ports.
  policy=/usr/sbin/policy-rc.d
  restore_policy=false
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod +x "$policy"
    restore_policy=true
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
  if $restore_policy; then rm -f "$policy"; fi
fi

# A distribution etcd started anyway (no policy-rc.d honoured) would hold
# 2379/2380; stop it so nothing surprises the tests.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet etcd 2>/dev/null; then
  systemctl disable --now etcd >/dev/null 2>&1 || true
fi
pkill -x -f '/usr/bin/etcd' 2>/dev/null || true
# Likewise Debian's own containerd, nginx and registry services: the agent
# starts its own containerd, and tests start their own registry.
for svc in containerd nginx docker-registry; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl disable --now "$svc" >/dev/null 2>&1 || true
  fi
done

command -v go >/dev/null 2>&1 || export PATH=$PATH:/usr/local/go/bin
go version >/dev/null
go mod download
echo "deps: ok"
