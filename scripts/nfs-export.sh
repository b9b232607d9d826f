#!/usr/bin/env bash
# The NFS step on the main host (created only with workers; run again when the workers'
# addresses change): installs the NFSv4 server, serves version 4 only (one port, 2049, no
# rpcbind/mountd to open), and exports the user data to the workers' addresses only.
# The main host's user_data is not changed for this (that would replace the main VM).
# Inputs (environment): JHC_MANAGER_TARGET, JHC_MANAGER_SSH_OPTS, JHC_EXPORTS (the rendered
# exports file), JHC_EXPORTS_FILE (its path on the host).
set -euo pipefail
: "${JHC_MANAGER_TARGET:?}" "${JHC_EXPORTS:?}" "${JHC_EXPORTS_FILE:?}"
# shellcheck source=scripts/lib/nodes.sh
source "$(dirname "$0")/lib/nodes.sh"

on_manager sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
  -o DPkg::Lock::Timeout=600 nfs-kernel-server >&2
# NFSv4 needs neither rpcbind nor mountd (Red Hat, "Exporting NFS shares": it "no longer requires
# an rpcbind service"); nfsconf(8) --set (nfs-common 2.6 on Ubuntu 24.04 and Debian 12) edits
# /etc/nfs.conf, whose [nfsd] section takes vers3 (nfs.conf(5)).
on_manager sudo nfsconf --set nfsd vers3 n
printf '%s\n' "$JHC_EXPORTS" | on_manager sudo tee "$JHC_EXPORTS_FILE" >/dev/null
on_manager sudo systemctl enable nfs-server.service >&2
on_manager sudo systemctl restart nfs-server.service
on_manager sudo exportfs -ra
echo "exported to the workers"
