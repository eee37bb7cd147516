#!/usr/bin/env bash
# A single-node Kubernetes cluster for the end-to-end suite, from the project's own pieces:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kubelet built from source at
# pinned versions (hack/build-control-plane.sh), containerd, runc and the CNI plugins from Debian's
# packages. Everything lives under $KSM_E2E_DIR (default /tmp/ksm-e2e) and `down` removes it,
# leaving the machine as it was (the Debian packages stay installed).
#
#   hack/e2e/cluster.sh up     # prints the kubeconfig path on its last line
#   hack/e2e/cluster.sh down
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DIR="${KSM_E2E_DIR:-/tmp/ksm-e2e}"
BIN="${ROOT}/bin/k8s/${KUBERNETES_VERSION:-v1.37.2}"
API_PORT="${KSM_E2E_API_PORT:-16443}"
ETCD_PORT="${KSM_E2E_ETCD_PORT:-12379}"
NODE="ksm-e2e-node"
SOCK="${DIR}/containerd/containerd.sock"

log() { echo "e2e-cluster: $*" >&2; }
die() { log "$*"; exit 1; }

port_free() { ! ss -ltn "sport = :$1" 2>/dev/null | grep -q LISTEN; }

prerequisites() {
  [[ "$(id -u)" == 0 ]] || die "must run as root (kubelet and containerd manage cgroups, mounts and network namespaces)"
  command -v ss >/dev/null || die "ss (iproute2) is missing"
  local p
  for p in "${API_PORT}" "${ETCD_PORT}" $((ETCD_PORT + 1)) 10248 10250 10257 10259 18080 18081; do
    port_free "$p" || die "port $p is already taken on this machine; stop what listens there (or run 'hack/e2e/cluster.sh down')"
  done
  if ! command -v containerd >/dev/null || ! command -v runc >/dev/null || [[ ! -x /usr/lib/cni/bridge ]]; then
    log "installing containerd, runc and the CNI plugins from Debian's packages"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq containerd runc containernetworking-plugins) >/dev/null \
      || die "containerd, runc or containernetworking-plugins could not be installed with apt-get"
  fi
  command -v openssl >/dev/null || die "openssl is missing (apt-get install openssl)"
  "${ROOT}/hack/build-control-plane.sh" --kubectl --node >/dev/null
}

certs() {
  local d="${DIR}/pki"
  mkdir -p "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ksm-e2e-ca" -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
  sign() { # name cn org sans
    local ext="$d/$1.ext"
    echo "basicConstraints=CA:FALSE" >"$ext"
    echo "keyUsage=digitalSignature,keyEncipherment" >>"$ext"
    echo "extendedKeyUsage=serverAuth,clientAuth" >>"$ext"
    [[ -n "$4" ]] && echo "subjectAltName=$4" >>"$ext"
    local subj="/CN=$2"
    [[ -n "$3" ]] && subj="/O=$3/CN=$2"
    openssl req -newkey rsa:2048 -nodes -subj "$subj" -keyout "$d/$1.key" -out "$d/$1.csr" 2>/dev/null
    openssl x509 -req -in "$d/$1.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 2 -extfile "$ext" -out "$d/$1.crt" 2>/dev/null
  }
  sign apiserver kube-apiserver "" "IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
  sign admin ksm-e2e-admin system:masters ""
  sign kubelet "system:node:${NODE}" system:nodes "IP:127.0.0.1,DNS:${NODE},DNS:localhost"
  openssl genrsa -out "$d/sa.key" 2048 2>/dev/null
  openssl rsa -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
}

kubeconfig() { # file cert key
  cat >"$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: ksm-e2e
  cluster: {server: "https://127.0.0.1:${API_PORT}", certificate-authority: "${DIR}/pki/ca.crt"}
users:
- name: u
  user: {client-certificate: "$2", client-key: "$3"}
contexts:
- name: ksm-e2e
  context: {cluster: ksm-e2e, user: u, namespace: default}
current-context: ksm-e2e
KC
}

start() { # name command...
  local name="$1"; shift
  "$@" >"${DIR}/logs/${name}.log" 2>&1 &
  echo $! >"${DIR}/pids/${name}"
}

wait_for() { # what seconds command...
  local what="$1" secs="$2"; shift 2
  local i
  for ((i = 0; i < secs * 2; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  die "${what} did not come up within ${secs}s; see ${DIR}/logs"
}

images() {
  # The pause image (the pod sandbox) and the images the suite runs, built from Go binaries.
  mkdir -p "${DIR}/images"
  (cd "${ROOT}" && CGO_ENABLED=0 go build -trimpath -o "${DIR}/images/pause" ./hack/pause)
  (cd "${ROOT}" && go run ./hack/image --binary "${DIR}/images/pause" --tag ksm-e2e/pause:1 --path /pause --user 65535:65535 --out "${DIR}/images/pause.tar")
  ctr --address "${SOCK}" -n k8s.io images import "${DIR}/images/pause.tar" >/dev/null
}

up() {
  prerequisites
  rm -rf "${DIR}"
  mkdir -p "${DIR}"/{logs,pids,etcd,containerd,kubelet,cni,cni-state,audit,pod-logs}
  # The kubelet and the bridge plugin change these; down puts them back.
  sysctl -n kernel.panic kernel.panic_on_oops vm.overcommit_memory net.ipv4.ip_forward >"${DIR}/sysctl.saved" 2>/dev/null || true
  certs
  kubeconfig "${DIR}/admin.kubeconfig" "${DIR}/pki/admin.crt" "${DIR}/pki/admin.key"
  kubeconfig "${DIR}/kubelet.kubeconfig" "${DIR}/pki/kubelet.crt" "${DIR}/pki/kubelet.key"

  log "starting etcd"
  start etcd "${BIN}/etcd" --data-dir "${DIR}/etcd" --listen-client-urls "http://127.0.0.1:${ETCD_PORT}" \
    --advertise-client-urls "http://127.0.0.1:${ETCD_PORT}" --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
    --unsafe-no-fsync
  wait_for etcd 30 curl -sf "http://127.0.0.1:${ETCD_PORT}/health"

  cat >"${DIR}/audit/policy.yaml" <<'AP'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    resources: [{group: "", resources: ["secrets"]}]
  - level: None
AP
  log "starting kube-apiserver"
  start kube-apiserver "${BIN}/kube-apiserver" --etcd-servers "http://127.0.0.1:${ETCD_PORT}" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "${API_PORT}" \
    --endpoint-reconciler-type none --service-cluster-ip-range 10.0.0.0/24 \
    --tls-cert-file "${DIR}/pki/apiserver.crt" --tls-private-key-file "${DIR}/pki/apiserver.key" \
    --client-ca-file "${DIR}/pki/ca.crt" --authorization-mode Node,RBAC \
    --service-account-key-file "${DIR}/pki/sa.pub" --service-account-signing-key-file "${DIR}/pki/sa.key" \
    --service-account-issuer https://kubernetes.default.svc \
    --kubelet-client-certificate "${DIR}/pki/admin.crt" --kubelet-client-key "${DIR}/pki/admin.key" \
    --kubelet-preferred-address-types InternalIP \
    --audit-policy-file "${DIR}/audit/policy.yaml" --audit-log-path "${DIR}/audit/audit.log"
  wait_for kube-apiserver 90 "${BIN}/kubectl" --kubeconfig "${DIR}/admin.kubeconfig" get --raw /readyz

  log "starting kube-controller-manager and kube-scheduler"
  start kube-controller-manager "${BIN}/kube-controller-manager" --kubeconfig "${DIR}/admin.kubeconfig" \
    --controllers '*,-nodeipam' --service-account-private-key-file "${DIR}/pki/sa.key" \
    --root-ca-file "${DIR}/pki/ca.crt" --bind-address 127.0.0.1 --leader-elect=false
  start kube-scheduler "${BIN}/kube-scheduler" --kubeconfig "${DIR}/admin.kubeconfig" --bind-address 127.0.0.1 --leader-elect=false

  log "starting containerd"
  cat >"${DIR}/containerd/config.toml" <<CT
version = 2
root = "${DIR}/containerd/root"
state = "${DIR}/containerd/state"
[grpc]
  address = "${SOCK}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "docker.io/ksm-e2e/pause:1"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${DIR}/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
CT
  cat >"${DIR}/cni/10-ksm-e2e.conflist" <<'CNI'
{"cniVersion": "0.4.0", "name": "ksm-e2e", "plugins": [
  {"type": "bridge", "bridge": "ksme2e0", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "dataDir": "DATADIR", "ranges": [[{"subnet": "10.244.77.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
CNI
  sed -i "s#DATADIR#${DIR}/cni-state#" "${DIR}/cni/10-ksm-e2e.conflist"
  start containerd containerd --config "${DIR}/containerd/config.toml"
  wait_for containerd 30 ctr --address "${SOCK}" version
  images

  log "starting kubelet"
  cat >"${DIR}/kubelet/config.yaml" <<KL
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://${SOCK}
syncFrequency: 5s
authentication:
  anonymous: {enabled: false}
  x509: {clientCAFile: "${DIR}/pki/ca.crt"}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
tlsCertFile: "${DIR}/pki/kubelet.crt"
tlsPrivateKeyFile: "${DIR}/pki/kubelet.key"
address: 127.0.0.1
healthzBindAddress: 127.0.0.1
resolvConf: ""
enforceNodeAllocatable: []
cgroupsPerQOS: false
podLogsDir: "${DIR}/pod-logs"
KL
  start kubelet "${BIN}/kubelet" --config "${DIR}/kubelet/config.yaml" --kubeconfig "${DIR}/kubelet.kubeconfig" \
    --root-dir "${DIR}/kubelet/root" --hostname-override "${NODE}" --node-ip 127.0.0.1
  local k=("${BIN}/kubectl" --kubeconfig "${DIR}/admin.kubeconfig")
  wait_for "node registration" 60 "${k[@]}" get node "${NODE}"
  # The kubelet refuses a loopback node IP, but the API server must reach it on 127.0.0.1 (for
  # logs and exec): give the node that InternalIP; the kubelet leaves addresses it cannot set alone.
  "${k[@]}" patch node "${NODE}" --subresource=status --type=merge \
    -p '{"status":{"addresses":[{"type":"InternalIP","address":"127.0.0.1"},{"type":"Hostname","address":"'"${NODE}"'"}]}}' >/dev/null
  wait_for "the node" 120 bash -c "'${BIN}/kubectl' --kubeconfig '${DIR}/admin.kubeconfig' get node '${NODE}' -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -q True"
  log "the cluster is up"
  echo "${DIR}/admin.kubeconfig"
}

down() {
  local name
  # Stop the pods' containers first, while containerd still answers.
  if [[ -S "${SOCK}" ]]; then
    local task
    for task in $(ctr --address "${SOCK}" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr --address "${SOCK}" -n k8s.io tasks kill -s SIGKILL "${task}" >/dev/null 2>&1 || true
    done
  fi
  for name in kubelet containerd kube-scheduler kube-controller-manager kube-apiserver etcd; do
    if [[ -f "${DIR}/pids/${name}" ]]; then
      kill "$(cat "${DIR}/pids/${name}")" 2>/dev/null || true
    fi
  done
  sleep 2
  for name in kubelet containerd kube-scheduler kube-controller-manager kube-apiserver etcd; do
    if [[ -f "${DIR}/pids/${name}" ]]; then
      kill -9 "$(cat "${DIR}/pids/${name}")" 2>/dev/null || true
    fi
  done
  # containerd's shims and the pods' processes, then mounts under the cluster's folder.
  local shim
  for shim in $(pgrep -f "containerd-shim-runc-v2 .*-address ${SOCK}" || true); do
    pkill -9 -P "${shim}" 2>/dev/null || true
    kill -9 "${shim}" 2>/dev/null || true
  done
  if [[ -d "${DIR}" ]]; then
    grep " ${DIR}" /proc/mounts | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  fi
  ip link delete ksme2e0 2>/dev/null || true
  # The kubelet's symlinks to our pods' logs (their folder is fixed at /var/log/containers).
  local link
  for link in /var/log/containers/*.log; do
    [[ -L "$link" && "$(readlink "$link")" == "${DIR}/"* ]] && rm -f "$link"
  done
  # Network namespaces containerd made for the pods.
  local ns
  for ns in /run/netns/cni-*; do
    [[ -e "$ns" ]] || continue
    umount "$ns" 2>/dev/null || true
    rm -f "$ns"
  done
  if [[ -s "${DIR}/sysctl.saved" ]]; then
    local keys=(kernel.panic kernel.panic_on_oops vm.overcommit_memory net.ipv4.ip_forward) i=0 v
    while read -r v; do
      sysctl -qw "${keys[$i]}=${v}" 2>/dev/null || true
      i=$((i + 1))
    done <"${DIR}/sysctl.saved"
  fi
  rm -rf "${DIR}"
  log "the cluster is down and ${DIR} removed"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
