# shellcheck shell=bash
# Sourced by the swarm and NFS steps: how the machine running pulumi reaches the stack's nodes.
# The manager (the main host) by its public address, JHC_MANAGER_TARGET user@address with
# JHC_MANAGER_SSH_OPTS; a worker (no public address) by JHC_WORKER_TARGET user@private-address
# with JHC_WORKER_SSH_OPTS, through the manager as a jump host (ProxyCommand, so the jump uses
# the manager's own options: its pinned host key, key file and multiplexed connection).
# JHC_SSH: the ssh client (tests point it at a shim that enters the node containers).
ssh_bin="${JHC_SSH:-ssh}"
read -r -a jhc_manager_opts <<< "${JHC_MANAGER_SSH_OPTS:-}"
read -r -a jhc_worker_opts <<< "${JHC_WORKER_SSH_OPTS:-}"

# One quoted command line: ssh joins its arguments with spaces for the remote shell.
# shellcheck disable=SC2029  # quoted on purpose for the remote shell
on_manager() { "$ssh_bin" "${jhc_manager_opts[@]}" "$JHC_MANAGER_TARGET" "$(printf '%q ' "$@")"; }

jump_command() {
  # ssh expands %-tokens in ProxyCommand: the manager's options (ControlPath=...%C) are escaped.
  local opts="${JHC_MANAGER_SSH_OPTS:-}"
  printf '%s' "ProxyCommand=$ssh_bin ${opts//%/%%} -W %h:%p $JHC_MANAGER_TARGET"
}

# shellcheck disable=SC2029
on_worker() {
  "$ssh_bin" "${jhc_worker_opts[@]}" -o "$(jump_command)" "$JHC_WORKER_TARGET" \
    "$(printf '%q ' "$@")"
}

die() { echo "$(basename "$0"): $*" >&2; exit 1; }

# Swarm-mode engine settings on a node (live-restore off, the registry trusted) or back to the
# single-host ones; reloads dockerd only when the file changed. $1 on_manager|on_worker,
# $2 swarm|single, $3 the registry (address:port). Bounded wait for the reload to take effect.
daemon_settings() {
  local on="$1" mode="$2" registry="$3" want=false
  [[ "$mode" == single ]] && want=true
  if [[ "$("$on" sudo -n python3 - "$mode" "$registry" < "$(dirname "${BASH_SOURCE[0]}")/swarm-daemon.py")" == changed ]]; then
    "$on" sudo -n pkill -HUP -x dockerd
  fi
  local deadline=$((SECONDS + 30))
  until [[ "$("$on" docker info --format '{{.LiveRestoreEnabled}}')" == "$want" ]]; do
    ((SECONDS < deadline)) || die "dockerd did not take live-restore=$want after a reload"
    sleep 1
  done
}
