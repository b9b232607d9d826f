#!/bin/bash
# The storage directory is a bind mount created by Docker as root: hand it to the package's
# unprivileged user, then run the registry as that user.
set -euo pipefail
chown -R docker-registry:docker-registry /var/lib/docker-registry
exec setpriv --reuid=docker-registry --regid=docker-registry --init-groups \
    docker-registry serve /etc/docker/registry/config.yml
