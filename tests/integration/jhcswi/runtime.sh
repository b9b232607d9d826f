#!/bin/bash
# OCI runtime wrapper for the swarm-step tests' own dockerd (registered with --add-runtime):
# removes CAP_SYS_RESOURCE from the container's spec, then runs runc. This machine's capability
# bounding set lacks CAP_SYS_RESOURCE, so runc fails a --privileged container with "unable to
# apply caps" otherwise (DESIGN.md section 5).
# `create` reads the spec from <bundle>/config.json, `exec` the process from --process <file>.
spec=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --bundle|-b) spec="${args[i+1]:-}/config.json" ;;
    --bundle=*) spec="${args[i]#--bundle=}/config.json" ;;
    --process|-p) spec="${args[i+1]:-}" ;;
    --process=*) spec="${args[i]#--process=}" ;;
  esac
done
if [[ -n "$spec" && -f "$spec" ]]; then
  python3 - "$spec" <<'PY'
import json, sys
path = sys.argv[1]
spec = json.load(open(path))
caps = spec.get("process", spec).get("capabilities") or {}
for key, values in caps.items():
    caps[key] = [c for c in values if c != "CAP_SYS_RESOURCE"]
json.dump(spec, open(path, "w"))
PY
fi
exec runc "$@"
