#!/bin/bash
# Runs chromedriver (and so Chromium) in a network namespace of its own that has only loopback.
#
# Why: starting or stopping any container adds or removes a veth interface on this host, and
# Chromium then aborts requests in flight with ERR_NETWORK_CHANGED. In a namespace of its own
# it never sees those changes. The two ports it needs are bridged through unix sockets in
# SOCKDIR (a unix socket works across network namespaces):
#   inside 127.0.0.1:SITE_PORT  -> SOCKDIR/site.sock   (the host side forwards to Caddy)
#   SOCKDIR/driver.sock         -> inside 127.0.0.1:DRIVER_PORT (chromedriver; the host side
#                                  listens on its own 127.0.0.1:DRIVER_PORT for selenium)
# Usage: chromedriver-netns.sh SOCKDIR SITE_PORT DRIVER_PORT
set -euo pipefail
sockdir=$1 site_port=$2 driver_port=$3
exec unshare --net bash -c '
    set -euo pipefail
    sockdir=$1 site_port=$2 driver_port=$3
    ip link set lo up
    socat "TCP-LISTEN:$site_port,bind=127.0.0.1,fork,reuseaddr" "UNIX-CONNECT:$sockdir/site.sock" &
    chromedriver --port="$driver_port" --allowed-ips=127.0.0.1 &
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$driver_port") 2>/dev/null && break
        sleep 0.1
    done
    exec socat "UNIX-LISTEN:$sockdir/driver.sock,fork" "TCP:127.0.0.1:$driver_port"
' netns "$sockdir" "$site_port" "$driver_port"
