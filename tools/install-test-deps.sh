#!/usr/bin/env bash
# Installs what the test suite needs: the Python requirements; for the browser
# tests, Debian's Chromium (Playwright drives /usr/bin/chromium; it never
# downloads a browser of its own); for the store's Postgres half, Debian's
# PostgreSQL server (tests/store/postgres.py starts a private one per session).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet -r requirements-dev.txt

# apt_install PACKAGE WHAT: install a Debian package as root or through sudo, or say what is skipped.
apt_install() {
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
  elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
  else
    echo "$1 is not installed and this user cannot install it; $2 will be skipped." >&2
  fi
}

if ! command -v chromium >/dev/null 2>&1; then
  apt_install chromium "the browser tests"
fi
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  apt_install postgresql "the PostgreSQL tests"
fi
