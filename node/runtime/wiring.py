"""``open_node``: open every part of a node from its data directory, in order (wallet,
chain, registry, content store, index database, ledger), then start its workers."""

from __future__ import annotations

import logging
from typing import Any

from node.chain.backend import open_chain
from node.chain.endpoints import UnsafeEndpoint, check_endpoint_syntax, compute_peer_policy
from node.chain.keys import load_account
from node.chain.nonces import NonceManager
from node.chain.registry import Registry
from node.config import Settings
from node.db.session import create_db_engine, make_session_factory, upgrade_database
from node.errors import ConfigError
from node.ledger.anchorer import Anchorer
from node.ledger.participants import ParticipantCache
from node.ledger.service import LedgerService
from node.ledger.transaction import Domain
from node.ledger.verifier import VerifierPool
from node.runtime.context import NodeContext
from node.runtime.record import NodeRecord, with_record_locations
from node.runtime.registration import (
    bundled_frontend_cid,
    hand_over_to_operator,
    join_registry,
    publish_frontend_if_missing,
)
from node.runtime.workers import start_block_clock, start_epochs, start_follower, start_syncer
from node.storage import open_node_store

log = logging.getLogger(__name__)

#: where the batch route's per-item work lives (``node.api.batchitems``, run in the verifier's
#: workers); named, not imported: the runtime does not import the API's modules
BATCH_ITEMS_MODULE = "node.api.batchitems"


def open_node(settings: Settings, password: str) -> NodeContext:
    """Open (and on first start deploy and register) the node in ``settings.data_dir``."""
    record = NodeRecord.load(settings.node_file)
    settings = with_record_locations(settings, record)
    try:
        check_endpoint_syntax(settings.endpoint)
    except UnsafeEndpoint as exc:
        raise ConfigError(f"this node's public URL cannot be registered: {exc}") from exc
    account = load_account(settings.keystore_path, password)
    chain_url = settings.chain_url or record.chain_url
    chain = open_chain(
        settings.data_dir, chain_url, fund=[account.address], directory=settings.chain_path
    )
    if chain.embedded is not None:
        chain.embedded.max_lead = settings.chain_max_lead
    try:
        registry, deploying = join_registry(settings, record, chain, account, chain_url)
        store = open_node_store(settings)
        bundled_frontend = bundled_frontend_cid(store, settings.frontend_dir)
        publish_frontend_if_missing(
            registry, store, settings.frontend_dir
        )  # while the node key is still an admin
        if deploying and record.operator is not None:
            hand_over_to_operator(registry, record.home, record.operator)
        upgrade_database(settings.sqlalchemy_url)
        engine = create_db_engine(settings.sqlalchemy_url)
        sessions = make_session_factory(engine)
        ledger = _open_ledger(settings, chain, record, registry, store, account, sessions)
        _recover_pending(chain, account, ledger, record.deployed_block or 0)
    except BaseException:
        chain.close()
        raise
    policy = compute_peer_policy(
        settings.allow_private_peers, settings.peer_allowed_hosts,
        chain_kind=chain.kind, chain_url=chain_url,
    )  # fmt: skip
    anchorer = Anchorer(ledger, pace=settings.anchor_pace)
    anchorer.start()
    syncer = start_syncer(settings, store, registry, account.address, policy, ledger)
    block_clock = start_block_clock(settings, chain)
    epochs = start_epochs(settings, chain, registry)
    return NodeContext(
        settings, record, account, chain, registry, store, engine, sessions, ledger, anchorer,
        syncer, epochs,
        follower=start_follower(settings, chain, record, sessions, ledger, store, syncer, epochs),
        peer_policy=policy, bundled_frontend=bundled_frontend, block_clock=block_clock,
    )  # fmt: skip


def _open_ledger(
    settings: Settings,
    chain: Any,
    record: NodeRecord,
    registry: Registry,
    store: Any,
    account: Any,
    sessions: Any,
) -> LedgerService:
    """Return the ledger service (with its verifier pool if ``verify_workers`` > 0)."""
    assert record.registry is not None
    verifier = None
    if settings.verify_workers > 0:
        verifier = VerifierPool(
            Domain(chain.chain_id, record.registry),
            settings.verify_workers,
            preload=(BATCH_ITEMS_MODULE,),  # the batch route's items are read in the workers
        )
    return LedgerService(
        session_factory=sessions,
        store=store,
        registry=registry,
        domain=Domain(chain.chain_id, record.registry),
        node_address=account.address,
        batch_max=settings.batch_max,
        participants=ParticipantCache(registry, settings.participant_ttl),
        require_participant=settings.require_participant,
        verifier=verifier,
        max_future_seconds=settings.tx_max_future_seconds,
        chain_reorgs=chain.kind != "embedded",
    )


def _recover_pending(chain: Any, account: Any, ledger: LedgerService, from_block: int) -> None:
    """Settle what the last run left: its pending chain transactions (RPC chain), then the
    leaves of an anchor it made just before it stopped (looked for from ``from_block``: the
    registry's deployment block if this node deployed it, else 0)."""
    if chain.kind == "rpc":  # settle what a previous run left in the pool first
        cancelled = NonceManager.of(chain.w3, account).recover()
        if cancelled:
            log.warning("cancelled %d transactions left pending by the last run", cancelled)
    adopted = ledger.recover(from_block)
    if adopted:
        log.info("adopted %d leaves anchored just before the last stop", adopted)
