#!/bin/bash
# jhc-data-volume: find, format (once), mount and lay out the data volume.
#
# Why: the volume is attached only after the VM boots, so we wait for it; it may come
# from an older stack and hold user data, so we format it only when no signature at
# all is found; everything stateful lives on it, so docker must not start without it.
# Idempotent: safe to re-run at every boot. Settings come from JHC_ENV_FILE
# (rendered by components/bootstrap.py); tests point that at their own file.
set -euo pipefail

JHC_ENV_FILE="${JHC_ENV_FILE:-/etc/jupyterhub-cloud/bootstrap.env}"
# shellcheck source=/dev/null
source "$JHC_ENV_FILE"

: "${JHC_DATA_DIR:?}" "${JHC_DEVICE_CANDIDATES:?}" "${JHC_BYTES_PER_INODE:?}"
FS_LABEL="${JHC_FS_LABEL:-jhc-data}"
TIMEOUT="${JHC_DEVICE_TIMEOUT:-900}"   # seconds to wait for the attachment
FSTAB="${JHC_FSTAB:-/etc/fstab}"
SKIP_MOUNT="${JHC_SKIP_MOUNT:-0}"      # 1: no mount(8), for tests on image files

log() { echo "jhc-data-volume: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# A device that is already mounted (or holds mounted partitions / swap) elsewhere is
# the root or an ephemeral disk that took a fallback name such as /dev/vdb: never ours.
in_use_elsewhere() {
  local dev="$1" mp
  [[ -b "$dev" ]] || return 1
  while IFS= read -r mp; do
    if [[ -n "$mp" && "$mp" != "$JHC_DATA_DIR" ]]; then return 0; fi
  done < <(lsblk -nrpo MOUNTPOINT "$dev" 2>/dev/null)
  return 1
}

# A generic name (/dev/vdb, /dev/xvdf) may instead be an ephemeral disk or a config
# drive: under such a name we only take a blank device or one carrying our label.
# A /dev/disk/by-id/ name embeds the volume id, so whatever it holds is ours.
foreign_fs() {
  local cand="$1" dev="$2" probe
  [[ "$cand" == */disk/by-id/* ]] && return 1
  probe="$(blkid -p -o export "$dev" 2>/dev/null)" || return 1  # blank: not foreign
  [[ "$(sed -n 's/^LABEL=//p' <<<"$probe")" != "$FS_LABEL" ]]
}

find_device() {
  local deadline=$((SECONDS + TIMEOUT)) cand dev
  local -a cands
  local -A warned=()
  read -r -a cands <<<"$JHC_DEVICE_CANDIDATES"
  while ((SECONDS <= deadline)); do
    for cand in "${cands[@]}"; do
      [[ -e "$cand" ]] || continue
      dev="$(readlink -f "$cand")"
      if in_use_elsewhere "$dev" || foreign_fs "$cand" "$dev"; then
        [[ -n "${warned[$cand]:-}" ]] || log "skipping $cand: in use or not our filesystem"
        warned[$cand]=1
        continue
      fi
      echo "$dev"
      return 0
    done
    sleep 1
  done
  die "no data volume appeared within ${TIMEOUT}s (looked for: ${cands[*]});" \
    "is the volume attached to this instance?"
}

DEV="$(find_device)"
log "using $DEV"

# Low-level probe (-p): no cache, and it also sees partition tables and RAID members.
# Exit status 2 means "no signature at all": the only case in which we format.
rc=0
probe="$(blkid -p -o export "$DEV")" || rc=$?
if ((rc == 2)); then
  log "no filesystem on $DEV: creating ext4 (label $FS_LABEL, -i $JHC_BYTES_PER_INODE)"
  mkfs.ext4 -q -L "$FS_LABEL" -i "$JHC_BYTES_PER_INODE" "$DEV"
  probe="$(blkid -p -o export "$DEV")"
elif ((rc != 0)); then
  die "blkid could not probe $DEV (status $rc)"
fi

FS_TYPE="$(sed -n 's/^TYPE=//p' <<<"$probe")"
FS_UUID="$(sed -n 's/^UUID=//p' <<<"$probe")"
[[ -n "$FS_TYPE" && -n "$FS_UUID" ]] ||
  die "$DEV holds a signature but no usable filesystem; refusing to touch it:" "$probe"
log "$DEV has $FS_TYPE UUID=$FS_UUID (kept as is)"

# One fstab line for the data dir, by UUID, nofail so a missing volume never blocks
# boot (docker.service RequiresMountsFor the data dir instead). Older lines for the
# same mount point (e.g. from a replaced volume) are dropped.
entry="UUID=$FS_UUID $JHC_DATA_DIR $FS_TYPE defaults,nofail 0 2"
touch "$FSTAB"
# shellcheck disable=SC2016  # awk program, expanded by awk
ours='$1 !~ /^#/ && $2 == d'
if ! grep -qxF "$entry" "$FSTAB" || (($(awk -v d="$JHC_DATA_DIR" "$ours" "$FSTAB" | wc -l) != 1)); then
  tmp="$(mktemp "$FSTAB.XXXXXX")"
  awk -v d="$JHC_DATA_DIR" "!($ours)" "$FSTAB" >"$tmp"
  echo "$entry" >>"$tmp"
  chmod 0644 "$tmp"
  mv "$tmp" "$FSTAB"
  log "fstab: $entry"
fi

mkdir -p "$JHC_DATA_DIR"
if [[ "$SKIP_MOUNT" != 1 ]]; then
  if mountpoint -q "$JHC_DATA_DIR"; then
    src="$(findmnt -nro SOURCE --mountpoint "$JHC_DATA_DIR")"
    [[ "$(readlink -f "$src")" == "$DEV" ]] ||
      die "$JHC_DATA_DIR is already mounted from $src, not $DEV"
  else
    mount --fstab "$FSTAB" "$JHC_DATA_DIR"
  fi
  if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
    systemctl daemon-reload  # let systemd generate the .mount unit from fstab
  fi
fi

# The shared state layout (see DESIGN.md). Created when missing, never re-chmodded:
# services (postgres, slapd, spawner) own and adjust their directories themselves.
mkdir_once() {
  local mode="$1" dir="$JHC_DATA_DIR/$2"
  [[ -d "$dir" ]] || install -d -m "$mode" "$dir"
}
mkdir_once 0710 docker
mkdir_once 0755 state
for d in postgres ldap hub caddy; do mkdir_once 0755 "state/$d"; done
mkdir_once 0755 homes
mkdir_once 0755 datasets
if [[ ! -d "$JHC_DATA_DIR/shared" ]]; then
  install -d -m 2775 -g 100 "$JHC_DATA_DIR/shared"  # gid 100 "users", setgid
fi
log "data volume ready at $JHC_DATA_DIR"
