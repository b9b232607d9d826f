#!/bin/bash
# Like docker-stacks' start-notebook: the hub passes JUPYTERHUB_API_TOKEN, so run the
# single-user server then; otherwise a plain JupyterLab (handy for poking at the image).
set -euo pipefail
if [[ -n "${JUPYTERHUB_API_TOKEN:-}" ]]; then
    exec jupyterhub-singleuser "$@"
fi
exec jupyter lab --ip=0.0.0.0 --port=8888 "$@"
