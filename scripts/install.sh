#!/usr/bin/env bash
# Install everything Collegium and its test suite need on a fresh machine:
# the Python package (editable, with dev tools) and the npm packages that ship
# binaries (solc for the contracts, anvil for multi-node and RPC tests).
# Running a node needs only the first step (contract artifacts are committed).
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check -e ".[dev]"

for dir in contracts frontend/assignment frontend; do
    if [ -f "$dir/package-lock.json" ]; then
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    fi
done

# Debian packages the tests use: chromium for the browser tests (driven through
# Playwright's executable_path, never `playwright install`), a PostgreSQL server for
# the index tests, and for the Docker Compose bring-up (tests/deploy) the Docker engine
# (docker.io: dockerd, started by the test itself) and debootstrap (the stand-in base image). Installed only when missing and apt-get exists; failure only warns
# (the tests that need them then skip and say why).
apt_wanted=()
[ -x /usr/bin/chromium ] || apt_wanted+=(chromium)
command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
    || apt_wanted+=(postgresql)
command -v dockerd >/dev/null 2>&1 || apt_wanted+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || apt_wanted+=(debootstrap)
if [ "${#apt_wanted[@]}" -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
    { apt-get update -qq \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_wanted[@]}"; } \
        || echo "warning: could not install ${apt_wanted[*]}; tests needing them will skip" >&2
fi
