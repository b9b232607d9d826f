#!/usr/bin/env bash
# The "host ready" step: waits until the new host answers SSH and cloud-init has finished.
# Fails the deploy with cloud-init's own output when the bootstrap failed.
# Inputs (environment): JHC_SSH_TARGET user@address, JHC_SSH_OPTS ssh options,
# JHC_KNOWN_HOSTS this server's known_hosts file, JHC_JUMP_TARGET/JHC_JUMP_SSH_OPTS (workers), JHC_READY_TIMEOUT seconds (default 1200).
set -euo pipefail

: "${JHC_SSH_TARGET:?JHC_SSH_TARGET is not set}"
read -r -a opts <<< "${JHC_SSH_OPTS:-}"
# A swarm worker has no public address: reached through the main host (JHC_JUMP_TARGET, with its
# own options JHC_JUMP_SSH_OPTS; %-tokens escaped, since ssh expands them in a ProxyCommand).
if [[ -n "${JHC_JUMP_TARGET:-}" ]]; then
  jump_opts="${JHC_JUMP_SSH_OPTS:-}"
  opts+=(-o "ProxyCommand=ssh ${jump_opts//%/%%} -W %h:%p $JHC_JUMP_TARGET")
fi
timeout=${JHC_READY_TIMEOUT:-1200}
deadline=$(( $(date +%s) + timeout ))

if [[ -n "${JHC_KNOWN_HOSTS:-}" ]]; then
  known_hosts=${JHC_KNOWN_HOSTS/#\~/$HOME}
  mkdir -p "$(dirname "$known_hosts")"
fi

# shellcheck disable=SC2029  # the arguments are fixed commands of this script
remote() { ssh "${opts[@]}" "$JHC_SSH_TARGET" "$@"; }

# Errors that waiting cannot fix: report them at once instead of retrying until the timeout.
fatal() {
  case "$1" in
    *"REMOTE HOST IDENTIFICATION HAS CHANGED"*|*"Host key verification failed"*)
      echo "host $JHC_SSH_TARGET presents a different host key than the one pinned in" \
           "${JHC_KNOWN_HOSTS:-the known_hosts file} for this server: refusing to connect." \
           "If the server was NOT replaced, this may be an attack; investigate first." >&2 ;;
    *"Too many authentication failures"*)
      echo "host $JHC_SSH_TARGET: too many authentication failures (the ssh agent offers more" \
           "keys than sshd's MaxAuthTries). Set sshPrivateKeyPath so that only that key is" \
           "offered." >&2 ;;
    *) return 1 ;;
  esac
  printf '%s\n' "$1" >&2
  exit 1
}

until err=$(remote true 2>&1 >/dev/null); do
  fatal "$err" || true
  if (( $(date +%s) >= deadline )); then
    echo "host $JHC_SSH_TARGET did not accept SSH within ${timeout}s; last attempt:" >&2
    printf '%s\n' "$err" >&2
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
