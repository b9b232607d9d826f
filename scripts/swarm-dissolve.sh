#!/usr/bin/env bash
# The swarm step, deleted (hostWorkers back to 0, or destroy; every worker's step was deleted,
# so drained and removed, before it): the main host's engine leaves its own swarm, back to a
# single Docker host. Inputs: as swarm-init.sh.
set -euo pipefail
: "${JHC_MANAGER_TARGET:?}"
# shellcheck source=scripts/lib/nodes.sh
source "$(dirname "$0")/lib/nodes.sh"
if [[ "$(on_manager docker info --format '{{.Swarm.LocalNodeState}}')" == inactive ]]; then
  echo "swarm-dissolve: not in a swarm" >&2
  daemon_settings on_manager single "${JHC_ADVERTISE_ADDR:?}:${JHC_REGISTRY_PORT:?}"
  exit 0
fi
left=$(on_manager docker node ls --filter role=worker --format '{{.ID}}' | wc -l)
((left == 0)) || die "$left worker(s) still in the swarm; not dissolving it (docker node ls)"
on_manager docker swarm leave --force >&2
echo "swarm-dissolve: the main host left its swarm" >&2
# Back to the bootstrap's single-host engine settings (live-restore on, no registry trusted).
daemon_settings on_manager single "${JHC_ADVERTISE_ADDR:?}:${JHC_REGISTRY_PORT:?}"
