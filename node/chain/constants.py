"""Constants the chain backend and the embedded chain share, in a module that loads nothing
(so :mod:`node.chain.backend` need not load py-evm, and the embedded chain need not import
the backend that opens it).

| constant               | value  | meaning                                                  |
|------------------------|--------|----------------------------------------------------------|
| ``JSONRPC_SERVER_ERROR`` | -32000 | JSON-RPC 2.0 "server error" (implementation-defined)   |
| ``EMBEDDED_CHAIN_ID``  | 1337   | chain id of every embedded Collegium chain (EIP-155)     |
"""

from __future__ import annotations

from typing import Final

JSONRPC_SERVER_ERROR: Final = -32000
"""JSON-RPC 2.0 "server error" (implementation-defined)."""

EMBEDDED_CHAIN_ID: Final = 1337
"""Chain id of every embedded Collegium chain (EIP-155 replay domain of dev chains)."""
