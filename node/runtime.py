"""The composition root: open every part of a node from its data directory.

``open_node`` wires the wallet, the chain backend, the registry binding, the content
store, the index database and the ledger service, deploying and registering on the
first start. Everything else receives these parts; nothing else opens them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from node import __version__
from node.chain.endpoints import (
    PeerPolicy,
    UnsafeEndpoint,
    check_endpoint_syntax,
    compute_peer_policy,
)
from node.chain.nonces import wallet_status
from node.config import DEFAULT_HOME_SUBSYSTEM, Settings
from node.db.session import create_db_engine, make_session_factory, upgrade_database
from node.errors import CollegiumError, ConfigError
from node.ledger.anchorer import Anchorer
from node.ledger.participants import ParticipantCache
from node.ledger.service import LedgerService
from node.ledger.transaction import Domain

log = logging.getLogger(__name__)

ALL_ROLES = ("fe_system", "fe_subsystem", "be_system", "be_subsystem")
DEFAULT_CAPACITY = 4
DEV_FUNDING_WEI = 10**21


def roles_to_mask(roles: list[str] | tuple[str, ...]) -> int:
    """Return the registry bit mask of ``roles``; raise ``ConfigError`` for unknown ones."""
    from node.chain.registry import RegistryError, compute_roles_mask

    try:
        return compute_roles_mask(roles)
    except RegistryError as exc:
        raise ConfigError(str(exc)) from exc


@dataclass
class NodeRecord:
    """What ``collegium init`` decides and the first ``up`` completes (``node.json``)."""

    address: str
    home: str = DEFAULT_HOME_SUBSYSTEM
    capacity: int = DEFAULT_CAPACITY
    roles: list[str] = field(default_factory=lambda: list(ALL_ROLES))
    chain_url: str | None = None
    registry: str | None = None
    chain_id: int | None = None
    deployed_block: int | None = None
    endpoint: str | None = None

    @classmethod
    def load(cls, path: Path) -> NodeRecord:
        """Return the record stored at ``path``; raise ``ConfigError`` if absent."""
        if not path.exists():
            raise ConfigError(f"{path} not found: run `collegium init` first")
        try:
            return cls(**json.loads(path.read_text()))
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{path} is not a valid node record: {exc}") from exc

    def save(self, path: Path) -> None:
        """Write the record to ``path`` atomically."""
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        tmp.replace(path)


@dataclass
class NodeContext:
    """Every opened part of a running node."""

    settings: Settings
    record: NodeRecord
    account: LocalAccount
    chain: Any
    registry: Any
    store: Any
    engine: Engine
    sessions: sessionmaker[Session]
    ledger: LedgerService
    anchorer: Anchorer
    syncer: Any = None
    epochs: Any = None
    follower: Any = None  # node.ledger.follower.ChainFollower
    # which registered endpoints this node sends requests to (node/chain/endpoints.py)
    peer_policy: PeerPolicy = field(default_factory=PeerPolicy)
    _closed: bool = False

    @property
    def address(self) -> str:
        """Return the node's wallet address."""
        return str(self.account.address)

    @property
    def assignment_source(self) -> Any:
        """Return the router's assignment source (from the epoch service), or None."""
        return None if self.epochs is None else self.epochs.assignment_source()

    def health(self) -> dict[str, Any]:
        """Return the node's health summary (served at ``GET /health``)."""
        w3 = self.chain.w3
        return {
            "status": "ok",
            "version": __version__,
            "node": self.address,
            "chain": {
                "kind": self.chain.kind,
                "chain_id": self.chain.chain_id,
                "block_number": int(w3.eth.block_number),
            },
            "wallet": wallet_status(w3, self.registry.account),
            "registry": self.record.registry,
            "epoch": int(self.registry.current_epoch()),
            "store": {"backend": self.store.backend},
            "sync": self.syncer.progress().as_dict() if self.syncer is not None else None,
            "epochs": _describe_epochs(self.epochs),
            "home": self.record.home,
            "transactions": self.ledger.count(),
            "log": {
                "tree_size": self.ledger.tree_size(),
                "anchors_made": self.anchorer.anchors_made,
            },
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
        if self.ledger.verifier is not None:
            self.ledger.verifier.close()
        self.engine.dispose()
        close_store = getattr(self.store, "close", None)
        if callable(close_store):
            close_store()
        self.chain.close()
        log.info("node %s stopped cleanly", self.address)


def init_node(
    settings: Settings,
    password: str,
    *,
    home: str = DEFAULT_HOME_SUBSYSTEM,
    capacity: int = DEFAULT_CAPACITY,
    roles: tuple[str, ...] = ALL_ROLES,
    registry: str | None = None,
) -> NodeRecord:
    """Create the data directory, the node wallet and ``node.json``; return the record.

    Raises ``ConfigError`` if the directory already holds a node.
    """
    from node.chain.keys import create_keystore

    roles_to_mask(roles)
    if capacity <= 0:
        raise ConfigError(f"capacity must be positive, got {capacity}")
    if settings.node_file.exists():
        raise ConfigError(f"{settings.data_dir} already holds a node ({settings.node_file})")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    address = create_keystore(settings.keystore_path, password)
    record = NodeRecord(
        address=str(address),
        home=home,
        capacity=capacity,
        roles=list(roles),
        chain_url=settings.chain_url,
        registry=registry,
    )
    record.save(settings.node_file)
    return record


def open_node(settings: Settings, password: str) -> NodeContext:
    """Open (and on first start deploy and register) the node in ``settings.data_dir``."""
    from node.chain.backend import open_chain
    from node.chain.keys import load_account
    from node.chain.registry import Registry
    from node.storage import open_store

    record = NodeRecord.load(settings.node_file)
    try:
        check_endpoint_syntax(settings.endpoint)
    except UnsafeEndpoint as exc:
        raise ConfigError(f"this node's public URL cannot be registered: {exc}") from exc
    account = load_account(settings.keystore_path, password)
    chain_url = settings.chain_url or record.chain_url
    chain = open_chain(settings.data_dir, chain_url, fund=[account.address])
    try:
        if record.chain_id is not None and record.chain_id != chain.chain_id:
            raise ConfigError(
                f"chain id {chain.chain_id} differs from the {record.chain_id} this node joined"
            )
        if chain.kind == "rpc" and int(chain.w3.eth.get_balance(account.address)) == 0:
            _fund_on_dev_chain(chain, account.address)
        if record.registry is None:
            log.info("deploying the registry (epoch period %d blocks)", settings.epoch_period)
            record.registry = str(Registry.deploy(chain.w3, account, settings.epoch_period).address)
            record.deployed_block = int(chain.w3.eth.block_number)
        elif not chain.w3.eth.get_code(to_checksum_address(record.registry)):
            raise ConfigError(f"no registry contract at {record.registry} on this chain")
        record.chain_id = chain.chain_id
        record.chain_url = chain_url
        record.endpoint = settings.endpoint
        record.save(settings.node_file)
        registry = Registry(chain.w3, record.registry, account)
        _ensure_registered(registry, settings, record)
        store = open_store(settings.data_dir, settings.ipfs_api)
        upgrade_database(settings.sqlalchemy_url)
        engine = create_db_engine(settings.sqlalchemy_url)
        sessions = make_session_factory(engine)
        verifier = None
        if settings.verify_workers > 0:
            from node.ledger.verifier import VerifierPool

            verifier = VerifierPool(
                Domain(chain.chain_id, record.registry), settings.verify_workers
            )
        ledger = LedgerService(
            session_factory=sessions,
            store=store,
            registry=registry,
            domain=Domain(chain.chain_id, record.registry),
            node_address=account.address,
            batch_max=settings.batch_max,
            participants=ParticipantCache(registry, settings.participant_ttl),
            require_participant=settings.require_participant,
            verifier=verifier,
        )
        if chain.kind == "rpc":  # settle what a previous run left in the pool first
            from node.chain.nonces import NonceManager

            cancelled = NonceManager.of(chain.w3, account).recover()
            if cancelled:
                log.warning("cancelled %d transactions left pending by the last run", cancelled)
        adopted = ledger.recover()
        if adopted:
            log.info("adopted %d leaves anchored just before the last stop", adopted)
    except BaseException:
        chain.close()
        raise
    policy = compute_peer_policy(
        settings.allow_private_peers, settings.peer_allowed_hosts,
        chain_kind=chain.kind, chain_url=chain_url,
    )  # fmt: skip
    anchorer = Anchorer(ledger)
    anchorer.start()
    syncer = None
    if settings.sync:
        from node.storage.sync import Syncer

        syncer = Syncer(
            store,
            registry,
            self_address=account.address,
            self_endpoint=settings.endpoint,
            interval=settings.sync_interval,
            policy=policy,
        )
        ledger.on_anchored = syncer.note_local  # its own anchors are in its store already
        syncer.start()
    epochs = _start_epochs(settings, chain, registry)
    return NodeContext(
        settings, record, account, chain, registry, store, engine, sessions, ledger, anchorer,
        syncer, epochs, follower=_start_follower(settings, chain, record, sessions, ledger, store),
        peer_policy=policy,
    )  # fmt: skip


def _start_follower(
    settings: Settings,
    chain: Any,
    record: NodeRecord,
    sessions: Any,
    ledger: LedgerService,
    store: Any,
) -> Any:
    """Start the chain follower (registry events into SQL, other nodes' leaves from the
    store); None if disabled.

    Confirmations default to 0 on the embedded chain (one producer: no reorgs) and to
    ``DEFAULT_CONFIRMATIONS`` over RPC.
    """
    if not settings.follower or record.registry is None:
        return None
    from node.ledger.follower import DEFAULT_CONFIRMATIONS, ChainFollower
    from node.ledger.logs import LogIndexer, block_time_of

    confirmations = settings.confirmations
    if confirmations is None:
        confirmations = 0 if chain.kind == "embedded" else DEFAULT_CONFIRMATIONS
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
        log_indexer=LogIndexer(
            sessions=sessions,
            store=store,
            node_address=str(ledger.node_address),
            domain=ledger.domain,
            block_time=block_time_of(chain.w3),
        ),
    )
    follower.start()
    return follower


def _start_epochs(settings: Settings, chain: Any, registry: Any) -> Any:
    """Start the epoch service (seed, assignment, attestation each epoch); None if disabled.

    Autoadvance (mining empty blocks to end a quiet epoch) defaults to on for the embedded
    chain only: on an external chain, block production is not this node's business.
    """
    if not settings.epoch_service:
        return None
    from node.epoch import EpochService

    autoadvance = settings.epoch_autoadvance
    if autoadvance is None:
        autoadvance = chain.kind == "embedded"
    service = EpochService(
        registry,
        chain,
        autoadvance=autoadvance,
        epoch_seconds=settings.epoch_seconds,
        poll_seconds=settings.epoch_poll_seconds,
    )
    try:  # the first epoch before serving, so the router starts with an assignment
        service.tick()
    except CollegiumError as exc:
        log.warning("first epoch step failed (the epoch thread retries): %s", exc)
    service.start()
    return service


def _describe_epochs(service: Any) -> dict[str, Any] | None:
    """Return the epoch summary for ``/health`` (see ``node.epoch.describe_epoch``)."""
    if service is None:
        return None
    from node.epoch import describe_epoch

    return describe_epoch(service)


def _fund_on_dev_chain(chain: Any, address: str) -> None:
    """Give ``address`` gas money on a dev chain (anvil); raise ``ConfigError`` elsewhere."""
    from node.errors import ChainError

    try:
        chain.fund(address, DEV_FUNDING_WEI)
    except ChainError as exc:
        raise ConfigError(
            f"node address {address} has no balance on this chain; send it some ether "
            f"(automatic funding works only on dev chains: {exc})"
        ) from exc


def _ensure_registered(registry: Any, settings: Settings, record: NodeRecord) -> None:
    """Create the home subsystem if missing and register (or update) this node."""
    if not registry.subsystem_exists(record.home):
        registry.create_subsystem(record.home)
    mask = roles_to_mask(record.roles)
    if not registry.is_node(registry.account.address):
        registry.register_node(settings.endpoint, record.capacity, mask, record.home)
        return
    info = registry.get_node(registry.account.address)
    wanted = (settings.endpoint, record.capacity, mask, record.home)
    if (info.endpoint, info.capacity, info.roles_mask, info.home) != wanted:
        registry.update_node(*wanted)
