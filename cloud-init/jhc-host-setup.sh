#!/bin/bash
# jhc-host-setup: install and start Docker Engine once the data volume is mounted.
#
# Why here and not in cloud-init `packages:`: docker.io starts dockerd from its postinst,
# and that first start must already see daemon.json (data-root on the volume) and the
# mounted volume, or images land on the disposable root disk. Idempotent.
set -euo pipefail

JHC_ENV_FILE="${JHC_ENV_FILE:-/etc/jupyterhub-cloud/bootstrap.env}"
# shellcheck source=/dev/null
source "$JHC_ENV_FILE"
: "${JHC_ADMIN_USER:?}" "${JHC_DATA_DIR:?}"

log() { echo "jhc-host-setup: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

mountpoint -q "$JHC_DATA_DIR" ||
  die "$JHC_DATA_DIR is not mounted; not installing docker onto the root disk"

export DEBIAN_FRONTEND=noninteractive
systemctl daemon-reload  # load the docker.service drop-in (RequiresMountsFor, limits)
pkgs=(docker.io)
# buildx is packaged on Ubuntu 24.04 but not on Debian 12: take it where it exists.
if apt-cache show docker-buildx >/dev/null 2>&1; then pkgs+=(docker-buildx); fi
# First boot: apt-daily/unattended-upgrades may hold the dpkg lock for a while.
apt-get install -y -q -o DPkg::Lock::Timeout=600 "${pkgs[@]}"

usermod -aG docker "$JHC_ADMIN_USER"
systemctl enable docker.service jhc-metadata-block.service jhc-docker-prune.timer
systemctl start docker.service
systemctl start jhc-metadata-block.service jhc-docker-prune.timer

root_dir="$(docker info --format '{{.DockerRootDir}}')"
[[ "$root_dir" == "$JHC_DATA_DIR/docker" ]] ||
  die "docker data-root is $root_dir, expected $JHC_DATA_DIR/docker"

# Apply the sshd drop-in now (first boot: sshd may have started before it was written).
sshd -t
systemctl try-reload-or-restart ssh.service

state_dir="${JHC_STATE_DIR:-/var/lib/jupyterhub-cloud}"
install -d -m 0755 "$state_dir"
touch "$state_dir/host-ready"
log "host ready (docker root $root_dir)"
