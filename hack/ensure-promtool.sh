#!/usr/bin/env bash
# Makes sure bin/promtool runs: the chart's alert rules are checked and unit-tested with it
# (test/monitoring). promtool comes from Debian's prometheus package (2.42.0 on bookworm; nothing
# pinned beyond the release), installed as root when no promtool is on PATH or in /usr/bin —
# seconds, where building Prometheus's promtool from source takes a quarter of an hour on two
# cores. Exits non-zero, saying why, when none can be had, unless KSM_SKIP names promtool.
set -euo pipefail

log() { echo "ensure-promtool: $*" >&2; }
bin="${1:?usage: ensure-promtool.sh BIN_DIR}"

find_promtool() {
  local p
  for p in $(type -ap promtool) /usr/bin/promtool; do
    if [[ -x "${p}" ]] && "${p}" --version >/dev/null 2>&1; then
      echo "${p}"
      return 0
    fi
  done
  return 1
}

link() {
  mkdir -p "${bin}"
  ln -sf "$1" "${bin}/promtool"
  log "$1: $("$1" --version 2>&1 | head -1)"
}

if [[ -x "${bin}/promtool" ]] && "${bin}/promtool" --version >/dev/null 2>&1; then
  exit 0
fi
if p="$(find_promtool)"; then
  link "${p}"
  exit 0
fi
if [[ ",${KSM_SKIP:-}," == *,promtool,* ]]; then
  log "no promtool; KSM_SKIP=promtool, so the alert rule tests skip"
  exit 0
fi
if [[ "$(id -u)" != 0 ]]; then
  log "no promtool on PATH, and installing Debian's prometheus package needs root (or set KSM_SKIP=promtool)"
  exit 1
fi
log "installing Debian's prometheus package for promtool (its service is not started)"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
if ! p="$(find_promtool)"; then
  log "Debian's prometheus is installed but no promtool runs"
  exit 1
fi
link "${p}"
