#!/bin/bash
# Entrypoint keeping the docker-stacks start contract (test stand-in).
#
# Started as root: make NB_USER exist with uid NB_UID and primary gid NB_GID, then drop to
# exactly that uid/gid (setpriv, no setuid binary: works under no-new-privileges) and exec the
# command. Started as any other uid: just exec the command.
# Needs only CAP_SETUID, CAP_SETGID (the drop) and CAP_CHOWN (useradd, a home it must create); it
# never writes into an existing (bind-mounted) home, so no DAC_OVERRIDE/FOWNER.
set -euo pipefail

log() { echo "start.sh: $*" >&2; }

if [[ "$(id -u)" != 0 ]]; then
    exec "$@"
fi

NB_USER="${NB_USER:-jovyan}"
NB_UID="${NB_UID:-1000}"
NB_GID="${NB_GID:-100}"
HOME_DIR="/home/${NB_USER}"

[[ "$NB_USER" =~ ^[a-z_][a-z0-9_.-]*$ ]] || { log "invalid NB_USER '$NB_USER'"; exit 1; }
[[ "$NB_UID" =~ ^[0-9]+$ && "$NB_GID" =~ ^[0-9]+$ ]] || { log "NB_UID/NB_GID not numeric"; exit 1; }
if [[ "$NB_UID" == 0 ]]; then
    log "refusing NB_UID=0: user servers never run as root"
    exit 1
fi

if ! getent group "$NB_GID" >/dev/null; then
    groupadd --gid "$NB_GID" "${NB_GROUP:-$NB_USER}"
fi

# The passwd entry must say exactly NB_UID:NB_GID and HOME_DIR. Recreate it rather than
# `usermod -u/-g`, which would chown/chgrp everything in a (bind-mounted) home.
if id "$NB_USER" >/dev/null 2>&1 \
    && [[ "$(getent passwd "$NB_USER" | cut -d: -f3,4,6)" != "${NB_UID}:${NB_GID}:${HOME_DIR}" ]]; then
    userdel "$NB_USER"
fi
if ! id "$NB_USER" >/dev/null 2>&1; then
    useradd --no-create-home --non-unique --uid "$NB_UID" --gid "$NB_GID" \
        --home-dir "$HOME_DIR" --shell /bin/bash "$NB_USER"
fi

if [[ ! -d "$HOME_DIR" ]]; then
    # Nothing mounted there: a fresh (ephemeral) home owned by the user.
    # mode first, owner last: once it is not root's, changing the mode would need CAP_FOWNER.
    mkdir -m 0750 "$HOME_DIR"
    chown "$NB_UID:$NB_GID" "$HOME_DIR"
fi

export HOME="$HOME_DIR" USER="$NB_USER" LOGNAME="$NB_USER"
# JHC_PRIVDROP=sudo drops the way the real docker-stacks start.sh does (sudo as root), so the
# tests can check that the production cap set works for that path too. Default: setpriv.
if [[ "${JHC_PRIVDROP:-setpriv}" == sudo ]]; then
    exec sudo --preserve-env --set-home --user "$NB_USER" PATH="$PATH" -- \
        /bin/bash -c 'cd -- "$HOME" 2>/dev/null || cd /; exec "$@"' start.sh "$@"
fi
# cd only after the drop: root without DAC_OVERRIDE may not enter a 0750 home it doesn't own.
exec setpriv --reuid="$NB_UID" --regid="$NB_GID" --init-groups --inh-caps=-all -- \
    /bin/bash -c 'cd -- "$HOME" 2>/dev/null || cd /; exec "$@"' start.sh "$@"
