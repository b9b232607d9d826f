#!/usr/bin/env bash
# Entrypoint of the jupyterhub-cloud PostgreSQL image (FROM the official image, see Dockerfile).
#
# For `postgres` (the default command) on a data directory that is already initialised:
# 1. refuse a cluster of another major version (the official image would start a new major
#    on an old directory only to fail, or worse): the data must be dumped with the old image
#    and restored into the new one, docs/admin-guide.md "Upgrade PostgreSQL";
# 2. set the role's password from POSTGRES_PASSWORD_FILE (converge-password.sh), because the
#    official entrypoint reads that file only at initdb.
# Then, in every case, the official entrypoint runs as it always does (initdb on an empty
# directory, privilege drop, server). Anything else (pg_dump for the pre-upgrade backup) is
# passed to the official entrypoint unchanged.
# Environment: as the official image (PGDATA, PG_MAJOR, POSTGRES_USER, POSTGRES_PASSWORD_FILE);
# JHC_UPSTREAM_ENTRYPOINT and JHC_POSTGRES_LIBEXEC exist so tests run this script on a host.
set -Eeuo pipefail

libexec="${JHC_POSTGRES_LIBEXEC:-/usr/local/lib/jhc-postgres}"
upstream="${JHC_UPSTREAM_ENTRYPOINT:-docker-entrypoint.sh}"

if [ "${1:-}" = postgres ] && [ -s "${PGDATA:?PGDATA is not set}/PG_VERSION" ]; then
    found="$(tr -d '[:space:]' < "$PGDATA/PG_VERSION")"
    if [ "$found" != "${PG_MAJOR:?PG_MAJOR is not set}" ]; then
        cat >&2 <<MSG
jhc-postgres: ERROR: $PGDATA holds a PostgreSQL $found cluster, but this image runs PostgreSQL $PG_MAJOR.
jhc-postgres: A major version change needs a dump and a restore; nothing was changed.
jhc-postgres: Follow "Upgrade PostgreSQL (major version)" in docs/admin-guide.md.
MSG
        exit 1
    fi
    if [ "$(id -u)" = 0 ]; then
        gosu postgres "$libexec/converge-password.sh"
    else
        "$libexec/converge-password.sh"
    fi
fi

exec "$upstream" "$@"
