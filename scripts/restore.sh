#!/usr/bin/env bash
# Restores a deployment from its restic backup, in one command:
#
#   scripts/restore.sh [--stack STACK] [--repository URL] [--password-file FILE] SNAPSHOT|--list
#
# Run it after `pulumi up` has brought the (fresh or damaged) deployment up, from the project
# directory on the machine that runs pulumi. It stops the user servers, the hub, Caddy and LDAP;
# runs `jhc-backup restore SNAPSHOT` in the stack's backup container (PostgreSQL keeps running
# for pg_restore); starts LDAP, the hub and Caddy again. What it replaced is kept on the data
# volume under state/backup/before-restore-<time>/ until you delete it.
#
#   --stack          the Pulumi stack (default: the selected one)
#   --repository     restore from another repository than the stack's (e.g. an older stack's)
#   --password-file  that repository's password (default: the stack's own password)
#   --list           list the snapshots instead of restoring
#
# The host's engine is reached as the Docker provider reaches it: the local engine for the local
# stack, otherwise ssh to the host (sshCommand output) with the stack's pinned known_hosts file.
# JHC_SSH_OPTS adds ssh options (e.g. "-i ~/.ssh/lab"); JHC_DOCKER replaces the docker command
# altogether (e.g. JHC_DOCKER="docker --context lab").
set -euo pipefail

stack="" repository="" password_file="" snapshot="" list=0
while (( $# )); do
  case $1 in
    --stack) stack=$2; shift 2 ;;
    --repository) repository=$2; shift 2 ;;
    --password-file) password_file=$2; shift 2 ;;
    --list) list=1; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    -*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    *) snapshot=$1; shift ;;
  esac
done
(( list )) || [[ -n $snapshot ]] || { echo "usage: $0 [options] SNAPSHOT|--list (see --help)" >&2; exit 2; }
[[ -z $password_file || -r $password_file ]] || { echo "cannot read $password_file" >&2; exit 2; }
[[ -n $stack ]] || stack=$(pulumi stack --show-name)
prefix=jhc-$stack

if [[ -n ${JHC_DOCKER:-} ]]; then
  read -r -a docker_cmd <<<"$JHC_DOCKER"
else
  ssh_command=$(pulumi stack output sshCommand --stack "$stack" 2>/dev/null || true)
  if [[ -n $ssh_command ]]; then
    known=${JHC_KNOWN_HOSTS:-$HOME/.ssh/jupyterhub-cloud-$stack.known_hosts}
    read -r -a extra <<<"${JHC_SSH_OPTS:-}"
    docker_cmd=(ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o "UserKnownHostsFile=$known"
                "${extra[@]}" "${ssh_command#ssh }" docker)
  else
    docker_cmd=(docker)
  fi
fi
d() { "${docker_cmd[@]}" "$@"; }

backup=$prefix-backup
[[ $(d inspect -f '{{.State.Running}}' "$backup" 2>/dev/null) == true ]] ||
  { echo "$backup is not running: run \`pulumi up\` (with backupEnabled) first" >&2; exit 1; }

exec_env=()
[[ -n $repository ]] && exec_env+=(-e "RESTIC_REPOSITORY=$repository")
if [[ -n $password_file ]]; then
  d exec -i "$backup" sh -c 'umask 077; cat > /run/secrets/restore-password' <"$password_file"
  exec_env+=(-e RESTIC_PASSWORD_FILE=/run/secrets/restore-password)
fi

if (( list )); then
  d exec "${exec_env[@]}" "$backup" jhc-backup snapshots
  exit 0
fi

# User servers (on the frontend network, not managed by Pulumi) write to the homes: stop them.
mapfile -t servers < <(d ps --filter "network=$prefix-frontend" \
                         --format '{{.ID}} {{.Label "org.jupyterhub-cloud.managed"}}' |
                       awk '$2 != "true" {print $1}')
services=("$prefix-hub" "$prefix-caddy" "$prefix-ldap")
echo "stopping ${#servers[@]} user server(s) and ${services[*]}"
(( ${#servers[@]} )) && d stop "${servers[@]}" >/dev/null
d stop "${services[@]}" >/dev/null

if ! d exec "${exec_env[@]}" "$backup" jhc-backup restore "$snapshot"; then
  echo "RESTORE FAILED: ${services[*]} stay stopped. The replaced data is on the data volume" \
       "under state/backup/before-restore-*/; fix the cause and run this again." >&2
  exit 1
fi
d start "$prefix-ldap" "$prefix-hub" "$prefix-caddy" >/dev/null
echo "restored $snapshot: LDAP, the hub and Caddy are starting. Users log in with the passwords"
echo "they had at the time of the snapshot; their servers start again from the hub."
