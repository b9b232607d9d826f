#!/usr/bin/env bash
# Start/stop a Docker engine for the integration tests (CI and dev machines, as root).
#
# Why a script and not systemd: CI starts from a bare Debian 12 machine without an init system
# that runs services, and several helpers may share one machine; so we reuse an engine that
# already answers and only ever stop the dockerd *this script* started (tracked by its pidfile).
#
# Usage: scripts/ci-docker.sh start|stop|status|run COMMAND...
#   start   prints exactly one line on stdout: "started" (we launched dockerd) or "reused"
#           (an engine already answered); exit 0 once `docker info` answers, non-zero otherwise.
#   stop    stops the dockerd recorded in our pidfile (if any); never touches another dockerd.
#   status  exit 0 if `docker info` answers.
#   run     runs COMMAND with an engine up, then stops it only if `run` started it (the exit
#           status is COMMAND's): test processes running side by side share that one engine,
#           and none of them stops it under the others.
# Env: JHC_DOCKERD_PIDFILE (default /tmp/jhc-dockerd.pid), JHC_DOCKERD_LOG (/tmp/jhc-dockerd.log),
#      JHC_DOCKER_STORAGE_DRIVER (overlay2; vfs works too but copies the image per container),
#      JHC_DOCKERD_TIMEOUT seconds to wait for the engine (default 60).
set -euo pipefail

PIDFILE="${JHC_DOCKERD_PIDFILE:-/tmp/jhc-dockerd.pid}"
LOG="${JHC_DOCKERD_LOG:-/tmp/jhc-dockerd.log}"
DRIVER="${JHC_DOCKER_STORAGE_DRIVER:-overlay2}"
TIMEOUT="${JHC_DOCKERD_TIMEOUT:-60}"

log() { echo "ci-docker: $*" >&2; }

engine_answers() { docker info >/dev/null 2>&1; }

our_pid() {
    # The pid in our pidfile, only if that process is still a dockerd.
    [[ -s "$PIDFILE" ]] || return 1
    local pid
    pid="$(cat "$PIDFILE")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "dockerd" ]] || return 1
    echo "$pid"
}

ensure_packages() {
    local missing=()
    command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
    command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
    if ((${#missing[@]})); then
        log "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}" >&2 \
            || { apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 && apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}" >&2; }
    fi
}

wait_for_engine() {
    local deadline=$((SECONDS + TIMEOUT))
    until engine_answers; do
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep 0.5
    done
}

start() {
    ensure_packages
    if engine_answers; then
        log "reusing the Docker engine that already answers"
        echo reused
        return 0
    fi
    if pgrep -x dockerd >/dev/null 2>&1; then
        # Another dockerd is starting (e.g. a parallel test run): wait for it, don't race it.
        log "a dockerd is running but not answering yet; waiting up to ${TIMEOUT}s"
        if wait_for_engine; then
            echo reused
            return 0
        fi
        log "the running dockerd never answered; see its own log"
        return 1
    fi
    log "starting dockerd (storage driver $DRIVER), log $LOG"
    # setsid: the daemon must not die with the shell (or pytest's process group) that started it.
    setsid dockerd --iptables=false --storage-driver="$DRIVER" --pidfile="$PIDFILE" \
        >"$LOG" 2>&1 </dev/null &
    if ! wait_for_engine; then
        log "dockerd did not answer within ${TIMEOUT}s; last log lines:"
        tail -n 20 "$LOG" >&2 || true
        return 1
    fi
    echo started
}

stop() {
    local pid
    if ! pid="$(our_pid)"; then
        log "no dockerd started by this script is running; nothing to stop"
        return 0
    fi
    log "stopping dockerd pid $pid"
    kill -TERM "$pid"
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            log "dockerd pid $pid ignored SIGTERM for 30s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.5
    done
    rm -f "$PIDFILE"
}

run() {
    local how status=0
    how="$(start)" || return 1
    "$@" || status=$?
    if [[ "$how" == started ]]; then
        stop
    fi
    return "$status"
}

case "${1:-}" in
    start) start ;;
    run) shift; run "$@" ;;
    stop) stop ;;
    status) engine_answers ;;
    *)
        echo "usage: $0 start|stop|status|run COMMAND..." >&2
        exit 2
        ;;
esac
