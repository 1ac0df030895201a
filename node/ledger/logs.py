"""Index the leaves of every other node's log from the chain and the content store.

The chain follower stores every node's anchors (``anchors``); the peer syncer replicates
every batch document and leaf the chain references into the local store. For each other
node, in anchor order, :class:`LogIndexer` reads the next anchor's batch document and leaf
bodies from the local store and inserts them as that node's leaves (``transactions.origin``
= its address) only once they are verified:

* the batch starts where the indexed part of that log ends and lists ``count`` leaves;
* each body hashes to its CID, decodes canonically, its EIP-712 signature recovers, and it
  is signed for this chain and registry (when the indexer knows them);
* the root recomputed from the log's persisted tree (``node.ledger.tree.frontier``, O(log n)
  reads) and the new leaf hashes equals the root anchored on-chain.

All rows of one batch, their parties and the tree nodes they complete are one SQL
transaction: a bad batch is logged and skipped, never half-inserted. A log's later batches
cannot be verified without the earlier leaves (the roots cover the whole log), so a batch
that is missing from the store or bad stops that log until it is retried (exponential
back-off); other logs go on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from node.db.models import Anchor, TransactionStatus
from node.errors import CollegiumError, NotFoundInStore, StoreError, ValidationError
from node.ledger import tree
from node.ledger.batch import decode_batch
from node.ledger.bulk import insert_leaves
from node.ledger.hasher import hash_leaf
from node.ledger.protocols import ContentStore
from node.ledger.rows import row_values
from node.ledger.transaction import Domain, decode_leaf
from node.ledger.verifier import compute_leaf_cid

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RETRY_BASE_SECONDS = 2.0
RETRY_MAX_SECONDS = 300.0


def block_time_of(w3: Any) -> Callable[[int], datetime]:
    """Return a function giving a block's time (for batch documents of version 1)."""

    def block_time(number: int) -> datetime:
        return datetime.fromtimestamp(int(w3.eth.get_block(number)["timestamp"]), UTC)

    return block_time


class BadBatch(CollegiumError):
    """An anchor's batch does not match the chain (wrong leaves, root, order or domain)."""


class BatchUnavailable(CollegiumError):
    """An anchor's batch document or one of its leaves is not in the local store yet."""


@dataclass
class _Blocked:
    anchor: int
    failures: int
    until: float


@dataclass(frozen=True)
class IndexedBatch:
    """One other node's batch now in the index."""

    origin: str
    anchor_index: int
    leaves: int


class LogIndexer:
    """Insert other nodes' anchored leaves, verified, into the index (see module doc)."""

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        store: ContentStore,
        node_address: str,
        domain: Domain | None = None,
        block_time: Callable[[int], datetime] | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_missing: Callable[[], None] | None = None,
    ) -> None:
        self._sessions = sessions
        # called when an anchor waits for blocks the store lacks (the syncer's wake-up): a peer's
        # batch is then fetched at once, not at the syncer's next round
        self._on_missing = on_missing
        self._store = store
        self.node_address = node_address.lower()
        self.domain = domain
        self._block_time = block_time
        self._clock = clock
        self._blocked: dict[str, _Blocked] = {}
        self._lock = threading.Lock()
        self.bad_batches = 0

    def retry_now(self) -> None:
        """Forget the back-off of every waiting log: the store may hold their batches now
        (the syncer calls this after a round that fetched blocks)."""
        self._blocked.clear()

    def index(self, max_batches: int | None = None) -> list[IndexedBatch]:
        """Index the next verified batches of every other node's log; return them."""
        with self._lock:
            return self._index(max_batches)

    def _index(self, max_batches: int | None) -> list[IndexedBatch]:
        done: list[IndexedBatch] = []
        with self._sessions() as session:
            origins = session.scalars(
                select(Anchor.node)
                .where(func.lower(Anchor.node) != self.node_address)
                .group_by(Anchor.node)
            ).all()
        for origin in origins:
            blocked = self._blocked.get(origin)
            if blocked is not None and self._clock() < blocked.until:
                continue
            while max_batches is None or len(done) < max_batches:
                anchor = self._next_anchor(origin)
                if anchor is None:
                    break
                try:
                    done.append(self._index_batch(anchor))
                except (BadBatch, BatchUnavailable) as exc:
                    self._block(origin, anchor.index, exc)
                    break
                self._blocked.pop(origin, None)
        return done

    def _next_anchor(self, origin: str) -> Anchor | None:
        with self._sessions() as session:
            size = tree.log_size(session, origin)
            return session.scalar(
                select(Anchor)
                .where(Anchor.node == origin, Anchor.tree_size > size)
                .order_by(Anchor.index)
                .limit(1)
            )

    def _block(self, origin: str, anchor: int, exc: CollegiumError) -> None:
        previous = self._blocked.get(origin)
        failures = 1 if previous is None or previous.anchor != anchor else previous.failures + 1
        delay = min(RETRY_BASE_SECONDS * 2 ** (failures - 1), RETRY_MAX_SECONDS)
        self._blocked[origin] = _Blocked(anchor, failures, self._clock() + delay)
        if isinstance(exc, BadBatch):
            self.bad_batches += 1
            log.warning("log of %s: anchor %d skipped: %s", origin, anchor, exc)
        else:
            log.info("log of %s: anchor %d waits for the store: %s", origin, anchor, exc)
            if self._on_missing is not None:
                self._on_missing()

    def _read(self, cid: str) -> bytes:
        """Return the bytes of ``cid`` from the local store only (the peer syncer fetches)."""
        try:
            if self._store.has(cid):
                return self._store.cat(cid)
        except NotFoundInStore:
            pass
        except StoreError as exc:  # a corrupted block: the syncer repairs it
            raise BatchUnavailable(f"{cid} cannot be read from the local store: {exc}") from exc
        raise BatchUnavailable(f"{cid} is not in the local store yet")

    def _index_batch(self, anchor: Anchor) -> IndexedBatch:
        origin = anchor.node
        name = f"anchor {anchor.index} of {origin}"
        try:
            batch = decode_batch(self._read(anchor.batch_cid))
        except ValidationError as exc:
            raise BadBatch(f"{name}: {exc}") from exc
        first = anchor.tree_size - anchor.count
        if batch.first != first or len(batch.leaf_cids) != anchor.count:
            raise BadBatch(
                f"{name}: batch lists leaves {batch.first}..+{len(batch.leaf_cids)}, "
                f"the anchor says {first}..+{anchor.count}"
            )
        fallback = None
        if not batch.received_at_us:
            fallback = self._block_time(anchor.block_number) if self._block_time else EPOCH
        rows: list[dict[str, Any]] = []
        parties: list[list[str]] = []
        for offset, cid in enumerate(batch.leaf_cids):
            body = self._read(cid)
            if compute_leaf_cid(body) != cid:
                raise BadBatch(f"{name}: the bytes of leaf {cid} do not hash to its CID")
            try:
                signed = decode_leaf(body)  # canonical encoding, signature recovers
            except ValidationError as exc:
                raise BadBatch(f"{name}: leaf {cid}: {exc}") from exc
            if self.domain is not None and signed.domain != self.domain:
                raise BadBatch(f"{name}: leaf {cid} is signed for another chain or registry")
            if batch.received_at_us:
                received = EPOCH + timedelta(microseconds=batch.received_at_us[offset])
            else:
                received = fallback or EPOCH
            values = row_values(signed, body, cid, received)
            values.update(
                origin=origin,
                leaf_index=first + offset,
                anchor_index=anchor.index,
                status=TransactionStatus.ANCHORED,
            )
            rows.append(values)
            parties.append(list(signed.tx.parties))
        with self._sessions() as session:
            if tree.log_size(session, origin) != first:
                raise BadBatch(f"{name}: the indexed log of {origin} does not end at {first}")
            frontier = tree.frontier(session, origin, first)
            for values in rows:
                frontier.append(hash_leaf(values["body"]))
            root = "0x" + frontier.root().hex()
            if root != anchor.root.lower():
                raise BadBatch(f"{name}: the leaves hash to {root}, the chain has {anchor.root}")
            try:
                insert_leaves(session, rows, parties)
            except IntegrityError as exc:  # the same transaction or nonce twice in one log
                session.rollback()
                raise BadBatch(f"{name}: a transaction or signer nonce repeats in the log") from exc
            tree.catch_up(session, origin, anchor.tree_size)
            session.commit()
        return IndexedBatch(origin, anchor.index, len(rows))
