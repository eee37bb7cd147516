#!/usr/bin/env bash
# The end-to-end run: a local single-node cluster (hack/e2e/cluster.sh), the operator and test
# images built without Docker and loaded into containerd, the chart installed with Helm, then the
# suite in test/e2e; everything is torn down afterwards.
#
#   hack/e2e/run.sh          # make e2e: up, install, test, down (KSM_E2E_RUN=regexp: only those tests)
#   hack/e2e/run.sh up       # make dev-cluster: up and install, then leave it running
#   hack/e2e/run.sh down     # make dev-cluster-down
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DIR="${KSM_E2E_DIR:-/tmp/ksm-e2e}"
BIN="${ROOT}/bin/k8s/${KUBERNETES_VERSION:-v1.37.2}"
HELM="${ROOT}/bin/helm"
API_PORT="${KSM_E2E_API_PORT:-16443}"
# The namespace and the secret of the chart's example workload (test/e2e/sdkclient).
API_NS="ksm-e2e-api"
API_SECRET="app-config"
mode="${1:-test}"

log() { echo "e2e: $*" >&2; }

if [[ "${mode}" == down ]]; then
  "${ROOT}/hack/e2e/cluster.sh" down
  exit 0
fi

"${ROOT}/hack/ensure-databases.sh"
if [[ "${mode}" == test ]]; then
  # Set before the cluster starts, so a failure half-way still tears everything down.
  trap '"${ROOT}/hack/e2e/cluster.sh" down' EXIT
fi
kubeconfig="$("${ROOT}/hack/e2e/cluster.sh" up | tail -1)"

log "building the images"
sock="${DIR}/containerd/containerd.sock"
(cd "${ROOT}" && CGO_ENABLED=0 go build -trimpath -o "${DIR}/images/kube-secrets-manager" . \
  && CGO_ENABLED=0 go build -trimpath -o "${DIR}/images/consumer" ./test/e2e/consumer \
  && CGO_ENABLED=0 go build -trimpath -o "${DIR}/images/sdkclient" ./test/e2e/sdkclient \
  && go run ./hack/image --binary "${DIR}/images/kube-secrets-manager" --tag kube-secrets-manager:e2e --path /kube-secrets-manager --out "${DIR}/images/operator.tar" \
  && go run ./hack/image --binary "${DIR}/images/consumer" --tag ksm-e2e/consumer:e2e --path /consumer --out "${DIR}/images/consumer.tar" \
  && go run ./hack/image --binary "${DIR}/images/sdkclient" --tag ksm-e2e/sdkclient:e2e --path /sdkclient --out "${DIR}/images/sdkclient.tar")
for image in operator consumer sdkclient; do
  ctr --address "${sock}" -n k8s.io images import "${DIR}/images/${image}.tar" >/dev/null
done

log "installing the chart"
# The local cluster has no kube-proxy, so the operator uses the host network and reaches the API
# server on loopback. The chart's example workload (an unmodified AWS SDK program reading
# ${API_SECRET} through the operator's AWS API) runs in ${API_NS}; with neither Services nor DNS
# here it uses the host network too and finds the API's Service name on loopback.
"${BIN}/kubectl" --kubeconfig "${kubeconfig}" create namespace "${API_NS}" >/dev/null
"${HELM}" install kube-secrets-manager "${ROOT}/charts/kube-secrets-manager" --kubeconfig "${kubeconfig}" \
  --namespace kube-secrets-manager --create-namespace \
  --set image.tag=e2e --set image.pullPolicy=Never \
  --set hostNetwork=true --set probePort=18081 --set metrics.port=18080 --set rotationPods.allowHostNetwork=true \
  --set-json "env=[{\"name\":\"KUBERNETES_SERVICE_HOST\",\"value\":\"127.0.0.1\"},{\"name\":\"KUBERNETES_SERVICE_PORT\",\"value\":\"${API_PORT}\"}]" \
  --set api.exampleWorkload.enabled=true --set api.exampleWorkload.namespace="${API_NS}" \
  --set api.exampleWorkload.secretName="${API_SECRET}" \
  --set api.exampleWorkload.image.repository=ksm-e2e/sdkclient --set api.exampleWorkload.image.tag=e2e \
  --set api.exampleWorkload.image.pullPolicy=Never --set api.exampleWorkload.hostNetwork=true \
  --set-json 'api.exampleWorkload.hostAliases=[{"ip":"127.0.0.1","hostnames":["kube-secrets-manager-api.kube-secrets-manager.svc"]}]' \
  --wait --timeout 180s >/dev/null

if [[ "${mode}" == up ]]; then
  cat <<MSG

A single-node cluster runs kube-secrets-manager (installed with Helm).

  export KUBECONFIG=${kubeconfig}
  export PATH=${BIN}:\$PATH

Pods that must reach PostgreSQL or MariaDB on this machine use hostNetwork (and RotationPolicy
spec.pod.hostNetwork). The chart's example workload in namespace ${API_NS} reads the secret
${API_SECRET} there through the AWS API (create it to see it succeed). Stop it all with:
make dev-cluster-down
MSG
  exit 0
fi

log "running the suite"
cd "${ROOT}"
KSM_E2E_KUBECONFIG="${kubeconfig}" KSM_E2E_AUDIT_LOG="${DIR}/audit/audit.log" \
  KSM_E2E_API_NAMESPACE="${API_NS}" KSM_E2E_API_SECRET="${API_SECRET}" \
  go test -tags e2e ./test/e2e -count=1 -v -timeout 15m ${KSM_E2E_RUN:+-run "${KSM_E2E_RUN}"}
"${HELM}" uninstall kube-secrets-manager --kubeconfig "${kubeconfig}" --namespace kube-secrets-manager >/dev/null
