#!/usr/bin/env bash
# Dumps the hub database before a JupyterHub version change may upgrade its schema.
# Runs as a one-shot container of this image (so pg_dump is the server's major version) that
# Pulumi places before the hub and re-creates whenever the hub's JupyterHub version changes
# (components/platform/hub_db_backup.py). Restore: docs/admin-guide.md "Upgrade JupyterHub".
#
# Writes JHC_BACKUP_DIR/hub-db-before-jupyterhub-<JHC_HUB_VERSION>-<UTC time>.dump (pg_dump
# custom format, mode 600) atomically: a partial dump never carries the final name.
# Environment: PGHOST, PGPORT (5432), PGUSER, PGDATABASE, JHC_DB_PASSWORD_FILE, JHC_BACKUP_DIR,
# JHC_HUB_VERSION, JHC_WAIT_SECONDS (60: how long to wait for the server).
set -Eeuo pipefail

: "${PGHOST:?}" "${PGUSER:?}" "${PGDATABASE:?}" "${JHC_DB_PASSWORD_FILE:?}" "${JHC_BACKUP_DIR:?}"
version="${JHC_HUB_VERSION:?JHC_HUB_VERSION is not set}"
if [[ ! "$version" =~ ^[A-Za-z0-9.+-]+$ ]]; then
    echo "hub-db-dump: JHC_HUB_VERSION '$version' is not a version" >&2
    exit 2
fi
export PGPORT="${PGPORT:-5432}"
umask 077
work="$(mktemp -d)"
partial=""
trap 'rm -rf "$work"; [ -z "$partial" ] || rm -f "$partial"' EXIT
# libpq's password file: the password never appears on a command line or in the environment.
{
    printf '%s:%s:%s:%s:' "$PGHOST" "$PGPORT" "$PGDATABASE" "$PGUSER"
    tr -d '\r\n' < "$JHC_DB_PASSWORD_FILE" | sed 's/[\\:]/\\&/g'
    printf '\n'
} > "$work/pgpass"
export PGPASSFILE="$work/pgpass"

deadline=$((SECONDS + ${JHC_WAIT_SECONDS:-60}))
until pg_isready -q; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        echo "hub-db-dump: PostgreSQL at $PGHOST:$PGPORT did not answer" >&2
        exit 1
    fi
    sleep 1
done

mkdir -p "$JHC_BACKUP_DIR"
final="$JHC_BACKUP_DIR/hub-db-before-jupyterhub-$version-$(date -u +%Y%m%dT%H%M%SZ).dump"
partial="$JHC_BACKUP_DIR/.partial-$(basename "$final")"
pg_dump --format=custom --file="$partial" "$PGDATABASE"
pg_restore --list "$partial" > /dev/null  # a readable archive, or fail before renaming it
mv "$partial" "$final"
echo "hub-db-dump: wrote $final ($(stat -c %s "$final") bytes)"
