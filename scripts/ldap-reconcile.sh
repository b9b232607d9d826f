#!/usr/bin/env bash
# The LDAP reconcile step: runs services/ldap/reconcile.py inside the LDAP container (same image,
# same network, the admin password file already there). The desired document, which holds
# passwords, arrives on stdin and only ever lands in a mode-600 temporary file inside that
# container, removed when the tool exits. The tool's report goes to this step's output; its exit
# status fails the step (and so the deploy) when LDAP could not be reconciled.
# Inputs (environment): JHC_LDAP_CONTAINER, and the engine (scripts/lib/engine.sh).
set -euo pipefail
: "${JHC_LDAP_CONTAINER:?JHC_LDAP_CONTAINER is not set}"
# shellcheck source=scripts/lib/engine.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/engine.sh"

# shellcheck disable=SC2016  # expanded by the container's shell, not this one
inside='umask 077; f=$(mktemp); trap '\''rm -f "$f"'\'' EXIT; cat > "$f"; python3 /opt/jhc/reconcile.py --desired "$f" --wait 60'
status=0
engine_docker exec -i "$JHC_LDAP_CONTAINER" sh -c "$inside" || status=$?
if (( status != 0 )); then
  echo "LDAP reconcile failed (exit $status; 1: conflicts, nothing was changed; 2: invalid" \
       "input; 3: LDAP error). Fix the cause and run \`pulumi up\` again: it retries." >&2
  exit "$status"
fi
