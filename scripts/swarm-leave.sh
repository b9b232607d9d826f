#!/usr/bin/env bash
# A worker's swarm step, deleted: the worker is going away (hostWorkers lowered, replaced, or
# destroy). Pulumi runs this before it deletes the worker VM, since the step depends on the VM
# (dependents are deleted before their dependencies). It drains the node: Swarm stops its tasks
# (user servers stop cleanly; their files live on the main host) and starts them elsewhere;
# it waits, bounded by JHC_DRAIN_TIMEOUT, until none runs there, then the worker leaves and the
# manager forgets it. A drain that does not finish fails the step, so the VM is kept.
# Inputs (environment): PULUMI_COMMAND_STDOUT (the node id swarm-join.sh printed; pulumi-command
# sets it for a delete: "the stdout ... of the Command resource from previous create or update
# steps", local.Command `delete` docs),
# JHC_MANAGER_TARGET, JHC_MANAGER_SSH_OPTS, JHC_WORKER_TARGET, JHC_WORKER_SSH_OPTS.
set -euo pipefail
: "${JHC_MANAGER_TARGET:?}" "${JHC_WORKER_TARGET:?}"
# shellcheck source=scripts/lib/nodes.sh
source "$(dirname "$0")/lib/nodes.sh"
node="${PULUMI_COMMAND_STDOUT:-}"
node="${node//[[:space:]]/}"
[[ "$node" =~ ^[a-z0-9]+$ ]] || die "no node id recorded for $JHC_WORKER_TARGET"
timeout="${JHC_DRAIN_TIMEOUT:-600}"

if ! on_manager docker node inspect "$node" >/dev/null 2>&1; then
  echo "swarm-leave: node $node is no longer in the swarm" >&2
  exit 0
fi
echo "swarm-leave: draining $node ($JHC_WORKER_TARGET)" >&2
on_manager docker node update --availability drain "$node" >/dev/null
deadline=$((SECONDS + timeout))
while :; do
  # A task still running, or about to, on the node (its current state, not the desired one).
  running=$(on_manager docker node ps "$node" --format '{{.CurrentState}}' |
              grep -cE '^(New|Pending|Assigned|Accepted|Preparing|Ready|Starting|Running)' || true)
  ((running == 0)) && break
  ((SECONDS < deadline)) ||
    die "$running task(s) still on node $node after ${timeout}s; the worker is kept." \
        "Look at \`docker node ps $node\` on the main host, then run pulumi up again" \
        "(JHC_DRAIN_TIMEOUT=<seconds> to wait longer)"
  sleep 2
done
echo "swarm-leave: $node drained" >&2
# A dead worker cannot leave; the manager then sees it down and removes it all the same.
on_worker docker swarm leave >&2 || echo "swarm-leave: $JHC_WORKER_TARGET did not answer" >&2
for _ in $(seq 1 30); do
  [[ "$(on_manager docker node inspect --format '{{.Status.State}}' "$node")" == down ]] && break
  sleep 2
done
# Drained and gone: --force only spares waiting for the heartbeat timeout.
on_manager docker node rm --force "$node" >&2
echo "swarm-leave: $node removed" >&2
