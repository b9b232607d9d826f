#!/bin/bash
# jhc-worker-setup: turn a fresh VM into a swarm worker of the main host. Idempotent.
#
# Order matters as on the main host: the user data (homes, shared, datasets) is mounted from the
# main host over NFSv4 first, at the same paths, and only then is Docker installed and started
# (its unit requires those mounts). The main host exports them once the worker's address is
# known, which may be after this VM booted: the mounts are retried until JHC_NFS_TIMEOUT.
# Joining the swarm is not done here: the join token is a secret and arrives over SSH later.
set -euo pipefail

JHC_ENV_FILE="${JHC_ENV_FILE:-/etc/jupyterhub-cloud/worker.env}"
# shellcheck source=/dev/null
source "$JHC_ENV_FILE"
: "${JHC_ADMIN_USER:?}" "${JHC_DATA_DIR:?}" "${JHC_MANAGER_ADDRESS:?}"
FSTAB="${JHC_FSTAB:-/etc/fstab}"
MOUNTS="${JHC_NFS_MOUNTS:-/etc/jupyterhub-cloud/nfs.fstab}"
TIMEOUT="${JHC_NFS_TIMEOUT:-1800}"
SKIP_MOUNT="${JHC_SKIP_MOUNT:-0}"   # 1: fstab only, for tests (this kernel may lack nfs)
SKIP_DOCKER="${JHC_SKIP_DOCKER:-0}" # 1: stop after the mounts, for tests

log() { echo "jhc-worker-setup: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Our fstab lines replace any older line for the same mount points (e.g. an old manager address).
touch "$FSTAB"
tmp="$(mktemp "$FSTAB.XXXXXX")"
# shellcheck disable=SC2016  # awk program
awk 'NR == FNR { if ($1 !~ /^#/ && NF) ours[$2] = 1; next } !($2 in ours)' "$MOUNTS" "$FSTAB" >"$tmp"
grep -v '^#' "$MOUNTS" | grep . >>"$tmp"
chmod 0644 "$tmp"
if cmp -s "$tmp" "$FSTAB"; then rm -f "$tmp"; else mv "$tmp" "$FSTAB"; log "fstab: NFS mounts from $JHC_MANAGER_ADDRESS"; fi

mapfile -t points < <(awk '$1 !~ /^#/ && NF { print $2 }' "$MOUNTS")
for point in "${points[@]}"; do mkdir -p "$point"; done
if [[ "$SKIP_MOUNT" != 1 ]]; then
  command -v systemctl >/dev/null && [[ -d /run/systemd/system ]] && systemctl daemon-reload
  deadline=$((SECONDS + TIMEOUT))
  for point in "${points[@]}"; do
    until mountpoint -q "$point" || mount "$point"; do
      ((SECONDS < deadline)) ||
        die "$point not mounted from $JHC_MANAGER_ADDRESS within ${TIMEOUT}s (is it exported to this worker?)"
      sleep 10
    done
  done
  log "mounted: ${points[*]}"
fi
[[ "$SKIP_DOCKER" == 1 ]] && exit 0

export DEBIAN_FRONTEND=noninteractive
systemctl daemon-reload  # the docker.service drop-in (RequiresMountsFor, limits)
apt-get install -y -q -o DPkg::Lock::Timeout=600 docker.io
usermod -aG docker "$JHC_ADMIN_USER"
systemctl enable docker.service jhc-metadata-block.service jhc-docker-prune.timer
systemctl start docker.service
systemctl start jhc-metadata-block.service jhc-docker-prune.timer

sshd -t
systemctl try-reload-or-restart ssh.service

state_dir="${JHC_STATE_DIR:-/var/lib/jupyterhub-cloud}"
install -d -m 0755 "$state_dir"
touch "$state_dir/host-ready"
log "worker ready (manager $JHC_MANAGER_ADDRESS)"
