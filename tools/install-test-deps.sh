#!/usr/bin/env bash
# Installs what the test suite needs: the Python requirements and, for the
# browser tests, Debian's Chromium (Playwright drives /usr/bin/chromium; it never
# downloads a browser of its own), and Debian's caddy for the edge-proxy test (tests/hosting/test_proxy.py).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet -r requirements-dev.txt
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "Chromium is not installed and this user cannot install it; the browser tests will be skipped." >&2
  fi
fi
if ! command -v caddy >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends caddy >/dev/null
  elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends caddy >/dev/null
  else
    echo "caddy is not installed and this user cannot install it; the edge-proxy test will be skipped." >&2
  fi
fi
