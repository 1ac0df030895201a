"""Bounds of the integer query and path parameters of the read API.

Every integer a client may put in a URL is bounded in the route's signature (so the OpenAPI
documents it and FastAPI answers 422 before any handler runs) by what the index stores: its
integer columns (``seq``, ``timestamp``, ``anchor_index``, tree sizes) are signed 64-bit, so a
larger value could never match and would overflow the database driver (a 500). Page sizes are
bounded tighter, by ``node.ledger.service.MAX_PAGE_SIZE``.
"""

from __future__ import annotations

# the largest value an integer column of the index holds (SQLite INTEGER, PostgreSQL BIGINT),
# one constant with the transaction schema's bound on nonce and timestamp
from node.ledger.transaction import MAX_INDEX_INT

__all__ = ["MAX_INDEX_INT"]
