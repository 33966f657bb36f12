#!/bin/sh
# Installs Debian's chromium for the real-browser tests (test/browser) when it is missing.
# Those tests run headless /usr/bin/chromium through playwright-core; in CI they fail without it.
set -eu

if [ -x /usr/bin/chromium ]; then
  echo "install-chromium: /usr/bin/chromium is present."
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

echo "install-chromium: installing Debian's chromium package..."
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y chromium

if [ ! -x /usr/bin/chromium ]; then
  echo "install-chromium: apt-get finished but /usr/bin/chromium is still missing." >&2
  exit 1
fi
echo "install-chromium: done."
