#!/usr/bin/env bash
# The swarm step on the main host (created only with workers): makes its engine the swarm's
# manager, advertised on its private address, and prints the worker join token on stdout. That
# stdout is a secret output of the step (additionalSecretOutputs, logging off): the token never
# reaches user_data, the log or a plain output. Idempotent: an existing manager is kept.
# Swarm mode needs live-restore off and the platform's registry trusted (lib/swarm-daemon.py).
# Inputs (environment): JHC_MANAGER_TARGET, JHC_MANAGER_SSH_OPTS, JHC_ADVERTISE_ADDR,
# JHC_REGISTRY_PORT; JHC_JOIN_TOKEN_GENERATION (optional, hostWorkersJoinTokenGeneration): when
# it differs from the generation recorded on the manager's node, the worker join token is
# rotated once (joined workers stay; the old token stops working) and the new one recorded.
set -euo pipefail
: "${JHC_MANAGER_TARGET:?}" "${JHC_ADVERTISE_ADDR:?}" "${JHC_REGISTRY_PORT:?}"
# shellcheck source=scripts/lib/nodes.sh
source "$(dirname "$0")/lib/nodes.sh"

state=$(on_manager docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} {{.Swarm.NodeAddr}}')
read -r node_state is_manager address <<< "$state"
case "$node_state $is_manager" in
  "inactive false")
    daemon_settings on_manager swarm "$JHC_ADVERTISE_ADDR:$JHC_REGISTRY_PORT"
    echo "swarm-init: creating the swarm on $JHC_ADVERTISE_ADDR" >&2
    # Its stdout is the join command, token included: never let it reach the log.
    on_manager docker swarm init --advertise-addr "$JHC_ADVERTISE_ADDR" >/dev/null ;;
  "active true")
    [[ "$address" == "$JHC_ADVERTISE_ADDR" ]] ||
      die "the manager advertises $address, not its private address $JHC_ADVERTISE_ADDR" \
          "(did the main host change address?). See docs/admin-guide.md, Scale out."
    daemon_settings on_manager swarm "$JHC_ADVERTISE_ADDR:$JHC_REGISTRY_PORT"
    echo "swarm-init: already the swarm's manager on $address" >&2 ;;
  "active false")
    die "the main host's engine is a worker of another swarm; it must be the manager" ;;
  *)
    die "the main host's engine is in swarm state '$state'; fix it by hand (docker info)" ;;
esac
if [[ -n "${JHC_JOIN_TOKEN_GENERATION:-}" ]]; then
  [[ "$JHC_JOIN_TOKEN_GENERATION" =~ ^[0-9]+$ ]] || die "JHC_JOIN_TOKEN_GENERATION must be a number"
  node=$(on_manager docker info --format '{{.Swarm.NodeID}}')
  label=jhc.join-token-generation
  recorded=$(on_manager docker node inspect --format "{{index .Spec.Labels \"$label\"}}" "$node")
  if [[ "$recorded" != "$JHC_JOIN_TOKEN_GENERATION" ]]; then
    echo "swarm-init: rotating the worker join token (generation ${recorded:-0} -> $JHC_JOIN_TOKEN_GENERATION)" >&2
    on_manager docker swarm join-token --rotate --quiet worker >/dev/null
    on_manager docker node update --label-add "$label=$JHC_JOIN_TOKEN_GENERATION" "$node" >/dev/null
  fi
fi
on_manager docker swarm join-token --quiet worker
