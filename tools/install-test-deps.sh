#!/usr/bin/env bash
# Installs what the test suite needs: the Python requirements and Debian's packages for the tests that
# drive real programs: chromium (Playwright drives /usr/bin/chromium; it never downloads a browser of its
# own), postgresql (tests/store/postgres.py starts a private server for the store's PostgreSQL half) and
# caddy (the edge-proxy test, tests/hosting/test_proxy.py), and the optional cluster requirements (Ray, for
# tests/jobs/test_ray_executor.py). What is already there is not installed again.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet -r requirements-dev.txt
python -m pip install --quiet -r requirements-cluster.txt
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v caddy >/dev/null 2>&1 || missing+=(caddy)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
  else
    echo "Not installed, and this user cannot install them: ${missing[*]}; the tests that need them will be skipped." >&2
    exit 0
  fi
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
