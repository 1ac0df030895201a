"""``NodeContext``: every opened part of a running node, its ``/health`` summary and its
orderly stop."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from eth_account.signers.local import LocalAccount
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3

from node import __version__
from node.chain.endpoints import PeerPolicy
from node.chain.nonces import wallet_status
from node.chain.provider import FailoverProvider
from node.config import Settings
from node.epoch import describe_epoch
from node.errors import CollegiumError
from node.health import (
    HEALTH_PROBE_TIMEOUT_SECONDS,
    AnchoringState,
    ChainReadingCache,
    compute_health_reasons,
)
from node.ledger.anchorer import Anchorer
from node.ledger.service import LedgerService
from node.runtime.record import NodeRecord
from node.storage.base import BlockStore

log = logging.getLogger(__name__)

BODY_FLUSH_SECONDS = 30.0  # at close, how long the last accepted bodies may take to be stored


@dataclass
class NodeContext:
    """Every opened part of a running node."""

    settings: Settings
    record: NodeRecord
    account: LocalAccount
    chain: Any
    registry: Any
    store: BlockStore
    engine: Engine
    sessions: sessionmaker[Session]
    ledger: LedgerService
    anchorer: Anchorer
    syncer: Any = None
    epochs: Any = None
    follower: Any = None  # node.ledger.follower.ChainFollower
    # which registered endpoints this node sends requests to (node/chain/endpoints.py)
    peer_policy: PeerPolicy = field(default_factory=PeerPolicy)
    # CID of the front-end this node ships (node.resources), None if it ships none
    bundled_frontend: str | None = None
    block_clock: Any = None  # node.chain.embedded.BlockClock (embedded chain only)
    _closed: bool = False
    _health_cache: ChainReadingCache[dict[str, Any]] = field(default_factory=ChainReadingCache)
    _probe: Any = None  # the Web3 with which /health asks an RPC chain for its head
    _probe_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def address(self) -> str:
        """Return the node's wallet address."""
        return str(self.account.address)

    @property
    def assignment_source(self) -> Any:
        """Return the router's assignment source (from the epoch service), or None."""
        return None if self.epochs is None else self.epochs.assignment_source()

    def health(self) -> dict[str, Any]:
        """Return the node's health summary (served at ``GET /health``): ``status`` is ``ok``
        or ``degraded``, with ``reasons`` (``node.health``); a chain that does not answer
        degrades the node instead of failing the request.

        The head block is read afresh each time, with one attempt per RPC URL and a short
        timeout (:meth:`chain_head`); the other chain reads (epoch, wallet, front-end, the
        epoch summary's attestations) are reused at the same head for at most a second
        (``node.health.ChainReadingCache``), and kept as last read while the chain is down.
        """
        chain: dict[str, Any] = {
            "kind": self.chain.kind,
            "chain_id": self.chain.chain_id,
            "block_number": None,
        }
        head, chain_error, reading = self._chain_reading()
        chain["block_number"] = head
        clock_lead, max_lead = self._clock_health(chain)
        sync = self._sync_health()
        index = self._index_progress(head)
        epochs = reading["epochs"]
        pending = self.ledger.pending_count()
        anchoring = AnchoringState(
            self.anchorer.consecutive_failures, self.anchorer.last_error, pending
        )
        reasons = compute_health_reasons(
            chain_error=chain_error,
            epochs=epochs,
            sync=sync,
            anchoring=anchoring,
            clock_lead=clock_lead,
            max_lead=max_lead,
            index=index,
        )
        return {
            "status": "degraded" if reasons else "ok",
            "reasons": reasons,
            "version": __version__,
            "node": self.address,
            "chain": chain,
            "wallet": reading["wallet"],
            "registry": self.record.registry,
            "epoch": reading["epoch"],
            "store": self.store_health(),
            "frontend": reading["frontend"],
            "sync": sync,
            "epochs": epochs,
            "home": self.record.home,
            "transactions": self.ledger.count(),
            "index": index,
            "log": {
                "tree_size": self.ledger.tree_size(),
                "anchors_made": self.anchorer.anchors_made,
                "pending": pending,
                "anchor_failures": self.anchorer.failures,
            },
        }

    def _chain_reading(self) -> tuple[int | None, str | None, dict[str, Any]]:
        """Return the chain's head (None: it does not answer), the error if any, and the other
        chain reads: at this head (cached), or as last read."""
        head, chain_error = self.chain_head()
        reading: dict[str, Any] | None
        if head is not None:
            try:
                reading = self._health_cache.get(head, self._read_chain_state)
            except Exception as exc:  # noqa: BLE001 -- reported as a reason, never raised
                chain_error = f"{type(exc).__name__}: {exc}"
                reading = self._health_cache.last()
        else:
            reading = self._health_cache.last()  # as last read: the chain does not answer
        reading = reading or {"epoch": None, "wallet": None, "frontend": None, "epochs": None}
        return head, chain_error, reading

    def _clock_health(self, chain: dict[str, Any]) -> tuple[float | None, float | None]:
        """Return the embedded chain's clock lead and its bound (None, None: no embedded
        chain open), noted in ``chain`` too."""
        embedded = self.chain.embedded
        if embedded is None or not embedded.is_open:
            return None, None
        head_time = embedded.head_timestamp()
        clock_lead: float = head_time - time.time()
        max_lead: float = embedded.max_lead
        chain["head_timestamp"] = head_time
        chain["clock_lead_seconds"] = round(clock_lead, 3)
        chain["max_lead_seconds"] = max_lead
        chain["blocks_by_clock"] = (
            self.block_clock.blocks_mined if self.block_clock is not None else None
        )
        return clock_lead, max_lead

    def _sync_health(self) -> dict[str, Any] | None:
        """Return the peer sync's progress, with the roots no peer served last round."""
        if self.syncer is None:
            return None
        progress = self.syncer.progress()
        sync: dict[str, Any] = progress.as_dict()
        sync["missing"] = len(progress.missing)  # roots no peer served in the last round
        return sync

    def _index_progress(self, head: int | None) -> dict[str, Any] | None:
        """Return how far the chain follower has indexed (``lag``: blocks behind the head; a
        node whose lag is large answers 503 "catching up" for the subsystems it hosts), the
        block it indexes up to (``target``), its rate and the time left at that rate, and its
        failed passes in a row with the last error (``failures``, ``last_error``)
        (``node.ledger.follower.IndexProgress``)."""
        if self.follower is None:
            return None
        progress = self.follower.progress().as_dict()
        indexed = int(progress.pop("block"))
        lag = None if head is None else max(0, head - indexed)
        return {"block": indexed, "lag": lag, **progress}

    def chain_head(self) -> tuple[int | None, str | None]:
        """Return ``(head block, None)``, or ``(None, why)`` when the chain does not answer.

        Over RPC the head is asked through a provider of its own that tries each URL once with
        ``HEALTH_PROBE_TIMEOUT_SECONDS`` (the node's provider retries with back-off for up to
        a minute: a health check must answer sooner). A probe answered tells the node's
        provider that this URL answers again (:meth:`FailoverProvider.note_answered`)."""
        probe = self._probe_w3()
        sent_at = time.monotonic()
        try:
            head = int(probe.eth.block_number)
        except Exception as exc:  # noqa: BLE001 -- reported as a reason, never raised
            return None, f"{type(exc).__name__}: {exc}"
        main, probed = self.chain.w3.provider, probe.provider
        if probed is not main and isinstance(main, FailoverProvider) and probed.last_answered:
            # the chain answers again: the node's provider need not sit out its backoff (the
            # other chain reads of /health would wait in it, up to BACKOFF_MAX_SECONDS)
            main.note_answered(probed.last_answered, sent_at)
        return head, None

    def _probe_w3(self) -> Any:
        provider = self.chain.w3.provider
        if not isinstance(provider, FailoverProvider):
            return self.chain.w3  # the embedded chain: in this process
        with self._probe_lock:
            if self._probe is None:
                self._probe = Web3(
                    FailoverProvider(
                        [e.url for e in provider.endpoints],
                        shown=[e.shown for e in provider.endpoints],
                        timeout=HEALTH_PROBE_TIMEOUT_SECONDS,
                        max_attempts=len(provider.endpoints),
                        budget=HEALTH_PROBE_TIMEOUT_SECONDS * len(provider.endpoints),
                        backoff_max=0.0,
                    )
                )
        return self._probe

    def _read_chain_state(self) -> dict[str, Any]:
        """Return what ``/health`` reads from the chain besides the head (cached by head)."""
        return {
            "epoch": int(self.registry.current_epoch()),
            "wallet": wallet_status(self.chain.w3, self.registry.account),
            "frontend": self.frontend_health(),
            "epochs": _describe_epochs(self.epochs),
        }

    def store_health(self) -> dict[str, Any]:
        """Return the content store's backend and, when it reports them, its use and quota."""
        described: dict[str, Any] = {"backend": self.store.backend}
        described.update(self.store.usage())
        return described

    def frontend_health(self) -> dict[str, Any]:
        """Return the registry's front-end CID (what ``/`` serves), the CID of the front-end
        this node ships, and whether they are the same."""
        try:
            published: str | None = str(self.registry.frontend_cid()) or None
        except CollegiumError as exc:
            log.warning("cannot read the front-end CID: %s", exc)
            published = None
        return {
            "cid": published,
            "bundled": self.bundled_frontend,
            "up_to_date": published is not None and published == self.bundled_frontend,
        }

    def close(self) -> None:
        """Stop anchoring; release the chain, the store and the database (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self.epochs is not None:
            self.epochs.stop()
        if self.syncer is not None:
            self.syncer.stop()
        if self.follower is not None:
            self.follower.stop()
        self.anchorer.stop()
        # bodies of the last acknowledged submissions: into the store before it closes (their
        # rows hold them, so a body left out is stored by the anchorer after a restart)
        if not self.ledger.flush_bodies(BODY_FLUSH_SECONDS):
            log.warning("some accepted bodies were not stored before closing; the anchorer will")
        if self.block_clock is not None:
            self.block_clock.stop()
        if self.ledger.verifier is not None:
            self.ledger.verifier.close()
        self.ledger.close_writer()
        self.engine.dispose()
        self.store.close()
        self.chain.close()
        if self._probe is not None:
            self._probe.provider.close()
        log.info("node %s stopped cleanly", self.address)


def _describe_epochs(service: Any) -> dict[str, Any] | None:
    """Return the epoch summary for ``/health`` (see ``node.epoch.describe_epoch``)."""
    if service is None:
        return None

    return describe_epoch(service)
