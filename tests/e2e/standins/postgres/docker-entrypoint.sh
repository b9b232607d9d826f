#!/bin/bash
# Stand-in entrypoint: the part of the official postgres image's contract the stack uses
# (standins/README.md). Started as root: own PGDATA, then re-run as postgres (uid 999), which
# reads POSTGRES_PASSWORD_FILE, so a file postgres cannot read fails like upstream.
set -euo pipefail
if [[ "${1:-}" == postgres && "$(id -u)" == 0 ]]; then
    mkdir -p "$PGDATA"
    chown postgres:postgres "$PGDATA"
    chmod 0700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [[ "${1:-}" == postgres && ! -s "$PGDATA/PG_VERSION" ]]; then
    if [[ -n "${POSTGRES_PASSWORD_FILE:-}" ]]; then
        POSTGRES_PASSWORD="$(< "$POSTGRES_PASSWORD_FILE")"
    fi
    : "${POSTGRES_PASSWORD:?the stand-in, like upstream, needs POSTGRES_PASSWORD(_FILE)}"
    user="${POSTGRES_USER:-postgres}"
    db="${POSTGRES_DB:-$user}"
    initdb --username="$user" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") >/dev/null
    printf '\nhost all all all %s\n' "${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}" >> "$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    if [[ "$db" != postgres ]]; then
        psql -v ON_ERROR_STOP=1 --username "$user" --dbname postgres -q \
            -c "CREATE DATABASE \"$db\""
    fi
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    echo "stand-in postgres: initdb done"
fi
exec "$@"
