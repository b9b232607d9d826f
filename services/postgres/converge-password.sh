#!/usr/bin/env bash
# Sets the password of POSTGRES_USER on an EXISTING cluster to the content of
# POSTGRES_PASSWORD_FILE, before the server starts. Why: the official image reads that file only
# at initdb, so a regenerated secret (a new stack on a kept volume, a lost Pulumi state) would
# lock the hub out of its database. Run as the postgres account (the entrypoint uses gosu).
#
# How: the SCRAM-SHA-256 verifier is computed here (scram-verifier.pl) and given to a
# single-user backend on stdin: no network, no socket, no pg_hba involved, and the plain
# password never reaches the server, its logs or any command line. Statement logging is off for
# that backend; the verifier is not printed either.
# Environment: PGDATA, POSTGRES_PASSWORD_FILE, POSTGRES_USER (default postgres);
# JHC_SCRAM_VERIFIER (the .pl, default next to this script).
set -Eeuo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${PGDATA:?PGDATA is not set}"
: "${POSTGRES_PASSWORD_FILE:?POSTGRES_PASSWORD_FILE is not set}"
role="${POSTGRES_USER:-postgres}"
if [[ ! "$role" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
    echo "jhc-postgres: POSTGRES_USER '$role' must be letters, digits and _" >&2
    exit 1
fi
verifier="$(perl "${JHC_SCRAM_VERIFIER:-$here/scram-verifier.pl}" < "$POSTGRES_PASSWORD_FILE")"
if [[ ! "$verifier" =~ ^SCRAM-SHA-256\$[0-9]+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$ ]]; then
    echo "jhc-postgres: could not compute the password verifier" >&2
    exit 1
fi

# printf is a shell builtin: the verifier is not on any command line. The single-user backend
# echoes nothing but errors; its output is kept only to report a failure.
out="$(printf 'ALTER ROLE "%s" PASSWORD '"'"'%s'"'"';\n' "$role" "$verifier" \
    | postgres --single -D "$PGDATA" -c log_statement=none -c log_min_error_statement=panic \
        -c log_min_messages=warning -c listen_addresses='' postgres 2>&1)" || {
    echo "jhc-postgres: setting the password of role $role failed:" >&2
    printf '%s\n' "$out" | grep -v 'SCRAM-SHA-256' >&2 || true
    exit 1
}
if printf '%s\n' "$out" | grep -qE 'ERROR|FATAL'; then
    echo "jhc-postgres: setting the password of role $role failed:" >&2
    printf '%s\n' "$out" | grep -v 'SCRAM-SHA-256' >&2 || true
    exit 1
fi
echo "jhc-postgres: password of role $role set from $POSTGRES_PASSWORD_FILE"
