#!/usr/bin/env bash
# A worker's swarm step: joins the worker to the main host's swarm with the join token read from
# stdin (a secret input of the step: never in argv here, nor in user_data), and prints the node
# id, which the step's delete (swarm-leave.sh) drains and removes. Idempotent: a worker already
# in this swarm stays; one left over in another (or a lost) swarm leaves it first.
# Inputs (environment): JHC_MANAGER_TARGET, JHC_MANAGER_SSH_OPTS, JHC_MANAGER_ADDR (private),
# JHC_WORKER_TARGET, JHC_WORKER_SSH_OPTS; stdin: the worker join token.
set -euo pipefail
: "${JHC_MANAGER_TARGET:?}" "${JHC_MANAGER_ADDR:?}" "${JHC_WORKER_TARGET:?}"
# shellcheck source=scripts/lib/nodes.sh
source "$(dirname "$0")/lib/nodes.sh"
IFS= read -r token || true
[[ "$token" =~ ^SWMTKN-[A-Za-z0-9-]+$ ]] || die "no worker join token on stdin"

read -r node_state node_id <<< "$(on_worker docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.NodeID}}')"
if [[ "$node_state" == active ]]; then
  if [[ "$(on_manager docker node inspect --format '{{.Spec.Role}}' "$node_id" 2>/dev/null)" == worker ]]; then
    echo "swarm-join: $JHC_WORKER_TARGET is already worker $node_id" >&2
    printf '%s\n' "$node_id"
    exit 0
  fi
  echo "swarm-join: $JHC_WORKER_TARGET belongs to another swarm: leaving it" >&2
  on_worker docker swarm leave --force >&2
elif [[ "$node_state" != inactive ]]; then
  die "worker $JHC_WORKER_TARGET is in swarm state '$node_state'"
fi
# The token goes through ssh's stdin to the worker, where docker takes it as an argument (the
# CLI has no other way); it is visible there to local root only while docker runs.
printf '%s\n' "$token" | on_worker sh -c \
  "read -r t && exec docker swarm join --token \"\$t\" $JHC_MANAGER_ADDR:2377" >&2
on_worker docker info --format '{{.Swarm.NodeID}}'
