#!/usr/bin/env bash
# Destroy-time step (the `delete` of the user-server cleanup command): removes every container on
# the frontend network that Pulumi does not manage -- the user servers DockerSpawner started --
# so that the network can be deleted. Docker refuses to remove a network with active endpoints.
# Inputs (environment): JHC_NETWORK, JHC_MANAGED_LABEL, and the engine (scripts/lib/engine.sh).
set -euo pipefail
: "${JHC_NETWORK:?JHC_NETWORK is not set}" "${JHC_MANAGED_LABEL:?JHC_MANAGED_LABEL is not set}"
# shellcheck source=scripts/lib/engine.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/engine.sh"

engine_docker version --format '{{.Server.Version}}' >/dev/null  # unreachable: fail loudly
if ! engine_docker network inspect "$JHC_NETWORK" >/dev/null 2>&1; then
  echo "network $JHC_NETWORK does not exist: no user servers to remove"
  exit 0
fi

unmanaged() {
  local id
  # shellcheck disable=SC2016  # a Go template, not a shell expansion
  for id in $(engine_docker network inspect --format \
      '{{range $id, $c := .Containers}}{{$id}} {{end}}' "$JHC_NETWORK"); do
    [[ "$(engine_docker inspect --format "{{index .Config.Labels \"$JHC_MANAGED_LABEL\"}}" \
          "$id" 2>/dev/null)" == "true" ]] || echo "$id"
  done
}

for id in $(unmanaged); do
  name=$(engine_docker inspect --format '{{.Name}}' "$id" 2>/dev/null || echo "$id")
  # A clean stop first; DockerSpawner may have created it with auto-remove.
  engine_docker stop --time 10 "$id" >/dev/null 2>&1 || true
  engine_docker rm --force "$id" >/dev/null 2>&1 || true
  echo "removed user server ${name#/}"
done

left=$(unmanaged)
if [[ -n "$left" ]]; then
  echo "could not remove from $JHC_NETWORK: $left" >&2
  exit 1
fi
