#!/usr/bin/env bash
# Install everything Collegium and its test suite need on a fresh machine:
# the Python package (editable, with dev tools) and the npm packages that ship
# binaries (solc for the contracts, anvil for multi-node and RPC tests).
# Running a node needs only the first step (contract artifacts are committed).
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check -e ".[dev]"

for dir in contracts frontend/assignment; do
    if [ -f "$dir/package-lock.json" ]; then
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    fi
done
