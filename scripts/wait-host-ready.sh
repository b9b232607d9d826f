#!/usr/bin/env bash
# The "host ready" step: waits until the new host answers SSH and cloud-init has finished.
# Fails the deploy with cloud-init's own output when the bootstrap failed.
# Inputs (environment): JHC_SSH_TARGET user@address, JHC_SSH_OPTS ssh options,
# JHC_KNOWN_HOSTS the stack's known_hosts file, JHC_READY_TIMEOUT seconds (default 1200).
set -euo pipefail

: "${JHC_SSH_TARGET:?JHC_SSH_TARGET is not set}"
read -r -a opts <<< "${JHC_SSH_OPTS:-}"
timeout=${JHC_READY_TIMEOUT:-1200}
deadline=$(( $(date +%s) + timeout ))

if [[ -n "${JHC_KNOWN_HOSTS:-}" ]]; then
  known_hosts=${JHC_KNOWN_HOSTS/#\~/$HOME}
  mkdir -p "$(dirname "$known_hosts")"
fi

# shellcheck disable=SC2029  # the arguments are fixed commands of this script
remote() { ssh "${opts[@]}" "$JHC_SSH_TARGET" "$@"; }

until remote true 2>/dev/null; do
  if (( $(date +%s) >= deadline )); then
    echo "host $JHC_SSH_TARGET did not accept SSH within ${timeout}s; last attempt:" >&2
    remote true || true
    exit 1
  fi
  sleep 5
done

# Exit code 2 means "done, with recoverable errors" (e.g. deprecated keys): report, do not fail.
status=0
remote cloud-init status --wait --long || status=$?
if (( status != 0 && status != 2 )); then
  echo "cloud-init failed on $JHC_SSH_TARGET (exit $status). Its output:" >&2
  remote sudo tail -n 100 /var/log/cloud-init-output.log >&2 || true
  exit 1
fi
echo "host ready"
