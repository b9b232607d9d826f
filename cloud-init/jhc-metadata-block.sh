#!/bin/bash
# jhc-metadata-block: keep containers away from the cloud metadata service.
#
# Why: the metadata service hands out user_data and, on AWS, instance credentials to any
# local caller; user containers run arbitrary code. DOCKER-USER is the chain Docker keeps
# for its users and jumps to before its own FORWARD rules; the host itself is unaffected.
# iptables rules do not survive a reboot: a unit re-runs this after every docker start.
set -euo pipefail

log() { echo "jhc-metadata-block: $*" >&2; }

# DOCKER-USER appears once dockerd has set up its rules: give it a little time.
for _ in $(seq 1 30); do
  iptables -w -n -L DOCKER-USER >/dev/null 2>&1 && break
  sleep 1
done
iptables -w -n -L DOCKER-USER >/dev/null ||
  { log "ERROR: no DOCKER-USER chain (is dockerd running with iptables on?)"; exit 1; }

block() {  # block <iptables|ip6tables> <address>
  local ipt="$1"
  local -a rule=(-d "$2" -j REJECT)
  if ! "$ipt" -w -C DOCKER-USER "${rule[@]}" 2>/dev/null; then
    "$ipt" -w -I DOCKER-USER 1 "${rule[@]}"
    log "$ipt: rejecting forwarded traffic to $2"
  fi
}
block iptables 169.254.169.254/32
# AWS also serves IMDS on IPv6 (Nitro); only relevant when docker manages ip6tables.
if command -v ip6tables >/dev/null && ip6tables -w -n -L DOCKER-USER >/dev/null 2>&1; then
  block ip6tables fd00:ec2::254/128
fi
