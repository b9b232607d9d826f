#!/bin/bash
# Starts the node's own Docker engine (a nested dockerd). The node container is not --privileged:
# this kernel's bounding set lacks CAP_SYS_RESOURCE, so runc refuses privileged containers. It
# gets every other capability and a private cgroup namespace instead, and here each cgroup v1
# hierarchy, mounted read-only by the outer engine, is mounted again read-write: inside the
# private namespace the new mount shows the node's own cgroup as its root.
set -euo pipefail
if [ -d /sys/fs/cgroup/cpuset ]; then  # cgroup v1
    mount -o remount,rw /sys/fs/cgroup
    while read -r _ point fstype opts _; do
        [ "$fstype" = cgroup ] || continue
        controllers=$(tr ',' '\n' <<<"$opts" | grep -vE '^(ro|rw|nosuid|nodev|noexec|relatime)$' | paste -sd,)
        umount "$point"
        mount -t cgroup -o "rw,nosuid,nodev,noexec,relatime,$controllers" cgroup "$point"
    done < <(grep ' cgroup ' /proc/mounts)
else  # cgroup v2
    mount -o remount,rw /sys/fs/cgroup
fi
exec dockerd --iptables="${NODE_IPTABLES:-true}" --storage-driver=overlay2 "$@"
