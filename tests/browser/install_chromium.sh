#!/usr/bin/env bash
# Debian's Chromium and ChromeDriver for the browser tests (tests/browser), installed once per machine.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then exit 0; fi
[ "$(id -u)" -eq 0 ] || { echo "chromium/chromedriver missing and not root: apt-get install chromium chromium-driver" >&2; exit 1; }
apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >&2
