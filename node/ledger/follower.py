"""The chain follower: index the registry's events into SQL, reorg-safe.

It reads the registry's logs block range by block range (``get_logs`` on the embedded
chain scans blocks, so ranges stay small and the work is incremental), from the block
after the last one indexed up to ``head - confirmations``, and in one SQL transaction per
range stores

* every registry event (``registry_events``: the source of truth of the derived tables);
* ``Anchored`` events of *other* nodes as ``anchors`` rows (this node's own anchors are
  written by the ledger service, which also links their leaves);
* the derived tables ``subsystems``, ``participants`` and ``nodes``
  (``node.ledger.derived``);
* the hash and parent hash of the indexed blocks (``indexed_blocks``).

After each pass, with a :class:`node.ledger.logs.LogIndexer`, it indexes the leaves of other
nodes' new anchors (verified from the local store) and persists new nodes of the Merkle
trees (``node.ledger.tree``).

Reorgs: before each range the follower checks that the hash it stored for the last
indexed block is still the chain's hash at that height, and that the first new block's
parent hash equals it. On a mismatch it walks back through the stored hashes to the
newest block still on the chain (the fork point), deletes every row indexed above it,
returns this node's own anchors above it to ``pending`` (the anchorer anchors those
leaves again), deletes other nodes' leaves of the dropped anchors (and their tree nodes;
both in ``node.ledger.reorg``),
rebuilds the derived tables from the remaining events, tells ``on_fork`` (the epoch
service forgets the epochs and attestations read above it) and goes on from
the fork point. Hashes are kept for every block within ``REORG_WINDOW`` of the head;
a reorg deeper than that is reported as an error instead of being guessed at.

This module reads the chain and decides what to index or roll back; the SQL writes (events
decoded and applied, block hashes kept, a rollback) are ``node.ledger.registry_events``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from eth_utils import to_checksum_address
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3

from node.chain.logpager import LogPager
from node.db.models import IndexedBlock
from node.errors import ChainError, CollegiumError
from node.hashing import as_hex
from node.ledger import tree
from node.ledger.derived import ParticipantChange
from node.ledger.logs import LogIndexer
from node.ledger.progress import (
    PROGRESS_LOG_SECONDS,
    RATE_WINDOW_SECONDS,
    IndexProgress,
    ProgressMeter,
)
from node.ledger.registry_events import (
    INDEXED_EVENTS,
    REORG_WINDOW,
    EventDecoder,
    roll_back_index,
    store_range,
)
from node.ledger.rows import OWN_LOG
from node.loops import BackgroundLoop

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_CONFIRMATIONS",
    "INDEXED_EVENTS",
    "IndexProgress",
    "PROGRESS_LOG_SECONDS",
    "RATE_WINDOW_SECONDS",
    "REORG_WINDOW",
    "ChainFollower",
    "ReorgTooDeep",
    "SyncResult",
]

DEFAULT_CONFIRMATIONS = 2
DEFAULT_RANGE_BLOCKS = 64
DEFAULT_POLL_SECONDS = 1.0
#: ``confirmations``: index up to head - confirmations; ``safe``/``finalized``: and no further
#: than the block with that tag (where the chain has none, confirmations alone)
FINALITY_TAGS = ("confirmations", "safe", "finalized")
RETRY_MAX_SECONDS = 30.0


class ReorgTooDeep(ChainError):
    """The chain reorganised below the oldest block hash the follower kept."""


@dataclass(frozen=True)
class SyncResult:
    """What one :meth:`ChainFollower.sync` call did."""

    indexed_to: int  # the last indexed block (-1 if none)
    events: int  # events indexed
    rolled_back_to: int | None = None  # the fork point if a reorg was handled


class ChainFollower(BackgroundLoop):
    """Index registry events into SQL after ``confirmations`` blocks; survive reorgs."""

    thread_name = "follower"

    def __init__(
        self,
        *,
        w3: Web3,
        registry_address: str,
        sessions: sessionmaker[Session],
        node_address: str = "",
        confirmations: int = DEFAULT_CONFIRMATIONS,
        finality: str = "confirmations",
        start_block: int = 0,
        range_blocks: int = DEFAULT_RANGE_BLOCKS,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        on_participants_changed: Callable[[str | None, str | None], None] | None = None,
        rollback_own_anchors: Callable[[int], int] | None = None,
        on_fork: Callable[[int], None] | None = None,
        log_indexer: LogIndexer | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.w3 = w3
        self.address = to_checksum_address(registry_address)
        self._sessions = sessions
        self.node_address = node_address.lower()
        self.confirmations = confirmations
        if finality not in FINALITY_TAGS:
            raise ValueError(f"finality must be one of {FINALITY_TAGS}, got {finality!r}")
        self.finality = finality
        self.finality_supported: bool | None = None  # None: not asked yet
        self.start_block = start_block
        self.range_blocks = range_blocks
        self.poll_seconds = poll_seconds
        self._on_participants = on_participants_changed
        self._rollback_own = rollback_own_anchors
        self.on_fork = on_fork  # told the fork block of every reorg (the epoch service)
        self.log_indexer = log_indexer
        # ranges start at range_blocks and adapt to the provider's eth_getLogs limits
        self.pager = LogPager(w3, self.address, max(range_blocks, 1))
        self._decoder = EventDecoder(w3, self.address)
        self.reorgs = 0
        self.failures = 0  # failed passes of the loop, in all
        self.consecutive_failures = 0  # failed passes since the last one that succeeded
        self.last_error: str | None = None  # why the last pass failed (None: it succeeded)
        self._last_range_events = 0
        self.synced = threading.Condition()  # notified after every sync that did something
        self.meter = ProgressMeter(clock)  # how far and how fast (``/health`` → ``index``)

    # -- the loop ---------------------------------------------------------------------------

    def _run(self) -> None:
        delay = self.poll_seconds
        while not self._stop.is_set():
            try:
                result = self.sync()
                indexed = self.index_logs()
                delay = self.poll_seconds
                self.consecutive_failures, self.last_error = 0, None
                if result.events or result.rolled_back_to is not None or indexed:
                    continue  # more may be waiting
            except CollegiumError as exc:
                self._failed(str(exc))
                log.warning("chain follower: %s; retrying in %.1fs", exc, delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
            except Exception as exc:  # never let the thread die silently
                self._failed(f"{type(exc).__name__}: {exc}")
                log.exception("chain follower crashed; retrying in %.1fs", delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
            self._stop.wait(delay)

    def _failed(self, why: str) -> None:
        """Count a failed pass and keep why (``/health`` → ``index.last_error``)."""
        self.failures += 1
        self.consecutive_failures += 1
        self.last_error = why

    # -- one step ---------------------------------------------------------------------------

    def index_logs(self, max_batches: int = 64) -> int:
        """Index the next verified batches of other nodes' logs (with ``log_indexer``) and
        persist this node's new tree nodes; return how many leaves were indexed."""
        if self.log_indexer is None:
            return 0
        leaves = sum(b.leaves for b in self.log_indexer.index(max_batches))
        with self._sessions() as session:
            try:
                tree.catch_up(session, OWN_LOG)
                session.commit()
            except (LookupError, OperationalError) as exc:  # an anchor is being committed
                session.rollback()
                log.debug("own tree catch-up postponed: %s", exc)
        if leaves:
            with self.synced:
                self.synced.notify_all()
        return leaves

    def last_indexed(self) -> int:
        """Return the last indexed block number (``start_block - 1`` if none)."""
        with self._sessions() as session:
            last = session.scalar(select(IndexedBlock.number).order_by(IndexedBlock.number.desc()))
        return self.start_block - 1 if last is None else int(last)

    def sync(self, max_ranges: int | None = None) -> SyncResult:
        """Index confirmed blocks up to ``head - confirmations`` (at most ``max_ranges``
        ranges); return what was done. Raises ``ChainError`` if the chain is unreadable
        and ``ReorgTooDeep`` if the fork point is older than the kept hashes."""
        events = 0
        ranges = 0
        while max_ranges is None or ranges < max_ranges:
            try:
                head = int(self.w3.eth.block_number)
            except Exception as exc:
                raise ChainError(f"cannot read the chain head: {exc}") from exc
            target = min(head - self.confirmations, self._tagged_block(head))
            self.meter.target = target
            fork = self._check_reorg()
            if fork is not None:
                self._rollback(fork)
                return SyncResult(fork, events, fork)
            first = self.last_indexed() + 1
            if first > target:
                break
            last = min(target, first + self.pager.span - 1)
            fork = self._index_range(first, last, head)
            if fork is not None:
                self._rollback(fork)
                return SyncResult(fork, events, fork)
            events += self._last_range_events
            ranges += 1
            self.meter.note(first - 1, last, target)
        if events:
            with self.synced:
                self.synced.notify_all()
        return SyncResult(self.last_indexed(), events)

    # -- progress ---------------------------------------------------------------------------

    def progress(self) -> IndexProgress:
        """Return how far the follower has indexed, towards which block, how fast, and why
        its last passes failed if they did."""
        progress = self.meter.progress(self.last_indexed())
        return replace(progress, failures=self.consecutive_failures, last_error=self.last_error)

    def _tagged_block(self, head: int) -> int:
        """Return the number of the chain's ``safe``/``finalized`` block (``head`` when
        following by confirmations only, or when the chain has no such tag)."""
        if self.finality == "confirmations" or self.finality_supported is False:
            return head
        try:
            block = self.w3.eth.get_block(self.finality)  # type: ignore[arg-type]
        except ChainError:
            raise
        except Exception as exc:  # noqa: BLE001 -- pre-merge chains, old clients
            if self.finality_supported is None:
                self.finality_supported = False
                log.warning(
                    "the chain has no %r block (%s): following by %d confirmations",
                    self.finality,
                    exc,
                    self.confirmations,
                )
                return head
            raise ChainError(f"cannot read the {self.finality} block: {exc}") from exc
        self.finality_supported = True
        return int(block["number"])

    def _block(self, number: int) -> Any:
        try:
            return self.w3.eth.get_block(number)
        except Exception as exc:
            raise ChainError(f"cannot read block {number}: {exc}") from exc

    def _check_reorg(self) -> int | None:
        """Return the fork point if the last indexed block is no longer on the chain."""
        with self._sessions() as session:
            last = session.scalar(select(IndexedBlock).order_by(IndexedBlock.number.desc()))
        if last is None:
            return None
        try:
            block = self.w3.eth.get_block(last.number)
        except Exception as exc:
            # a backend that lags behind what we indexed, or a chain that got shorter: a
            # real reorg shows as another hash at this height once the chain grows again,
            # so wait rather than roll back (and re-anchor) what may well be final
            raise ChainError(f"block {last.number} is not available (lagging RPC?): {exc}") from exc
        if as_hex(block["hash"]) == last.hash:
            return None
        return self._find_fork(last.number - 1)

    def _find_fork(self, below: int) -> int:
        """Return the newest stored block at or below ``below`` still on the chain."""
        with self._sessions() as session:
            stored = session.scalars(
                select(IndexedBlock)
                .where(IndexedBlock.number <= below)
                .order_by(IndexedBlock.number.desc())
            ).all()
        for row in stored:
            try:
                block = self.w3.eth.get_block(row.number)
            except Exception:
                continue
            if as_hex(block["hash"]) == row.hash:
                return int(row.number)
        if stored and stored[-1].number > self.start_block:
            raise ReorgTooDeep(
                f"the chain reorganised below block {stored[-1].number}, the oldest kept hash"
            )
        return self.start_block - 1

    def _index_range(self, first: int, last: int, head: int) -> int | None:
        """Index blocks ``first..last``; return a fork point instead if the range does not
        extend the indexed chain."""
        self._last_range_events = 0
        blocks = self._read_blocks(first, last, head)
        if not self._extends_index(first, blocks):
            log.warning("reorg: block %d does not extend the indexed block %d", first, first - 1)
            return self._find_fork(first - 1)
        logs = self._fetch_logs(first, last, blocks)
        changes = self._store_range(logs, blocks, head, last)
        for subsystem, address in changes:
            if self._on_participants is not None:
                self._on_participants(subsystem, address)
        return None

    def _read_blocks(self, first: int, last: int, head: int) -> dict[int, Any]:
        """Return the blocks of ``first..last`` whose hashes are kept (those within
        ``REORG_WINDOW`` of ``head``) and always ``last``, by number."""
        keep_from = max(first, head - REORG_WINDOW)
        blocks = {n: self._block(n) for n in range(keep_from, last + 1)}
        blocks.setdefault(last, self._block(last))
        return blocks

    def _extends_index(self, first: int, blocks: dict[int, Any]) -> bool:
        """Return whether block ``first`` (if read) has the last indexed block as parent."""
        with self._sessions() as session:
            previous = session.get(IndexedBlock, first - 1)
        if previous is None or first not in blocks:
            return True
        return as_hex(blocks[first]["parentHash"]) == previous.hash

    def _fetch_logs(self, first: int, last: int, blocks: dict[int, Any]) -> list[Any]:
        """Return the registry's logs of ``first..last``, checked against ``blocks``; raise
        ``ChainError`` if a block changed since it was read."""
        logs = self.pager.fetch(first, last)  # adaptive pages, no block skipped
        # a lagging backend answers short: blocks whose bloom names the registry are re-read
        logs = self.pager.check_blooms(logs, blocks)
        # the logs must come from the blocks whose hashes we store (no reorg in between)
        for entry in logs:
            number = int(entry["blockNumber"])
            if number in blocks and as_hex(entry["blockHash"]) != as_hex(blocks[number]["hash"]):
                raise ChainError(f"block {number} changed while indexing; will retry")
        return list(logs)

    def _store_range(
        self, logs: Sequence[Any], blocks: dict[int, Any], head: int, last: int
    ) -> list[ParticipantChange]:
        """Store the range's events, apply them and keep its block hashes, in one SQL
        transaction (:func:`~node.ledger.registry_events.store_range`); return the
        participations that changed."""
        with self._sessions() as session:
            changes, stored = store_range(
                session,
                self._decoder,
                logs,
                blocks,
                head=head,
                last=last,
                node_address=self.node_address,
            )
        self._last_range_events += stored
        return changes

    def _rollback(self, fork: int) -> None:
        """Delete everything indexed above block ``fork`` and rebuild the derived tables."""
        self.reorgs += 1
        log.warning("reorg: rolling the index back to block %d", fork)
        with self._sessions() as session:
            roll_back_index(
                session, fork, own_checksum=self._own_checksum(), node_address=self.node_address
            )
        if self._rollback_own is not None:
            moved = self._rollback_own(fork)
            if moved:
                log.warning("reorg: %d leaves of this node are pending again", moved)
        if self._on_participants is not None:
            self._on_participants(None, None)
        if self.on_fork is not None:
            self.on_fork(fork)

    def _own_checksum(self) -> str:
        return to_checksum_address(self.node_address) if self.node_address else ""
