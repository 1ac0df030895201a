"""The node's background workers, each started only when its setting is on: peer sync,
the embedded chain's block clock, the chain follower and the epoch service."""

from __future__ import annotations

import logging
from typing import Any

from node.chain.registry import Registry
from node.config import Settings
from node.epoch import EpochService
from node.errors import CollegiumError
from node.ledger.follower import DEFAULT_CONFIRMATIONS, ChainFollower
from node.ledger.logs import LogIndexer, block_time_of
from node.ledger.service import LedgerService
from node.replication.sync import Syncer
from node.runtime.record import NodeRecord

log = logging.getLogger(__name__)


def start_syncer(
    settings: Settings,
    store: Any,
    registry: Registry,
    address: str,
    policy: Any,
    ledger: LedgerService,
) -> Syncer | None:
    """Start the peer sync (None with ``sync`` off); it counts the node's own anchors as
    complete (they are in its store already)."""
    if not settings.sync:
        return None
    syncer = Syncer(
        store,
        registry,
        self_address=address,
        self_endpoint=settings.endpoint,
        interval=settings.sync_interval,
        policy=policy,
    )
    ledger.on_anchored = syncer.note_local  # its own anchors are in its store already
    syncer.start()
    return syncer


def start_block_clock(settings: Settings, chain: Any) -> Any:
    """Start the embedded chain's block clock (one block per second, never ahead of the wall
    clock); None on an external chain or with ``block_seconds = 0``."""
    if chain.embedded is None or settings.block_seconds <= 0:
        return None
    from node.chain.embedded import BlockClock  # lazily: py-evm, only for an embedded chain

    clock = BlockClock(chain.embedded, settings.block_seconds)
    clock.start()
    return clock


def compute_confirmations(settings: Settings, chain: Any) -> int:
    """Return the blocks a chain read waits before it is trusted: the setting, else 0 on the
    embedded chain (one producer: no reorgs) and ``DEFAULT_CONFIRMATIONS`` over RPC."""
    if settings.confirmations is not None:
        return settings.confirmations
    return 0 if chain.kind == "embedded" else DEFAULT_CONFIRMATIONS


def start_follower(
    settings: Settings,
    chain: Any,
    record: NodeRecord,
    sessions: Any,
    ledger: LedgerService,
    store: Any,
    syncer: Any = None,
    epochs: EpochService | None = None,
) -> Any:
    """Start the chain follower (registry events into SQL, other nodes' leaves from the
    store); None if disabled. It indexes after :func:`compute_confirmations` blocks and tells
    ``epochs`` of every reorg it rolls back.
    """
    if not settings.follower or record.registry is None:
        return None

    confirmations = compute_confirmations(settings, chain)
    follower = ChainFollower(
        w3=chain.w3,
        registry_address=record.registry,
        sessions=sessions,
        node_address=str(ledger.node_address),
        confirmations=confirmations,
        finality=settings.finality,
        start_block=record.deployed_block or 0,
        poll_seconds=settings.follower_poll,
        on_participants_changed=ledger.participants.invalidate,
        rollback_own_anchors=ledger.rollback_own_anchors_above,
        on_fork=None if epochs is None else epochs.note_fork,
        log_indexer=LogIndexer(
            sessions=sessions,
            store=store,
            node_address=str(ledger.node_address),
            domain=ledger.domain,
            block_time=block_time_of(chain.w3),
            on_missing=None if syncer is None else syncer.wake,
        ),
    )
    if syncer is not None and follower.log_indexer is not None:
        syncer.on_fetched = follower.log_indexer.retry_now
    follower.start()
    return follower


def start_epochs(settings: Settings, chain: Any, registry: Any) -> Any:
    """Start the epoch service (seed, assignment, attestation each epoch); None if disabled.

    Autoadvance (mining empty blocks in bulk to end a quiet epoch) is off unless set: the
    embedded chain's block clock ends its epochs on time, and on an external chain block
    production is not this node's business (a local anvil in tests may set it).
    """
    if not settings.epoch_service:
        return None

    autoadvance = bool(settings.epoch_autoadvance)
    service = EpochService(
        registry,
        chain,
        autoadvance=autoadvance,
        epoch_seconds=settings.epoch_seconds,
        poll_seconds=settings.epoch_poll_seconds,
        confirmations=compute_confirmations(settings, chain),
    )
    try:  # the first epoch before serving, so the router starts with an assignment
        service.tick()
    except CollegiumError as exc:
        log.warning("first epoch step failed (the epoch thread retries): %s", exc)
    service.start()
    return service
