#!/usr/bin/env bash
# The NFS step, deleted (the last worker is gone): the main host stops exporting user data.
# The package stays installed, the server stopped. Inputs: as nfs-export.sh.
set -euo pipefail
: "${JHC_MANAGER_TARGET:?}" "${JHC_EXPORTS_FILE:?}"
# shellcheck source=scripts/lib/nodes.sh
source "$(dirname "$0")/lib/nodes.sh"
on_manager sudo rm -f "$JHC_EXPORTS_FILE"
on_manager sudo exportfs -ra
on_manager sudo systemctl disable --now nfs-server.service >&2
echo "no longer exported"
