#!/bin/bash
# Stand-in for ssh in the swarm-step tests: runs the remote command in the node container whose
# address is the target's host part (JHCSWI_NODES: "address=container ..."), as root, through
# `docker exec -i` on the tests' own engine (JHCSWI_DOCKER_HOST). ssh's options (-o, -i, -W,
# ProxyCommand) are ignored: the SSH transport itself is not what these tests exercise.
set -euo pipefail
args=("$@")
i=0
while ((i < ${#args[@]})); do
  case "${args[i]}" in
    -o|-i|-W|-J|-p|-F) i=$((i + 2)) ;;
    -*) i=$((i + 1)) ;;
    *) break ;;
  esac
done
target="${args[i]}"
host="${target#*@}"
command="${args[*]:i+1}"
container=""
for pair in ${JHCSWI_NODES:?}; do
  [[ "${pair%%=*}" == "$host" ]] && container="${pair#*=}"
done
[[ -n "$container" ]] || { echo "ssh-shim: no node at $host" >&2; exit 255; }
exec docker -H "${JHCSWI_DOCKER_HOST:?}" exec -i "$container" sh -c "$command"
