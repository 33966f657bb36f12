#!/usr/bin/env bash
# Installs Debian's redis-server (and redis-cli with it) for the tests that run real redis
# processes (test/helpers/redis.ts), when it is missing. Those tests start their own servers
# on free loopback ports, so no system redis service may be left running on 6379.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
  echo "install-redis: $(redis-server --version) is present."
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
fi

echo "install-redis: installing Debian's redis-server package..."
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server

# The package starts the system service where an init system runs (systemd, or sysvinit via
# policy-rc.d allowing it); the tests want their own servers only. Errors mean it was not
# running.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  $SUDO systemctl disable --now redis-server >/dev/null 2>&1 || true
fi
$SUDO service redis-server stop >/dev/null 2>&1 || true

if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  echo "install-redis: apt-get finished but redis-server or redis-cli is still missing." >&2
  exit 1
fi
if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "install-redis: warning: something still answers PING on 127.0.0.1:6379." >&2
fi
echo "install-redis: $(redis-server --version) installed."
