"""The batch document: which leaves one anchor added to the log, stored on IPFS.

RLP list ``[BATCH_VERSION, first_leaf_index, [leaf_cid, ...]]``; leaf ``first + k`` of
the log is the body stored under ``leaf_cid[k]``. With the chain's anchors (tree size,
root, batch CID) and these documents, anyone can rebuild the whole log.
"""

from __future__ import annotations

from dataclasses import dataclass

import rlp

from node.errors import ValidationError

BATCH_VERSION = 1


@dataclass(frozen=True)
class Batch:
    """Leaves ``[first, first + len(leaf_cids))`` of a log, by CID."""

    first: int
    leaf_cids: tuple[str, ...]

    def encode(self) -> bytes:
        """Return the canonical RLP encoding."""
        return bytes(rlp.encode([BATCH_VERSION, self.first, [c.encode() for c in self.leaf_cids]]))


def decode_batch(data: bytes) -> Batch:
    """Return the batch encoded in ``data``; raise ``ValidationError`` if malformed."""
    try:
        version, first, cids = rlp.decode(data)
        batch = Batch(int.from_bytes(first, "big"), tuple(bytes(c).decode("ascii") for c in cids))
    except (rlp.exceptions.DecodingError, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise ValidationError(f"batch document is malformed: {exc}") from exc
    if int.from_bytes(version, "big") != BATCH_VERSION:
        raise ValidationError(f"unknown batch version {int.from_bytes(version, 'big')}")
    if batch.encode() != data:
        raise ValidationError("batch document is not in canonical encoding")
    return batch
