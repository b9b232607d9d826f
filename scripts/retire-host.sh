#!/usr/bin/env bash
# The host-ready step's delete: runs before Pulumi detaches the data volume (the step depends on
# the attachment, and Pulumi deletes dependents first), on a host roll and on destroy.
# Stops Docker (every service and user server on the host) and unmounts the data filesystem, so
# the volume never leaves a running host with the filesystem mounted.
# Inputs (environment): JHC_SSH_TARGET, JHC_SSH_OPTS, JHC_DATA_DIR.
set -euo pipefail
: "${JHC_SSH_TARGET:?JHC_SSH_TARGET is not set}" "${JHC_DATA_DIR:?JHC_DATA_DIR is not set}"
read -r -a opts <<< "${JHC_SSH_OPTS:-}"
# shellcheck disable=SC2029  # the commands are meant for the remote shell
remote() { ssh "${opts[@]}" "$JHC_SSH_TARGET" "$@"; }
dir=$(printf '%q' "$JHC_DATA_DIR")

echo "retiring $JHC_SSH_TARGET: stopping Docker, unmounting $JHC_DATA_DIR"
remote sudo systemctl stop docker.socket docker.service containerd.service
remote "sync && if mountpoint -q $dir; then sudo umount --recursive $dir; fi"
remote "! mountpoint -q $dir" || { echo "$JHC_DATA_DIR is still mounted on $JHC_SSH_TARGET" >&2; exit 1; }
echo "host retired: the data volume can be detached"
