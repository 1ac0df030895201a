"""The batch document: which leaves one anchor added to the log, stored on IPFS.

Version 1 is the RLP list ``[1, first_leaf_index, [leaf_cid, ...]]``; leaf ``first + k``
of the log is the body stored under ``leaf_cid[k]``. Version 2 appends when the node
accepted each leaf, in microseconds since the Unix epoch:
``[2, first_leaf_index, [leaf_cid, ...], [received_at_us, ...]]`` — not signed by the
wallets, but committed to by the anchor (its CID is on-chain), so ``collegium reindex``
restores the index exactly. With the chain's anchors (tree size, root, batch CID) and
these documents, anyone can rebuild the whole log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import rlp

from node.errors import ValidationError
from node.ledger.transaction import compute_rlp

BATCH_VERSION = 1
BATCH_VERSION_TIMED = 2
UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def compute_micros(moment: datetime) -> int:
    """Return ``moment`` as microseconds since the Unix epoch (naive = UTC, as SQLite
    returns it): a leaf's acceptance time in a version 2 batch."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - UNIX_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass(frozen=True)
class Batch:
    """Leaves ``[first, first + len(leaf_cids))`` of a log, by CID (and acceptance time)."""

    first: int
    leaf_cids: tuple[str, ...]
    received_at_us: tuple[int, ...] = ()

    def encode(self) -> bytes:
        """Return the canonical RLP encoding (version 2 when acceptance times are set)."""
        cids: list[Any] = [c.encode() for c in self.leaf_cids]
        if self.received_at_us:
            assert len(self.received_at_us) == len(self.leaf_cids)
            items = [BATCH_VERSION_TIMED, self.first, cids, list(self.received_at_us)]
            return compute_rlp(items)  # rlp.encode's bytes, without its type inference
        return compute_rlp([BATCH_VERSION, self.first, cids])


def _uint(item: object) -> int:
    if not isinstance(item, bytes):
        raise TypeError("expected an RLP string")
    return int.from_bytes(item, "big")


def decode_batch(data: bytes) -> Batch:
    """Return the batch encoded in ``data``; raise ``ValidationError`` if malformed."""
    try:
        items = rlp.decode(data)
        version = _uint(items[0])
        if version == BATCH_VERSION and len(items) == 3:
            times: tuple[int, ...] = ()
        elif version == BATCH_VERSION_TIMED and len(items) == 4:
            times = tuple(_uint(t) for t in items[3])
        else:
            raise ValidationError(f"unknown batch version {version} ({len(items)} items)")
        batch = Batch(_uint(items[1]), tuple(bytes(c).decode("ascii") for c in items[2]), times)
    except ValidationError:
        raise
    except (rlp.exceptions.DecodingError, ValueError, TypeError, UnicodeDecodeError, IndexError,
            AssertionError) as exc:  # fmt: skip
        raise ValidationError(f"batch document is malformed: {exc}") from exc
    if times and len(times) != len(batch.leaf_cids):
        raise ValidationError("batch document has a time for each leaf or none")
    if batch.encode() != data:
        raise ValidationError("batch document is not in canonical encoding")
    return batch
