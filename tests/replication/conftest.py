"""Fixtures for the replication tests: peer sync runs real nodes on one anvil chain."""

from __future__ import annotations

from tests.chain.conftest import anvil_chain  # noqa: F401  (fixture re-exported for this package)
