"""Anchoring: integrate pending leaves into this node's log and publish the tree head.

Like a Trillian log's sequencer, :meth:`Sequencer.anchor_pending` takes the queued leaves
(``status = pending``, by ``seq``, at most ``batch_max``: group commit, a batch is whatever
arrived while the previous anchor was being mined) and gives them the next leaf indexes of
the append-only log. The new **tree head** (size, root) is then published on-chain as an
anchor, together with the CID of the batch document that names the batch's leaves
(``node.ledger.batch``). In order:

1. the newest indexed anchor must still be on-chain (after a reorg the chain follower first
   rolls its leaves back, ``node.ledger.reorg``): a tree head never extends lost leaves;
2. the leaf bodies and the batch document are stored (content-addressed, idempotent);
3. the anchor transaction is sent; only once it is mined
4. the anchor and the leaves' indexes are committed to SQL in one transaction.

A crash between 3 and 4 is repaired at start by :meth:`Sequencer.recover`
(``node.ledger.recovery``), which adopts the on-chain anchor instead of anchoring the same
leaves twice. A failure before 3 leaves the leaves pending; the anchorer thread
(``node.ledger.anchorer``) retries.

Only the log's compact range (the frontier: its size and the roots of its perfect subtrees,
O(log n) hashes) is kept in memory, read from SQL once per process: a batch costs O(batch)
hashing, not O(log), and the node's memory does not grow with its log (the list of every leaf
hash it kept before cost ~73 B per leaf).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from node.db.models import Anchor, BusinessTransaction, TransactionStatus
from node.errors import ChainError
from node.ledger import reorg
from node.ledger.batch import Batch, compute_micros
from node.ledger.bodies import store_bodies
from node.ledger.bulk import mark_anchored
from node.ledger.proof import CompactRange
from node.ledger.protocols import AnchorRegistry, ContentStore
from node.ledger.recovery import adopt_own_anchors, get_newest_own_anchor
from node.ledger.rows import OWN_LOG, compute_hex
from node.ledger.signals import LedgerSignals

DEFAULT_BATCH_MAX = 256
SYSTEM_LOG = ""  # the subsystem field of anchors of the node's (system-wide) log
LOG_READ_ROWS = 10_000  # leaf hashes per fetch when the log is read from SQL (once a process)

#: called after each own anchor with (batch CID, leaf CIDs, their payload CIDs)
OnAnchored = Callable[[str, list[str], list[str]], None]


class Sequencer:
    """Anchor this node's pending leaves, adopt interrupted anchors, undo dropped ones."""

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        store: ContentStore,
        registry: AnchorRegistry,
        node_address: str,
        signals: LedgerSignals,
        write_lock: threading.Lock,
        batch_max: int = DEFAULT_BATCH_MAX,
        chain_reorgs: bool = True,
    ) -> None:
        """``chain_reorgs``: False on a chain no other producer can reorganise (the embedded
        chain): an anchor this process made and saw mined stays on it, so the check that the
        newest one is still there (:meth:`_check_last_anchor`) is made only for an anchor an
        earlier run left."""
        self._sessions = sessions
        self._store = store
        self._registry = registry
        self._node_address = node_address
        self._signals = signals
        self._write_lock = write_lock  # one writer of this process at a time (service.py)
        self.batch_max = batch_max
        # all in the local store and pinned when called (the syncer need not walk them again)
        self.on_anchored: OnAnchored | None = None
        self._anchor_lock = threading.Lock()  # one of anchor / recover / roll back at a time
        #: this node's log as a compact range (its size and full subtrees, O(log n) hashes):
        #: loaded once, then kept current; the leaf hashes themselves stay in SQL
        self._own_log: CompactRange | None = None
        self._chain_reorgs = chain_reorgs
        self._made_here: int | None = None  # index of the last anchor this process made

    # -- anchoring ----------------------------------------------------------------------------

    def anchor_pending(self) -> Anchor | None:
        """Anchor one batch of pending leaves; return its anchor, or None if none pending.

        Raises ``ChainError`` / ``StoreError`` if the anchor could not be made (the
        leaves stay pending and are retried).
        """
        with self._anchor_lock, self._sessions() as session:
            rows = self._read_pending(session)
            if not rows:
                return None
            self._check_last_anchor(session)
            frontier = copy.deepcopy(self._log(session))  # a failed anchor leaves it as it was
            first = frontier.size
            store_bodies(self._store, rows, first)
            for r in rows:
                frontier.append(bytes.fromhex(r.leaf_hash[2:]))
            batch = compute_batch(rows, first)
            batch_cid = self._store.add_bytes(batch.encode())
            anchor = self._publish_tree_head(frontier, len(rows), batch_cid)
            anchor = self._commit_anchor(session, anchor, rows, first)
            self._made_here = anchor.index
            self._own_log = frontier
        if self.on_anchored is not None:
            self.on_anchored(batch_cid, list(batch.leaf_cids), [r.payload for r in rows])
        self._signals.note_anchor()
        return anchor

    def _read_pending(self, session: Session) -> Sequence[Any]:
        """Return the next ``batch_max`` pending leaves by ``seq``, as plain rows (not ORM
        objects: a batch is thousands of leaves)."""
        return session.execute(
            select(
                BusinessTransaction.seq,
                BusinessTransaction.tx_id,
                BusinessTransaction.leaf_hash,
                BusinessTransaction.cid,
                BusinessTransaction.received_at,
                BusinessTransaction.body,
                BusinessTransaction.payload,
            )
            .where(BusinessTransaction.status == TransactionStatus.PENDING)
            .order_by(BusinessTransaction.seq)
            .limit(self.batch_max)
        ).all()

    def _check_last_anchor(self, session: Session) -> None:
        """Raise ``ChainError`` if this node's newest indexed anchor is no longer on-chain
        (a reorg dropped it): a new tree head must not extend leaves the chain lost. The
        chain follower rolls those leaves back to pending; anchoring resumes after it."""
        last = get_newest_own_anchor(session, self._node_address)
        if last is None or (not self._chain_reorgs and last.index == self._made_here):
            return
        try:
            onchain = self._registry.get_anchor(last.index)
            same = compute_hex(bytes(onchain.root)) == last.root and int(onchain.tree_size) == (
                last.tree_size
            )
        except Exception:  # out of range after a reorg, or the chain is unreachable
            same = False
        if not same:
            raise ChainError(
                f"anchor {last.index} (tree size {last.tree_size}) is not on-chain any more; "
                "waiting for the chain follower to roll its leaves back"
            )

    def _publish_tree_head(self, frontier: CompactRange, count: int, batch_cid: str) -> Anchor:
        """Send the anchor transaction of the tree head ``frontier`` (its last ``count``
        leaves listed in ``batch_cid``); return the anchor's row once it is mined."""
        root = frontier.root()
        receipt = self._registry.anchor(SYSTEM_LOG, root, frontier.size, count, batch_cid)
        return Anchor(
            index=int(receipt.index),
            root=compute_hex(root),
            tree_size=frontier.size,
            count=count,
            batch_cid=batch_cid,
            subsystem=SYSTEM_LOG,
            node=self._node_address,
            block_number=int(receipt.block_number),
            chain_tx_hash=compute_hex(bytes(receipt.tx_hash)),
        )

    def _commit_anchor(
        self, session: Session, anchor: Anchor, rows: Sequence[Any], first: int
    ) -> Anchor:
        """Commit ``anchor`` and its leaves' indexes (``first``, ``first + 1``, …) in one SQL
        transaction; return the anchor's row."""
        with self._write_lock:
            anchor = session.merge(anchor)  # the follower may have indexed it already
            mark_anchored(session, [r.seq for r in rows], first, anchor.index)
            session.commit()
        return anchor

    # -- the log in memory --------------------------------------------------------------------

    def _log(self, session: Session) -> CompactRange:
        """Return this node's log as a compact range (read from SQL once, leaf by leaf in
        index order, then kept current; a caller that appends to it owns the change)."""
        if self._own_log is None:
            hashes = session.scalars(
                select(BusinessTransaction.leaf_hash)
                .where(
                    BusinessTransaction.origin == OWN_LOG,
                    BusinessTransaction.leaf_index.is_not(None),
                )
                .order_by(BusinessTransaction.leaf_index)
                .execution_options(yield_per=LOG_READ_ROWS)
            )
            own_log = CompactRange()
            for leaf_hash in hashes:
                own_log.append(bytes.fromhex(leaf_hash[2:]))
            self._own_log = own_log
        return self._own_log

    # -- recovery and reorgs ------------------------------------------------------------------

    def recover(self, from_block: int = 0) -> int:
        """Adopt this node's on-chain anchors missing from SQL (a crash right after an
        anchor transaction), looked for from ``from_block`` on if this node indexed no
        anchor yet; return how many leaves were adopted.

        Raises ``ChainError``/``StoreError`` if the chain or the batch cannot be read, and
        ``CollegiumError`` if an on-chain batch does not match the pending leaves.
        """
        with self._anchor_lock, self._sessions() as session:
            try:
                adopted = adopt_own_anchors(
                    session,
                    registry=self._registry,
                    store=self._store,
                    node_address=self._node_address,
                    own_log=self._log,
                    from_block=from_block,
                )
                session.commit()
            except BaseException:
                self._own_log = None  # it may hold leaves that were not committed: read again
                raise
        return adopted

    def roll_back_above(self, block_number: int) -> int:
        """Undo this node's anchors mined above ``block_number`` (dropped by a reorg): their
        leaves become pending again and are re-anchored; return how many leaves.

        The rolled-back anchors are the newest ones, so the log keeps its prefix and the
        pending leaves (ordered by ``seq``) are appended again in the same order.
        """
        with self._anchor_lock, self._sessions() as session:
            dropped = reorg.get_own_anchors_above(session, self._node_address, block_number)
            if not dropped:
                return 0
            leaves = reorg.return_leaves_to_pending(session, dropped)
            session.commit()
            self._own_log = None
        self._signals.leaf_added.set()
        return leaves


def compute_batch(rows: Sequence[Any], first: int) -> Batch:
    """Return the batch document of ``rows`` appended from leaf index ``first`` (version 2:
    with each leaf's acceptance time)."""
    return Batch(
        first,
        tuple(r.cid for r in rows),
        tuple(compute_micros(r.received_at) for r in rows),
    )
