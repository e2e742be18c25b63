#!/usr/bin/env bash
# Provide a local Docker Engine and Compose v2, confined to this machine.
# Idempotent: installs only what is missing, starts dockerd only if it is not answering.
set -euo pipefail

log() { printf '[engine] %s\n' "$*"; }
apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then apt-get update -q >/dev/null; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

if ! command -v dockerd >/dev/null; then
  log "installing Docker Engine (docker.io)"
  apt_install docker.io
fi
# npm: `invoke images` installs redis-commander from its npm package into the build context.
# tmux: the e2e test of `invoke top` runs it in a real terminal.
for tool in mmdebstrap mvn cc npm tmux; do
  if ! command -v "$tool" >/dev/null; then
    log "installing $tool"
    case "$tool" in mvn) apt_install maven ;; cc) apt_install gcc libc6-dev ;; *) apt_install "$tool" ;; esac
  fi
done

# Keep every container packet on this machine: no forwarding, no NAT rules.
sysctl -q -w net.ipv4.ip_forward=0

if ! docker info >/dev/null 2>&1; then
  log "starting dockerd (--iptables=false --ip-forward=false)"
  mkdir -p /var/log
  nohup dockerd --iptables=false --ip-forward=false >/var/log/mqlab-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { log "dockerd did not answer within 60 s; see /var/log/mqlab-dockerd.log"; exit 1; }
fi
log "engine $(docker version --format '{{.Server.Version}}')"
