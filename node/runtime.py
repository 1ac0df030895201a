"""The composition root: open every part of a node from its data directory.

``open_node`` wires the wallet, the chain backend, the registry binding, the content
store, the index database and the ledger service, deploying and registering on the
first start. Everything else receives these parts; nothing else opens them.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from eth_account.signers.local import LocalAccount
from eth_utils import is_address, to_checksum_address
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3

from node import __version__
from node.assignment.constants import ROLES_BY_BIT
from node.chain.backend import open_chain
from node.chain.endpoints import (
    PeerPolicy,
    UnsafeEndpoint,
    check_endpoint_syntax,
    compute_peer_policy,
)
from node.chain.keys import create_keystore, load_account
from node.chain.nonces import NonceManager, wallet_status
from node.chain.provider import FailoverProvider
from node.chain.registry import Registry, RegistryError, compute_roles_mask
from node.config import DEFAULT_HOME_SUBSYSTEM, Settings
from node.db.session import create_db_engine, make_session_factory, upgrade_database
from node.epoch import EpochService, describe_epoch
from node.errors import ChainError, CollegiumError, ConfigError
from node.frontend import CID_VERSION, FrontendError, check_build_dir, default_build_dir, publish
from node.health import (
    HEALTH_PROBE_TIMEOUT_SECONDS,
    AnchoringState,
    ChainReadingCache,
    compute_health_reasons,
)
from node.ledger.anchorer import Anchorer
from node.ledger.follower import DEFAULT_CONFIRMATIONS, ChainFollower
from node.ledger.logs import LogIndexer, block_time_of
from node.ledger.participants import ParticipantCache
from node.ledger.service import LedgerService
from node.ledger.transaction import Domain
from node.ledger.verifier import VerifierPool
from node.replication.sync import Syncer
from node.storage import open_node_store
from node.storage.base import BlockStore

log = logging.getLogger(__name__)

ALL_ROLES: tuple[str, ...] = ROLES_BY_BIT  # a node offers every role unless told otherwise
DEFAULT_CAPACITY = 4
DEV_FUNDING_WEI = 10**21


def roles_to_mask(roles: list[str] | tuple[str, ...]) -> int:
    """Return the registry bit mask of ``roles``; raise ``ConfigError`` for unknown ones."""
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
    # where data lives, chosen at init (flags and COLLEGIUM_* variables of `up` override them)
    database_url: str | None = None
    blocks_dir: str | None = None
    chain_dir: str | None = None
    store_quota: int | None = None
    operator: str | None = None  # the operator's wallet (`init --admin`), not the node key

    @classmethod
    def load(cls, path: Path) -> NodeRecord:
        """Return the record stored at ``path``; raise ``ConfigError`` if absent."""
        if not path.exists():
            raise ConfigError(f"{path} not found: run `collegium init` first")
        try:
            record = cls(**json.loads(path.read_text()))
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{path} is not a valid node record: {exc}") from exc
        if record.registry is not None and not is_address(record.registry):
            raise ConfigError(
                f"{path} names registry {record.registry!r}, which is not an address: "
                "fix it or delete the file and run `collegium init` again"
            )
        return record

    def save(self, path: Path) -> None:
        """Write the record to ``path`` atomically."""
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        tmp.replace(path)


def with_record_locations(settings: Settings, record: NodeRecord | None = None) -> Settings:
    """Return ``settings`` with the data locations chosen at ``collegium init`` (node.json)
    filled in where the flags and the environment left them unset."""
    if record is None:
        if not settings.node_file.exists():
            return settings
        record = NodeRecord.load(settings.node_file)
    update: dict[str, Any] = {}
    if settings.database_url is None and record.database_url:
        update["database_url"] = record.database_url
    if settings.blocks_dir is None and record.blocks_dir:
        update["blocks_dir"] = Path(record.blocks_dir)
    if settings.chain_dir is None and record.chain_dir:
        update["chain_dir"] = Path(record.chain_dir)
    if settings.store_quota is None and record.store_quota:
        update["store_quota"] = record.store_quota
    return settings.model_copy(update=update) if update else settings


def checked_registry_address(value: str) -> str:
    """Return ``value`` as a checksummed address; raise ``ConfigError`` for an empty or
    malformed one (an empty ``--registry ""`` must never reach ``node.json``)."""
    text = value.strip()
    if not text:
        raise ConfigError("--registry is empty: give the registry's 0x address")
    if not is_address(text):
        raise ConfigError(f"--registry {value!r} is not an address (0x and 40 hex digits)")
    return str(to_checksum_address(text))


def registry_of(node_url: str, *, timeout: float = 120.0, poll: float = 1.0) -> str:
    """Return the registry address that the node at ``node_url`` names in ``GET /health``,
    checked; retry while it does not answer (it may be starting) for ``timeout`` seconds.

    Raises ``ConfigError`` when it never answers or names no valid address.
    """
    url = node_url.rstrip("/") + "/health"
    deadline = time.monotonic() + timeout
    last = "no answer"
    while True:
        try:
            response = httpx.get(url, timeout=5.0)
            if response.status_code == 200:
                value = response.json().get("registry")
                if isinstance(value, str) and value:
                    return checked_registry_address(value)
                last = f"it names no registry ({value!r})"
            else:
                last = f"HTTP {response.status_code}"
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            last = str(exc) or type(exc).__name__
        if time.monotonic() >= deadline:
            raise ConfigError(f"cannot read the registry from {url}: {last}")
        time.sleep(poll)


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
            "index": self._index_progress(head),
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
        node whose lag is large answers 503 "catching up" for the subsystems it hosts)."""
        if self.follower is None:
            return None
        indexed = int(self.follower.last_indexed())
        return {"block": indexed, "lag": None if head is None else max(0, head - indexed)}

    def chain_head(self) -> tuple[int | None, str | None]:
        """Return ``(head block, None)``, or ``(None, why)`` when the chain does not answer.

        Over RPC the head is asked through a provider of its own that tries each URL once with
        ``HEALTH_PROBE_TIMEOUT_SECONDS`` (the node's provider retries with back-off for up to
        a minute: a health check must answer sooner)."""
        try:
            return int(self._probe_w3().eth.block_number), None
        except Exception as exc:  # noqa: BLE001 -- reported as a reason, never raised
            return None, f"{type(exc).__name__}: {exc}"

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
        if self.block_clock is not None:
            self.block_clock.stop()
        if self.ledger.verifier is not None:
            self.ledger.verifier.close()
        self.engine.dispose()
        self.store.close()
        self.chain.close()
        if self._probe is not None:
            self._probe.provider.close()
        log.info("node %s stopped cleanly", self.address)


def init_node(
    settings: Settings,
    password: str,
    *,
    home: str = DEFAULT_HOME_SUBSYSTEM,
    capacity: int = DEFAULT_CAPACITY,
    roles: tuple[str, ...] = ALL_ROLES,
    registry: str | None = None,
    operator: str | None = None,
) -> NodeRecord:
    """Create the data directory, the node wallet and ``node.json``; return the record.

    Raises ``ConfigError`` if the directory already holds a node.
    """
    roles_to_mask(roles)
    if registry is not None:
        registry = checked_registry_address(registry)
    if operator is not None:
        if not is_address(operator) or int(operator, 16) == 0:
            raise ConfigError(f"--admin must be a wallet address (0x + 40 hex), not {operator!r}")
        operator = str(to_checksum_address(operator))
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
        database_url=settings.database_url,
        blocks_dir=str(settings.blocks_dir.expanduser()) if settings.blocks_dir else None,
        chain_dir=str(settings.chain_dir.expanduser()) if settings.chain_dir else None,
        store_quota=int(settings.store_quota) if settings.store_quota else None,
        operator=operator,
    )
    record.save(settings.node_file)
    return record


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
        registry, deploying = _join_registry(settings, record, chain, account, chain_url)
        store = open_node_store(settings)
        bundled_frontend = _bundled_frontend_cid(store, settings.frontend_dir)
        _publish_frontend_if_missing(
            registry, store, settings.frontend_dir
        )  # while the node key is still an admin
        if deploying and record.operator is not None:
            hand_over_to_operator(registry, record.home, record.operator)
        upgrade_database(settings.sqlalchemy_url)
        engine = create_db_engine(settings.sqlalchemy_url)
        sessions = make_session_factory(engine)
        ledger = _open_ledger(settings, chain, record, registry, store, account, sessions)
        _recover_pending(chain, account, ledger)
    except BaseException:
        chain.close()
        raise
    policy = compute_peer_policy(
        settings.allow_private_peers, settings.peer_allowed_hosts,
        chain_kind=chain.kind, chain_url=chain_url,
    )  # fmt: skip
    anchorer = Anchorer(ledger)
    anchorer.start()
    syncer = _start_syncer(settings, store, registry, account.address, policy, ledger)
    block_clock = _start_block_clock(settings, chain)
    epochs = _start_epochs(settings, chain, registry)
    return NodeContext(
        settings, record, account, chain, registry, store, engine, sessions, ledger, anchorer,
        syncer, epochs,
        follower=_start_follower(settings, chain, record, sessions, ledger, store, syncer),
        peer_policy=policy, bundled_frontend=bundled_frontend, block_clock=block_clock,
    )  # fmt: skip


def _join_registry(
    settings: Settings, record: NodeRecord, chain: Any, account: Any, chain_url: str | None
) -> tuple[Registry, bool]:
    """Return the node's registry binding (deployed on first start) and whether this start
    deployed it; the node is registered and its record saved.

    Raises ``ConfigError`` on another chain than the one the node joined, or if its
    registry has no code on this chain.
    """
    if record.chain_id is not None and record.chain_id != chain.chain_id:
        raise ConfigError(
            f"chain id {chain.chain_id} differs from the {record.chain_id} this node joined"
        )
    if chain.kind == "rpc" and int(chain.w3.eth.get_balance(account.address)) == 0:
        _fund_on_dev_chain(chain, account.address)
    deploying = record.registry is None
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
    return registry, deploying


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
        verifier = VerifierPool(Domain(chain.chain_id, record.registry), settings.verify_workers)
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
    )


def _recover_pending(chain: Any, account: Any, ledger: LedgerService) -> None:
    """Settle what the last run left: its pending chain transactions (RPC chain), then the
    leaves of an anchor it made just before it stopped."""
    if chain.kind == "rpc":  # settle what a previous run left in the pool first
        cancelled = NonceManager.of(chain.w3, account).recover()
        if cancelled:
            log.warning("cancelled %d transactions left pending by the last run", cancelled)
    adopted = ledger.recover()
    if adopted:
        log.info("adopted %d leaves anchored just before the last stop", adopted)


def _start_syncer(
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


def _bundled_frontend_cid(store: Any, configured: Path | None) -> str | None:
    """Return the CID the front-end shipped with this node (or ``configured``: the
    ``frontend_dir`` setting) would have (nothing stored)."""
    try:
        directory = check_build_dir(default_build_dir(configured))
    except (FrontendError, ConfigError) as exc:
        log.warning("no bundled front-end: %s", exc)
        return None
    return str(store.add_path(directory, cid_version=CID_VERSION, pin=False, only_hash=True))


def _publish_frontend_if_missing(registry: Any, store: Any, configured: Path | None) -> None:
    """Publish the bundled front-end (store + registry) when the registry has none and this
    node's wallet may: the node that deploys a registry does so as part of the deploy, and
    again at its next start if it stopped in between. Anything else only logs."""
    if registry.frontend_cid() or not registry.is_system_admin(registry.account.address):
        return
    try:
        cid = publish(store, registry, default_build_dir(configured))
    except (FrontendError, ConfigError) as exc:
        log.warning("the bundled front-end is not published: %s", exc)
        return
    log.info("published the bundled front-end: %s", cid)


def _start_block_clock(settings: Settings, chain: Any) -> Any:
    """Start the embedded chain's block clock (one block per second, never ahead of the wall
    clock); None on an external chain or with ``block_seconds = 0``."""
    if chain.embedded is None or settings.block_seconds <= 0:
        return None
    from node.chain.embedded import BlockClock  # lazily: py-evm, only for an embedded chain

    clock = BlockClock(chain.embedded, settings.block_seconds)
    clock.start()
    return clock


def _start_follower(
    settings: Settings,
    chain: Any,
    record: NodeRecord,
    sessions: Any,
    ledger: LedgerService,
    store: Any,
    syncer: Any = None,
) -> Any:
    """Start the chain follower (registry events into SQL, other nodes' leaves from the
    store); None if disabled.

    Confirmations default to 0 on the embedded chain (one producer: no reorgs) and to
    ``DEFAULT_CONFIRMATIONS`` over RPC.
    """
    if not settings.follower or record.registry is None:
        return None

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
            on_missing=None if syncer is None else syncer.wake,
        ),
    )
    if syncer is not None and follower.log_indexer is not None:
        syncer.on_fetched = follower.log_indexer.retry_now
    follower.start()
    return follower


def _start_epochs(settings: Settings, chain: Any, registry: Any) -> Any:
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

    return describe_epoch(service)


def _fund_on_dev_chain(chain: Any, address: str) -> None:
    """Give ``address`` gas money on a dev chain (anvil); raise ``ConfigError`` elsewhere."""
    try:
        chain.fund(address, DEV_FUNDING_WEI)
    except ChainError as exc:
        raise ConfigError(
            f"node address {address} has no balance on this chain; send it some ether "
            f"(automatic funding works only on dev chains: {exc})"
        ) from exc


def hand_over_to_operator(registry: Any, home: str, operator: str) -> None:
    """Make ``operator`` a system admin and the admin (and a participant) of ``home``, then
    drop the node key's admin rights: it keeps only what a node needs (registering, anchoring,
    attesting, relaying). Each step is skipped if already done, so a retry completes it."""
    node_address = registry.account.address
    if not registry.is_system_admin(operator):
        registry.add_system_admin(operator)
    if not registry.is_subsystem_admin(home, operator):
        registry.add_subsystem_admin(home, operator)
    if not registry.is_participant(home, operator):
        registry.add_participant(home, operator)
    if registry.is_subsystem_admin(home, node_address):
        registry.remove_subsystem_admin(home, node_address)
    if registry.is_system_admin(node_address):
        registry.remove_system_admin(node_address)
    log.info("operator %s is system admin and admin of %r; the node key is not", operator, home)


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
