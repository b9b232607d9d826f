# shellcheck shell=bash
# Sourced by the scripts that Pulumi runs against the host's Docker engine.
# JHC_DOCKER_HOST: ssh://user@address (the docker CLI of the host is used over ssh, with the
# stack's ssh options in JHC_SSH_OPTS) or a local engine address such as unix:///var/run/docker.sock.
: "${JHC_DOCKER_HOST:?JHC_DOCKER_HOST is not set}"
read -r -a jhc_ssh_opts <<< "${JHC_SSH_OPTS:-}"
unset DOCKER_CONTEXT  # the stack decides the engine, never the shell

engine_docker() {
  if [[ "$JHC_DOCKER_HOST" == ssh://* ]]; then
    # One quoted command line: ssh joins its arguments with spaces for the remote shell.
    # shellcheck disable=SC2029  # quoted on purpose for the remote shell
    ssh "${jhc_ssh_opts[@]}" "${JHC_DOCKER_HOST#ssh://}" "$(printf '%q ' docker "$@")"
  else
    DOCKER_HOST="$JHC_DOCKER_HOST" docker "$@"
  fi
}
