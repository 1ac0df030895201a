"""A subsystem's log of sealed objects, replicated as ciphertext and indexed by any host.

**The log.** S's log is the set of S's *private business transactions* in the anchored ledger:
each entry is a leaf signed by its author's wallet (EIP-712 ``PrivateBusinessTransaction``)
whose ``payload`` is the CID of a sealed object and ``payloadHash`` its salted keccak
commitment. A private record is such an entry of kind :data:`RECORD_KIND`; a private payment
or contract any other kind. So an entry carries its author's own signature (a host can relay
it, never make one up: every node re-checks the signature when it indexes the leaf), its
head is anchored on-chain with the ledger's anchors (Merkle roots of the nodes' logs), and
duplicates are impossible (the transaction id is the EIP-712 digest, the nonce is per
signer; a leaf accepted by two nodes is one entry). Entries are ordered deterministically
by ``(timestamp, tx_id)`` — the signed timestamp, then the id — so concurrent writers on
several ``be_subsystem`` hosts merge without coordination. Updates are new entries; nothing is
rewritten.

**Replication.** Every node indexes every anchored leaf (chain follower + peer sync), and
peer sync follows a leaf's payload CID (the sealed object), the sealed object's key envelope
and each envelope's ``previous`` (:func:`node.crypto.sealed.compute_references`): every node
keeps S's ciphertext and envelopes, none holds a key it is not a recipient of.

**The index.** S's own database keeps ``log_entries``, rebuilt from the ledger index and the
store by :meth:`SubsystemLog.catch_up` (idempotent: entries are keyed by transaction id;
entries gone from the ledger after a reorg are dropped). A host answers for S only when it
is caught up (:meth:`SubsystemLog.status`): the chain follower has reached the head once since
start, and every entry's sealed object and envelope is in the local store.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from node.crypto.errors import CryptoError, NotARecipient
from node.crypto.sealed import decode_sealed, get_envelope, open_envelope, unseal_salted
from node.db.models import BusinessTransaction, TransactionStatus
from node.errors import CollegiumError
from node.ledger.transaction import compute_payload_hash

log = logging.getLogger(__name__)

RECORD_KIND: Final = "record"
#: a follower more than this many blocks behind the head is not caught up
MAX_FOLLOWER_LAG_BLOCKS: Final = 16
#: how long a computed :class:`ReplicaStatus` is reused
STATUS_TTL_SECONDS: Final = 2.0
#: how long the list of subsystems with a log (``/health``) is reused
NAMES_TTL_SECONDS: Final = 10.0
#: after this long not caught up, a host serves S anyway, listing what it lacks as missing
CATCH_UP_GRACE_SECONDS: Final = 60.0


@dataclass(frozen=True)
class LogEntry:
    """One entry of S's log: a private transaction naming a sealed object."""

    tx_id: str
    subsystem: str
    kind: str
    author: str
    timestamp: int
    cid: str
    payload_hash: str
    anchored: bool

    @property
    def order(self) -> tuple[int, str]:
        """Return the deterministic sort key ``(timestamp, tx_id)``."""
        return self.timestamp, self.tx_id


@dataclass(frozen=True)
class ReplicaStatus:
    """How far this node's copy of S's log is: ``have`` of ``entries`` objects are here."""

    subsystem: str
    entries: int
    have: int
    follower_lag: int | None
    ready: bool

    def as_dict(self) -> dict[str, Any]:
        """Return the status as JSON-ready values."""
        return {
            "subsystem": self.subsystem,
            "entries": self.entries,
            "have": self.have,
            "follower_lag": self.follower_lag,
            "ready": self.ready,
        }


def read_log(sessions: sessionmaker[Session], name: str) -> list[LogEntry]:
    """Return S's log from the ledger index: its private transactions, one per id (anchored
    preferred), in log order."""
    with sessions() as session:
        rows = session.execute(
            select(
                BusinessTransaction.tx_id, BusinessTransaction.kind, BusinessTransaction.signer,
                BusinessTransaction.timestamp, BusinessTransaction.payload,
                BusinessTransaction.payload_hash, BusinessTransaction.status,
            ).where(BusinessTransaction.subsystem == name, BusinessTransaction.private.is_(True))
        ).all()  # fmt: skip
    entries: dict[str, LogEntry] = {}
    for tx_id, kind, signer, timestamp, payload, payload_hash, status in rows:
        entry = LogEntry(str(tx_id), name, str(kind), str(signer), int(timestamp), str(payload),
                         str(payload_hash), status == TransactionStatus.ANCHORED)  # fmt: skip
        old = entries.get(entry.tx_id)
        if old is None or (entry.anchored and not old.anchored):
            entries[entry.tx_id] = entry
    return sorted(entries.values(), key=lambda e: e.order)


def log_subsystems(sessions: sessionmaker[Session]) -> list[str]:
    """Return every subsystem with at least one entry in its log, sorted."""
    with sessions() as session:
        names = session.scalars(
            select(BusinessTransaction.subsystem)
            .where(BusinessTransaction.private.is_(True))
            .distinct()
        ).all()
    return sorted(str(n) for n in names)


@dataclass(frozen=True)
class EntryObjects:
    """What the local store says about an entry's sealed object: its envelope and key
    version if here and well-formed; ``missing`` if the object or its envelope is absent."""

    envelope: str | None
    key_version: int | None
    commitment: str | None
    missing: bool
    problem: str | None = None


def inspect_entry(store: Any, entry: LogEntry) -> EntryObjects:
    """Return what the local store holds of ``entry`` (never fetches, never decrypts)."""
    try:
        if not store.has(entry.cid):
            return EntryObjects(None, None, None, True)
        sealed = decode_sealed(store.cat(entry.cid))
    except (CollegiumError, CryptoError) as exc:
        return EntryObjects(None, None, None, False, f"sealed object unreadable: {exc}")
    if sealed.subsystem != entry.subsystem:
        problem = f"sealed for {sealed.subsystem!r}, logged in {entry.subsystem!r}"
        return EntryObjects(None, None, None, False, problem)
    try:
        if not store.has(sealed.envelope):
            return EntryObjects(sealed.envelope, sealed.key_version, None, True)
        envelope = get_envelope(store, sealed.envelope)
    except (CollegiumError, CryptoError) as exc:
        return EntryObjects(sealed.envelope, sealed.key_version, None, False,
                            f"envelope unreadable: {exc}")  # fmt: skip
    if envelope.subsystem != entry.subsystem or envelope.key_version != sealed.key_version:
        problem = "envelope and sealed object disagree on subsystem or key version"
        return EntryObjects(sealed.envelope, sealed.key_version, None, False, problem)
    return EntryObjects(sealed.envelope, sealed.key_version, sealed.commitment.hex(), False)


@dataclass(frozen=True)
class LogFinding:
    """One problem ``collegium verify`` found in a subsystem's log."""

    subsystem: str
    tx_id: str
    check: str
    detail: str

    def __str__(self) -> str:
        return f"log of {self.subsystem!r}: {self.tx_id}: {self.check}: {self.detail}"


@dataclass
class LogAudit:
    """What :func:`audit_logs` checked and found."""

    checked: int = 0
    opened: int = 0  # entries a member's key opened and re-hashed
    findings: list[LogFinding] = field(default_factory=list)


def audit_logs(
    sessions: sessionmaker[Session], store: Any, member_key: bytes | None = None
) -> LogAudit:
    """Check every subsystem's log against the local store, without any key: each entry's
    sealed object and envelope are here (blocks re-hashed against their CIDs by the store),
    decode, name the entry's subsystem and agree on the key version. With ``member_key`` (a
    participant's wallet key), every entry whose envelope has a slot for it is also opened: the
    plaintext must match the sealed object's SHA-256 commitment and the author's signed
    ``payloadHash = keccak256(salt || plaintext)``."""
    audit = LogAudit()
    for name in log_subsystems(sessions):
        for entry in read_log(sessions, name):
            audit.checked += 1
            objects = inspect_entry(store, entry)
            if objects.missing:
                absent = f"{entry.cid} or its envelope is absent"
                audit.findings.append(
                    LogFinding(name, entry.tx_id, "sealed object and envelope here", absent)
                )
            elif objects.problem:
                audit.findings.append(LogFinding(name, entry.tx_id, "sealed object",
                                                 objects.problem))  # fmt: skip
            elif member_key is not None:
                problem = _open_and_rehash(store, entry, member_key)
                if problem is None:
                    audit.opened += 1
                elif problem:
                    audit.findings.append(LogFinding(name, entry.tx_id, "plaintext", problem))
    return audit


def _open_and_rehash(store: Any, entry: LogEntry, member_key: bytes) -> str | None:
    """Return None if ``entry`` opens with ``member_key`` and matches both commitments, "" if
    the key has no slot in its envelope, else what is wrong."""
    sealed = decode_sealed(store.cat(entry.cid))
    try:
        key = open_envelope(get_envelope(store, sealed.envelope), member_key)
    except NotARecipient:
        return ""
    try:
        salt, payload = unseal_salted(key, sealed)  # checks the SHA-256 commitment
    except CryptoError as exc:
        return str(exc)
    if compute_payload_hash(salt, payload) != entry.payload_hash:
        return "the plaintext does not hash to the signed payloadHash"
    return None


class SubsystemLog:
    """Catch S's database up with S's log, and say whether this node is caught up for S."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        store: Any,
        follower_lag: Callable[[], int | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions = sessions
        self.store = store
        self.follower_lag = follower_lag
        self._clock = clock
        self._status: dict[str, tuple[float, ReplicaStatus]] = {}
        self._unready_since: dict[str, float] = {}
        self._follower_caught_up = False  # once near the head, a brief lag is not "behind"
        self._inspected: dict[str, EntryObjects] = {}  # payload CID -> objects, once here
        self._names: tuple[float, list[str]] | None = None
        self._lock = threading.Lock()

    def entries(self, name: str) -> list[LogEntry]:
        """Return S's log in order (from the ledger index)."""
        return read_log(self.sessions, name)

    def inspect(self, entry: LogEntry) -> EntryObjects:
        """Return :func:`inspect_entry` of ``entry``, remembered once its objects are here
        (content-addressed: they do not change; the store re-hashes blocks when read)."""
        known = self._inspected.get(entry.cid)
        if known is not None:
            return known
        objects = inspect_entry(self.store, entry)
        if not objects.missing:
            with self._lock:
                self._inspected[entry.cid] = objects
        return objects

    def catch_up(self, database: Any, name: str) -> list[LogEntry]:
        """Rebuild S's ``log_entries`` from the ledger index and the store; return the log."""
        entries = self.entries(name)
        database.replace_log([(entry, self.inspect(entry)) for entry in entries])
        return entries

    def status(self, name: str) -> ReplicaStatus:
        """Return whether this node is caught up for S (cached ``STATUS_TTL_SECONDS``)."""
        now = self._clock()
        with self._lock:
            cached = self._status.get(name)
        if cached is not None and now - cached[0] < STATUS_TTL_SECONDS:
            return cached[1]
        entries = self.entries(name)
        have = sum(1 for e in entries if not self.inspect(e).missing)
        lag = None
        if self.follower_lag is not None and not self._follower_caught_up:
            lag = self.follower_lag()  # until the follower first reaches the head after start
            self._follower_caught_up = lag is not None and lag <= MAX_FOLLOWER_LAG_BLOCKS
        following = lag is None or lag <= MAX_FOLLOWER_LAG_BLOCKS
        caught_up = have == len(entries) and following
        with self._lock:
            if caught_up:
                self._unready_since.pop(name, None)
                ready = True
            else:
                since = self._unready_since.setdefault(name, now)
                ready = now - since >= CATCH_UP_GRACE_SECONDS
            status = ReplicaStatus(name, len(entries), have, lag, ready)
            self._status[name] = (now, status)
        return status

    def is_ready(self, name: str) -> bool:
        """Return whether this node may answer for S now (:meth:`status`). An index or store
        that cannot be read does not hold the request here: the handler reports that error."""
        try:
            return self.status(name).ready
        except (CollegiumError, SQLAlchemyError) as exc:
            log.warning("readiness of %r unknown (%s): answering", name, exc)
            return True

    def statuses(self, names: Iterable[str] | None = None) -> list[ReplicaStatus]:
        """Return the status of every subsystem with a log (or of ``names``)."""
        if names is None:
            now = self._clock()
            if self._names is None or now - self._names[0] >= NAMES_TTL_SECONDS:
                self._names = (now, log_subsystems(self.sessions))
            chosen = list(self._names[1])
        else:
            chosen = list(names)
        return [self.status(n) for n in chosen]


def get_subsystem_log(node: Any) -> SubsystemLog:
    """Return the node's :class:`SubsystemLog` (made on first use, kept on the node)."""
    log: SubsystemLog | None = getattr(node, "_subsystem_log", None)
    if log is None:
        follower = getattr(node, "follower", None)

        def follower_lag() -> int | None:
            if follower is None:
                return None
            try:
                return max(0, int(node.chain.w3.eth.block_number) - int(follower.last_indexed()))
            except Exception:  # noqa: BLE001 - an unreadable chain: not caught up
                return MAX_FOLLOWER_LAG_BLOCKS + 1

        with _MAKE_LOCK:
            log = getattr(node, "_subsystem_log", None)
            if log is None:
                log = SubsystemLog(node.sessions, node.store, follower_lag)
                node._subsystem_log = log
    return log


_MAKE_LOCK = threading.Lock()
