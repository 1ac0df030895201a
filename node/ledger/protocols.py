"""What the ledger needs from the parts below it: the content store and the registry.

Structural types (``typing.Protocol``): ``node.storage``'s block stores and
``node.chain.registry.Registry`` satisfy them, and so do the tests' fakes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol


class ContentStore(Protocol):
    """What the ledger needs from the content store."""

    def add_bytes(
        self, data: bytes, *, cid_version: int = 1, pin: bool = True, only_hash: bool = False
    ) -> str:
        """Return the CID of ``data`` after storing it."""
        ...

    def cat(self, cid: str, path: str = "") -> bytes:
        """Return the bytes of the file ``cid``."""
        ...

    def has(self, cid: str) -> bool:
        """Return whether every block of ``cid`` is present."""
        ...


class AnchorRegistry(Protocol):
    """What the ledger needs from the registry contract."""

    def subsystem_exists(self, name: str) -> bool:
        """Return whether ``name`` is a registered subsystem."""
        ...

    def is_participant(self, name: str, account: str) -> bool:
        """Return whether ``account`` participates in ``name``."""
        ...

    def anchor(
        self, subsystem: str, root: bytes, tree_size: int, count: int, batch_cid: str
    ) -> Any:
        """Anchor ``root``; return a receipt with ``tx_hash``, ``block_number``, ``index``."""
        ...

    def get_anchor(self, index: int) -> Any:
        """Return anchor ``index`` (``root``, ``tree_size``, ``count``, ``batch_cid``, …)."""
        ...

    def own_anchors(self, node: str, from_block: int = 0) -> Iterable[Any]:
        """Return the anchors ``node`` made from block ``from_block`` on, in index order,
        each with its ``index`` and the ``tx_hash`` of the transaction that made it."""
        ...
