#!/usr/bin/env bash
# Destroy-time step of Swarm mode (the `delete` of the user-service cleanup command): removes
# every Swarm service attached to the overlay network -- the user servers SwarmSpawner started;
# Pulumi declares no service -- so that the overlay can be deleted (Docker refuses to remove a
# network that services still use).
# Inputs (environment): JHC_NETWORK (the overlay), and the engine (scripts/lib/engine.sh).
set -euo pipefail
: "${JHC_NETWORK:?JHC_NETWORK is not set}"
# shellcheck source=scripts/lib/engine.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/engine.sh"

engine_docker version --format '{{.Server.Version}}' >/dev/null  # unreachable: fail loudly
if ! network=$(engine_docker network inspect --format '{{.Id}}' "$JHC_NETWORK" 2>/dev/null); then
  echo "network $JHC_NETWORK does not exist: no user services to remove"
  exit 0
fi

on_overlay() {
  local id
  for id in $(engine_docker service ls -q); do
    # shellcheck disable=SC2016  # a Go template, not a shell expansion
    if engine_docker service inspect --format \
        '{{range .Spec.TaskTemplate.Networks}}{{.Target}} {{end}}' "$id" | grep -qw "$network"; then
      echo "$id"
    fi
  done
}

for id in $(on_overlay); do
  name=$(engine_docker service inspect --format '{{.Spec.Name}}' "$id" 2>/dev/null || echo "$id")
  engine_docker service rm "$id" >/dev/null
  echo "removed user service $name"
done
