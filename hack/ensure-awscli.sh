#!/usr/bin/env bash
# Makes sure the AWS CLI v2 that controllers/awsapi_cli_test.go runs against the API is installed:
# Debian's awscli package (2.9.x on bookworm, nothing pinned beyond it), installed as root when no
# `aws` of version 2 is on PATH or in /usr/bin. A version-1 `aws` (pip's, say) does not count. Exits
# non-zero, saying why, when none can be installed, unless KSM_SKIP names awscli.
set -euo pipefail

log() { echo "ensure-awscli: $*" >&2; }

# The first `aws` of version 2 on PATH, else Debian's in /usr/bin.
find_v2() {
  local a
  for a in $(type -ap aws) /usr/bin/aws; do
    if [[ -x "${a}" ]] && "${a}" --version 2>/dev/null | grep -q '^aws-cli/2\.'; then
      echo "${a}"
      return 0
    fi
  done
  return 1
}

if aws="$(find_v2)"; then
  log "${aws}: $("${aws}" --version 2>&1)"
  exit 0
fi
if [[ ",${KSM_SKIP:-}," == *,awscli,* ]]; then
  log "no AWS CLI v2; KSM_SKIP=awscli, so the tests that run it skip"
  exit 0
fi
if [[ "$(id -u)" != 0 ]]; then
  log "no AWS CLI v2 on PATH, and installing Debian's awscli needs root (or set KSM_SKIP=awscli)"
  exit 1
fi
log "installing Debian's awscli"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends awscli >/dev/null
if ! aws="$(find_v2)"; then
  log "Debian's awscli is installed but no aws of version 2 runs"
  exit 1
fi
log "${aws}: $("${aws}" --version 2>&1)"
