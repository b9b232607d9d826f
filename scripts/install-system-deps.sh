#!/usr/bin/env bash
# Installs what the test suite runs for real: the Debian packages below and, from npm,
# configurable-http-proxy (into .cache/npm, not globally). Idempotent and quick when done.
# `install-system-deps.sh tools`: only what `make tools` (pytest -m "needs and not integration
# and not e2e") runs. `make unit` needs none of it.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-all}"

tool_packages=(
  cloud-init                      # `cloud-init schema` validates the rendered user_data
  shellcheck                      # lint of the bootstrap scripts
  e2fsprogs util-linux iptables   # the data-volume and metadata-block scripts, run in tests
  systemd                         # systemd-analyze calendar checks the prune schedule
  caddy                           # the rendered Caddyfile, adapted and served for real
  openssh-server                  # `sshd -T`: our drop-in wins over cloud-init's
  slapd ldap-utils                # the LDAP bootstrap and reconcile run against a real slapd
  postgresql                      # the Postgres image's entrypoint; hub state (integration)
)
integration_packages=(
  restic                          # services/backup/jhc-backup, run for real in tests
  docker.io debootstrap           # a real Docker engine and a registry-free base image
  openssh-server openssh-client   # `sshd -T` checks the bootstrap's sshd drop-in; ssh-keygen
  chromium chromium-driver        # tests/e2e: a person's path in a real headless browser
  libnss3-tools                   # certutil: that browser trusts the deployment's own CA
  socat                           # tests/e2e: the browser in a network namespace of its own
  iproute2                        # ip: tests/e2e's namespaces, the swarm-steps engine's bridge
)
packages=("${tool_packages[@]}")
if [[ "$mode" != tools ]]; then
  packages+=("${integration_packages[@]}")
  # Node.js may come from elsewhere than Debian (then Debian's npm would conflict with it).
  command -v npm >/dev/null || packages+=(nodejs npm)  # configurable-http-proxy
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} )); then
  if (( EUID != 0 )); then
    echo "missing Debian packages: ${missing[*]} (run: sudo $0)" >&2
    exit 1
  fi
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # slapd must not create its own example database; the tests bootstrap their own.
  echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
  # Packages must not start their services (postgresql, docker.io): the tests start and stop
  # their own instances. policy-rc.d is Debian's switch for that, removed afterwards.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  # Wait for another apt run (a parallel test session) instead of failing on its lock.
  apt_opts=(-o DPkg::Lock::Timeout=600)
  apt-get "${apt_opts[@]}" update -qq
  apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[[ "$mode" == tools ]] && exit 0
chp_version=5.3.0
if [[ ! -x .cache/npm/node_modules/.bin/configurable-http-proxy ]] ||
   ! grep -q "\"version\": \"$chp_version\"" .cache/npm/node_modules/configurable-http-proxy/package.json; then
  npm install --silent --no-audit --no-fund --prefix .cache/npm "configurable-http-proxy@$chp_version"
fi
