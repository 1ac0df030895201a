"""A log's RFC 9162 Merkle tree kept in SQL: proofs in O(log n) reads, nothing in RAM.

The tree of a log (``origin``: ``""`` for this node's own log, else another node's
address) is the tree of its leaf hashes ``transactions.leaf_hash`` ordered by
``leaf_index``. Node ``(h, i)`` is the Merkle tree hash of the full subtree of leaves
``[i * 2**h, (i + 1) * 2**h)``; once its leaves are anchored it never changes. Every
``STRIDE``-th level is persisted (``merkle_nodes``: levels 4, 8, 12, …, about n / 15 rows
for n leaves); a node of another level is folded from at most ``2**(STRIDE - 1)`` stored
nodes (or leaf hashes) just below it. ``merkle_heads`` says how many leaves the persisted
nodes cover; a tree head past that size is still answered, its unpersisted tail being read
from the leaf hashes (so a lagging :func:`catch_up` costs time, never correctness).

An inclusion or consistency proof is the list of Merkle tree hashes of O(log n) leaf
ranges (the recursion of RFC 9162 §2.1.3 / §2.1.4 on offsets instead of slices); each
range decomposes into O(log n) full subtrees. The ranges are planned first, then read
with one query per table, then hashed: a handful of SQL queries per proof at any size.
``node.ledger.proof`` keeps the O(n) list-based functions, the oracle of the tests.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import and_, delete, func, insert, or_, select
from sqlalchemy.orm import Session

from node.db.models import BusinessTransaction, MerkleHead, MerkleNode
from node.db.session import sqlite_cursor
from node.ledger.hasher import Hash32, empty_root, hash_children
from node.ledger.proof import CompactRange, compute_split
from node.sqlrows import insert_rows

STRIDE = 4  # persist levels 4, 8, 12, ...
CATCH_UP_CHUNK = 1 << 16  # leaves hashed per step of a catch-up (bounded memory)
_ZERO = bytes(32)
_catch_up_lock = threading.Lock()  # one catch-up at a time per process (they are idempotent)


def _fold(hashes: Sequence[bytes]) -> bytes:
    """Return the root of a full subtree from its ``2**k`` hashes of one level."""
    level = list(hashes)
    while len(level) > 1:
        level = [hash_children(level[j], level[j + 1]) for j in range(0, len(level), 2)]
    return level[0]


@dataclass
class _Reader:
    """Reads leaf hashes and stored nodes of one log: first records which (plan), then
    fetches them with one query per table, then answers from what it fetched."""

    session: Session
    origin: str
    persisted: int
    planning: bool = True
    leaf_ranges: list[tuple[int, int]] = field(default_factory=list)
    node_ranges: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    leaves: dict[int, bytes] = field(default_factory=dict)
    nodes: dict[tuple[int, int], bytes] = field(default_factory=dict)

    def leaf_hashes(self, lo: int, hi: int) -> list[bytes]:
        if self.planning:
            self.leaf_ranges.append((lo, hi))
            return [_ZERO] * (hi - lo)
        try:
            return [self.leaves[i] for i in range(lo, hi)]
        except KeyError as exc:
            raise LookupError(f"leaf {exc.args[0]} of log {self.origin!r} is not indexed") from exc

    def node_hashes(self, level: int, lo: int, hi: int) -> list[bytes]:
        if self.planning:
            self.node_ranges.setdefault(level, []).append((lo, hi))
            return [_ZERO] * (hi - lo)
        try:
            return [self.nodes[(level, i)] for i in range(lo, hi)]
        except KeyError as exc:
            raise LookupError(f"tree node {exc.args[0]} of log {self.origin!r} is missing") from exc

    def fetch(self) -> None:
        """Read everything the plan asked for and switch to answering."""
        self.planning = False
        if self.leaf_ranges:
            index = BusinessTransaction.leaf_index
            leaf_rows = self.session.execute(
                select(index, BusinessTransaction.leaf_hash).where(
                    or_(  # the log in every branch: SQLite then searches the index per range
                        *(
                            and_(BusinessTransaction.origin == self.origin, index >= lo, index < hi)
                            for lo, hi in _merge(self.leaf_ranges)
                        )
                    )
                )
            ).all()
            self.leaves = {int(i or 0): bytes.fromhex(h[2:]) for i, h in leaf_rows}
        if self.node_ranges:
            clauses = [
                and_(
                    MerkleNode.origin == self.origin,
                    MerkleNode.level == level,
                    MerkleNode.idx >= lo,
                    MerkleNode.idx < hi,
                )
                for level, ranges in self.node_ranges.items()
                for lo, hi in _merge(ranges)
            ]
            rows = self.session.execute(
                select(MerkleNode.level, MerkleNode.idx, MerkleNode.hash).where(or_(*clauses))
            ).all()
            self.nodes = {(int(lv), int(i)): bytes(h) for lv, i, h in rows}

    def full(self, height: int, index: int) -> bytes:
        """Return node ``(height, index)``, a full subtree."""
        lo = index << height
        hi = lo + (1 << height)
        if height == 0:
            return self.leaf_hashes(lo, hi)[0]
        if hi <= self.persisted:
            stored = height - height % STRIDE
            if stored == height:
                return self.node_hashes(height, index, index + 1)[0]
            if stored == 0:
                return _fold(self.leaf_hashes(lo, hi))
            span = height - stored
            return _fold(self.node_hashes(stored, index << span, (index + 1) << span))
        if lo >= self.persisted:  # the unpersisted tail: from the leaf hashes
            return _fold(self.leaf_hashes(lo, hi))
        return hash_children(self.full(height - 1, 2 * index), self.full(height - 1, 2 * index + 1))

    def mth(self, lo: int, hi: int) -> bytes:
        """Return the Merkle tree hash of leaves ``[lo, hi)`` (RFC 9162 §2.1.1)."""
        n = hi - lo
        if n == 1:
            return self.leaf_hashes(lo, hi)[0]
        if n & (n - 1) == 0 and lo % n == 0:
            return self.full(n.bit_length() - 1, lo // n)
        k = compute_split(n)
        return hash_children(self.mth(lo, lo + k), self.mth(lo + k, hi))


def _merge(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Return the leaf ranges whose Merkle tree hashes form PATH(index, D[size])."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    lo, hi, m = 0, size, index
    while hi - lo > 1:
        k = compute_split(hi - lo)
        if m < k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo, m = lo + k, m - k
    return ranges[::-1]


def consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """Return the leaf ranges whose Merkle tree hashes form PROOF(size1, D[size2])."""
    if not 0 < size1 <= size2:
        raise ValueError(f"consistency proof needs 0 < size1 <= size2, got {size1}, {size2}")
    ranges: list[tuple[int, int]] = []
    lo, hi, m, complete = 0, size2, size1, True
    while True:
        n = hi - lo
        if m == n:
            if not complete:
                ranges.append((lo, hi))
            break
        k = compute_split(n)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    return ranges[::-1]


def persisted_size(session: Session, origin: str) -> int:
    """Return how many leaves of log ``origin`` the persisted nodes cover."""
    return int(session.scalar(select(MerkleHead.size).where(MerkleHead.origin == origin)) or 0)


def log_size(session: Session, origin: str) -> int:
    """Return the number of leaves of log ``origin`` in the index (max leaf index + 1)."""
    last = session.scalar(
        select(func.max(BusinessTransaction.leaf_index)).where(BusinessTransaction.origin == origin)
    )
    return 0 if last is None else int(last) + 1


def _hashes_of(session: Session, origin: str, ranges: Sequence[tuple[int, int]]) -> list[Hash32]:
    reader = _Reader(session, origin, persisted_size(session, origin))
    for lo, hi in ranges:  # plan
        reader.mth(lo, hi)
    reader.fetch()
    return [Hash32(reader.mth(lo, hi)) for lo, hi in ranges]


def root(session: Session, origin: str, size: int) -> Hash32:
    """Return the root hash of the first ``size`` leaves of log ``origin``."""
    if size == 0:
        return empty_root()
    return _hashes_of(session, origin, [(0, size)])[0]


def inclusion_path(session: Session, origin: str, index: int, size: int) -> list[Hash32]:
    """Return PATH(index, D[size]) of log ``origin`` (equal to ``proof.inclusion_proof``).

    Raises ``ValueError`` for an index outside the tree and ``LookupError`` if a leaf of
    the tree is not indexed."""
    return _hashes_of(session, origin, inclusion_ranges(index, size))


def consistency_path(session: Session, origin: str, size1: int, size2: int) -> list[Hash32]:
    """Return PROOF(size1, D[size2]) of log ``origin`` (equal to
    ``proof.consistency_proof``)."""
    return _hashes_of(session, origin, consistency_ranges(size1, size2))


def frontier(session: Session, origin: str, size: int) -> CompactRange:
    """Return the compact range of the first ``size`` leaves (its full subtrees, one per set
    bit of ``size``), ready to append the next leaves to — O(log n) reads."""
    heights = [h for h in range(size.bit_length() - 1, -1, -1) if size >> h & 1]
    starts = []
    lo = 0
    for h in heights:
        starts.append((h, lo >> h))
        lo += 1 << h
    reader = _Reader(session, origin, persisted_size(session, origin))
    for h, i in starts:
        reader.full(h, i)
    reader.fetch()
    return CompactRange.of([(h, reader.full(h, i)) for h, i in starts], size)


def catch_up(session: Session, origin: str, size: int | None = None) -> int:
    """Persist the full-subtree nodes of log ``origin`` up to ``size`` leaves (default: all
    indexed leaves); return the persisted size. Works in chunks of ``CATCH_UP_CHUNK`` leaves
    and flushes (the caller commits). Raises ``LookupError`` if a leaf is missing."""
    with _catch_up_lock:
        target = log_size(session, origin) if size is None else size
        done = persisted_size(session, origin)
        while done < target:
            step = min(target, (done // CATCH_UP_CHUNK + 1) * CATCH_UP_CHUNK)
            _extend(session, origin, done, step)
            done = step
        return done


def _extend(session: Session, origin: str, done: int, size: int) -> None:
    """Persist the nodes of stored levels that are complete at ``size`` but not at ``done``."""
    base = done >> STRIDE << STRIDE
    rows = session.execute(
        select(BusinessTransaction.leaf_index, BusinessTransaction.leaf_hash)
        .where(
            BusinessTransaction.origin == origin,
            BusinessTransaction.leaf_index >= base,
            BusinessTransaction.leaf_index < size,
        )
        .order_by(BusinessTransaction.leaf_index)
    ).all()
    if len(rows) != size - base or (rows and rows[0][0] != base):
        raise LookupError(f"log {origin!r}: leaves {base}..{size - 1} are not all indexed")
    below = [bytes.fromhex(h[2:]) for _, h in rows]  # level 0 from ``base``
    below_start = base
    new: list[dict[str, object]] = []
    level = STRIDE
    while (size >> level) > (done >> level):
        first, last = done >> level, size >> level  # new nodes: [first, last)
        need_lo = first << STRIDE  # children index range at the level below
        if below_start > need_lo:  # the stored left part of the block
            stored = session.execute(
                select(MerkleNode.hash)
                .where(
                    MerkleNode.origin == origin,
                    MerkleNode.level == level - STRIDE,
                    MerkleNode.idx >= need_lo,
                    MerkleNode.idx < below_start,
                )
                .order_by(MerkleNode.idx)
            ).all()
            below = [bytes(h) for (h,) in stored] + below
            below_start = need_lo
        offset = need_lo - below_start
        width = 1 << STRIDE
        made = [
            _fold(below[offset + j * width : offset + (j + 1) * width]) for j in range(last - first)
        ]
        new.extend(
            {"origin": origin, "level": level, "idx": first + j, "hash": h}
            for j, h in enumerate(made)
        )
        below, below_start = made, first
        level += STRIDE
    if new:
        _insert_nodes(session, new)
    head = session.get(MerkleHead, origin)
    if head is None:
        session.add(MerkleHead(origin=origin, size=size))
    else:
        head.size = size
    session.flush()


def truncate(session: Session, origin: str, size: int) -> None:
    """Forget the persisted nodes of log ``origin`` that cover leaves at or past ``size``
    (its leaves from ``size`` on were rolled back); the caller commits."""
    with _catch_up_lock:
        head = session.get(MerkleHead, origin)
        if head is None or head.size <= size:
            return
        for level in range(STRIDE, 64, STRIDE):
            if (head.size >> level) == 0:
                break
            session.execute(
                delete(MerkleNode).where(
                    MerkleNode.origin == origin,
                    MerkleNode.level == level,
                    MerkleNode.idx >= size >> level,
                )
            )
        head.size = size
        session.flush()


def _insert_nodes(session: Session, nodes: list[dict[str, object]]) -> None:
    """Insert ``nodes`` (``merkle_nodes`` rows) in the session's transaction; on SQLite as
    multi-row ``INSERT``s on its own connection (``node.sqlrows``: no GIL hand-off per row)."""
    if session.get_bind().dialect.name != "sqlite":
        session.execute(insert(MerkleNode), nodes)
        return
    with sqlite_cursor(session) as cursor:
        insert_rows(
            cursor,
            f"INSERT INTO {MerkleNode.__tablename__} (origin, level, idx, hash)",
            ((n["origin"], n["level"], n["idx"], n["hash"]) for n in nodes),
            4,
        )
