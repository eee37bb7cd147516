#!/usr/bin/env bash
# Builds kube-apiserver, etcd (and, with --node, the other node binaries) from the Go module
# proxy at pinned versions. No prebuilt Kubernetes binary can be downloaded on our machines, so
# we compile them from source once and cache them per user in $KSM_CACHE_DIR (default
# ~/.cache/kube-secrets-manager), so a fresh clone on the same machine does not rebuild, and link
# them into bin/k8s/<version>/ (ignored by git).
#
# Usage: hack/build-control-plane.sh [--kubectl] [--node]
# Prints the folder holding the binaries (usable as KUBEBUILDER_ASSETS) on its last line.
set -euo pipefail

KUBERNETES_VERSION="${KUBERNETES_VERSION:-v1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-v3.7.3}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${KSM_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME}/.cache}/kube-secrets-manager}"
OUT="${CACHE}/k8s/${KUBERNETES_VERSION}"
WORK="${CACHE}/k8s/build"
LINK="${ROOT}/bin/k8s/${KUBERNETES_VERSION}"

binaries=(kube-apiserver)
for arg in "$@"; do
  case "${arg}" in
    --kubectl) binaries+=(kubectl) ;;
    --node) binaries+=(kube-controller-manager kube-scheduler kubelet) ;;
    *) echo "build-control-plane: unknown argument ${arg}" >&2; exit 2 ;;
  esac
done

mkdir -p "${OUT}" "${WORK}"

log() { echo "build-control-plane: $*" >&2; }

# A wrapper module: k8s.io/kubernetes points its staging modules at ./staging/..., which a module
# download does not have; we replace each with the published module of the matching version.
build_kubernetes() {
  local mod="${WORK}/kubernetes-${KUBERNETES_VERSION}"
  if [[ ! -f "${mod}/go.mod" ]]; then
    log "preparing wrapper module for k8s.io/kubernetes ${KUBERNETES_VERSION}"
    mkdir -p "${mod}"
    local gomod staging_version
    gomod="$(cd "${mod}" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@${KUBERNETES_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
    staging_version="v0.${KUBERNETES_VERSION#v1.}"
    {
      echo "module kube-secrets-manager.io/hack/kubernetes"
      echo
      grep -E '^go [0-9]' "${gomod}"
      echo
      echo "require k8s.io/kubernetes ${KUBERNETES_VERSION}"
      echo
      grep -E '^\s*k8s\.io/[^ ]+ => \./staging/src/' "${gomod}" \
        | awk -v v="${staging_version}" '{print "replace " $1 " => " $1 " " v}'
    } >"${mod}/go.mod.tmp"
    mv "${mod}/go.mod.tmp" "${mod}/go.mod"
  fi
  local b
  for b in "$@"; do
    if [[ -x "${OUT}/${b}" ]]; then continue; fi
    log "building ${b} ${KUBERNETES_VERSION} (the first build takes several minutes)"
    (cd "${mod}" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -o "${OUT}/${b}.tmp" "k8s.io/kubernetes/cmd/${b}")
    mv "${OUT}/${b}.tmp" "${OUT}/${b}"
  done
}

build_etcd() {
  [[ -x "${OUT}/etcd" ]] && return 0
  local mod="${WORK}/etcd-${ETCD_VERSION}"
  mkdir -p "${mod}"
  log "building etcd ${ETCD_VERSION}"
  cat >"${mod}/go.mod" <<MOD
module kube-secrets-manager.io/hack/etcd

go 1.26

require go.etcd.io/etcd/server/v3 ${ETCD_VERSION}
MOD
  cat >"${mod}/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  (cd "${mod}" && GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 || true)
  (cd "${mod}" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -o "${OUT}/etcd.tmp" .)
  mv "${OUT}/etcd.tmp" "${OUT}/etcd"
}

build_etcd
build_kubernetes "${binaries[@]}"
mkdir -p "${LINK}"
for b in etcd "${binaries[@]}"; do
  ln -sf "${OUT}/${b}" "${LINK}/${b}"
done
echo "${LINK}"
