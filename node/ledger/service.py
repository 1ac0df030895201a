"""The ledger service: accept signed business transactions, keep them, anchor them.

The order of writes is what makes "nothing half-written, nothing acknowledged lost" hold:

1. every check runs first (format, size, signature, subsystem, participant, replay) — a
   rejected request writes nothing anywhere;
2. the leaf is committed to SQL (``status = pending``; SQLite ``synchronous=FULL``) —
   from here on it is acknowledged and survives ``kill -9``;
3. the leaf body is added to the content store (content-addressed, idempotent; the
   batch endpoint leaves this to the anchorer, which stores missing bodies first);
4. the anchorer appends pending leaves to this node's append-only log in batches
   (group commit: a batch is whatever arrived while the previous anchor was being
   mined, at most ``batch_max`` leaves), stores the batch document on IPFS and
   anchors the new tree head (size, root, batch CID) in the registry.

A crash between the anchor transaction and the SQL update is repaired by
:meth:`LedgerService.recover`, which adopts this node's anchors found on-chain (using
their batch documents) instead of anchoring the same leaves twice.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, defer, selectinload, sessionmaker

from node.db.models import Anchor, BusinessTransaction, TransactionParty, TransactionStatus
from node.errors import ChainError, CollegiumError, ValidationError
from node.ledger import tree
from node.ledger.batch import Batch, decode_batch
from node.ledger.bodies import store_bodies
from node.ledger.bulk import insert_leaves, mark_anchored
from node.ledger.hasher import hash_leaf
from node.ledger.intake import GROUP_MAX_ITEMS, GroupCommit
from node.ledger.participants import ParticipantCache
from node.ledger.proof import CompactRange
from node.ledger.queries import page_query
from node.ledger.transaction import BusinessTx, Domain, SignedBusinessTx, verify_signed_tx
from node.ledger.verifier import (  # noqa: F401 - compute_leaf_cid is imported from here too
    VerifiedTx,
    VerifierPool,
    compute_leaf_cid,
    verify_many,
)

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
DEFAULT_BATCH_MAX = 256
MAX_SUBMIT_BATCH = 1000  # transactions per call of the batch endpoint
DEFAULT_MAX_FUTURE_SECONDS = 300.0
"""How far past this node's clock a signed ``timestamp`` may lie (docs/security.md); older ones
are accepted and shown as signed."""
SYSTEM_LOG = ""  # the subsystem field of anchors of the node's (system-wide) log
OWN_LOG = ""  # ``transactions.origin`` of this node's own log (other logs: the node address)
TREE_CATCH_UP_LAG = 1024  # a proof persists the tree first when this many leaves are not


class UnknownSubsystem(ValidationError):
    """The transaction names a subsystem the registry does not know."""


class FutureTimestamp(ValidationError):
    """The signed timestamp lies further in the future than the node's clock skew bound."""


class SignerMismatch(ValidationError):
    """The signature recovers to another address than the one the client claimed."""


class NotAParticipant(ValidationError):
    """The signer is not a participant of the transaction's subsystem."""


class ReplayedTransaction(ValidationError):
    """The signer already used this nonce (or this exact transaction was submitted)."""


class ContentStore(Protocol):
    """What the ledger needs from the content store."""

    def add_bytes(
        self, data: bytes, *, cid_version: int = 1, pin: bool = True, only_hash: bool = False
    ) -> str:
        """Return the CID of ``data`` after storing it."""
        ...

    def cat(self, cid: str, path: str = "") -> bytes:
        """Return the bytes of the file ``cid``."""
        ...

    def has(self, cid: str) -> bool:
        """Return whether every block of ``cid`` is present."""
        ...


class AnchorRegistry(Protocol):
    """What the ledger needs from the registry contract."""

    def subsystem_exists(self, name: str) -> bool:
        """Return whether ``name`` is a registered subsystem."""
        ...

    def is_participant(self, name: str, account: str) -> bool:
        """Return whether ``account`` participates in ``name``."""
        ...

    def anchor(
        self, subsystem: str, root: bytes, tree_size: int, count: int, batch_cid: str
    ) -> Any:
        """Anchor ``root``; return a receipt with ``tx_hash``, ``block_number``, ``index``."""
        ...

    def anchor_count(self) -> int:
        """Return the number of anchors recorded."""
        ...

    def get_anchor(self, index: int) -> Any:
        """Return anchor ``index`` (``root``, ``tree_size``, ``count``, ``batch_cid``, …)."""
        ...


@dataclass(frozen=True)
class InclusionBundle:
    """Everything a third party needs to check one transaction against the chain."""

    tx_id: str
    leaf: bytes
    cid: str
    leaf_index: int
    tree_size: int
    root: str
    path: list[str]
    anchor_index: int
    block_number: int
    chain_tx_hash: str
    node: str


@dataclass(frozen=True)
class Page:
    """A page of transactions, newest first, with the cursor of the next page."""

    items: list[BusinessTransaction]
    next_cursor: int | None


@dataclass(frozen=True)
class TxFilter:
    """Filters of transaction queries (all optional; ``since <= timestamp < until``)."""

    subsystem: str | None = None
    kind: str | None = None
    signer: str | None = None
    party: str | None = None
    since: int | None = None
    until: int | None = None
    anchor: int | None = None


@dataclass(frozen=True)
class AcceptedTx:
    """A transaction accepted by :meth:`LedgerService.submit_many` (committed, pending)."""

    tx_id: str
    seq: int
    signer: str
    cid: str
    body: bytes
    status: str = TransactionStatus.PENDING
    leaf_hash: str = ""
    signature: str = ""  # 0x-hex
    received_at: datetime | None = None  # as the index returns it (naive UTC on SQLite)
    tx: BusinessTx | None = None  # the signed fields, as stored


@dataclass(frozen=True)
class Submission:
    """One item of a batch submission."""

    tx: BusinessTx
    signature: bytes
    claimed_signer: str | None = None


def _hex(data: bytes) -> str:
    return "0x" + bytes(data).hex()


def compute_micros(moment: datetime) -> int:
    """Return ``moment`` as microseconds since the Unix epoch (naive = UTC, as SQLite
    returns it)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


_ACCEPTED = ValidationError("accepted")  # placeholder, replaced by the row before returning


def row_values(
    signed: SignedBusinessTx,
    body: bytes,
    cid: str,
    received_at: datetime,
    leaf_hash: str | None = None,
) -> dict[str, Any]:
    """Return the column values of the (pending) index row of a verified transaction
    (for bulk inserts; parties go to ``transaction_parties``); ``leaf_hash`` (0x-hex) is
    computed from ``body`` unless given."""
    tx = signed.tx
    return {
        "tx_id": signed.tx_id,
        "signer": signed.signer,
        "nonce": tx.nonce,
        "subsystem": tx.subsystem,
        "kind": tx.kind,
        "amount": tx.amount,
        "currency": tx.currency,
        "memo": tx.memo,
        "payload": tx.payload,
        "payload_hash": tx.payload_hash,
        "private": tx.private,
        "timestamp": tx.timestamp,
        "signature": _hex(signed.signature),
        "body": body,
        "leaf_hash": leaf_hash or _hex(hash_leaf(body)),
        "cid": cid,
        "status": TransactionStatus.PENDING,
        "received_at": received_at,
    }


def new_row(
    signed: SignedBusinessTx, body: bytes, cid: str, received_at: datetime
) -> BusinessTransaction:
    """Return the (pending) index row of a verified transaction whose leaf is ``body``."""
    tx = signed.tx
    return BusinessTransaction(
        tx_id=signed.tx_id,
        signer=signed.signer,
        nonce=tx.nonce,
        subsystem=tx.subsystem,
        kind=tx.kind,
        amount=tx.amount,
        currency=tx.currency,
        memo=tx.memo,
        payload=tx.payload,
        payload_hash=tx.payload_hash,
        private=tx.private,
        timestamp=tx.timestamp,
        signature=_hex(signed.signature),
        body=body,
        leaf_hash=_hex(hash_leaf(body)),
        cid=cid,
        status=TransactionStatus.PENDING,
        received_at=received_at,
        parties=[TransactionParty(position=i, address=p) for i, p in enumerate(tx.parties)],
    )


class LedgerService:
    """Validate, store and anchor business transactions; answer queries about them."""

    def __init__(
        self,
        *,
        session_factory: sessionmaker[Session],
        store: ContentStore,
        registry: AnchorRegistry,
        domain: Domain,
        node_address: str,
        batch_max: int = DEFAULT_BATCH_MAX,
        participants: ParticipantCache | None = None,
        require_participant: bool = True,
        verifier: VerifierPool | None = None,
        max_future_seconds: float = DEFAULT_MAX_FUTURE_SECONDS,
        group_max: int = GROUP_MAX_ITEMS,
    ) -> None:
        self._sessions = session_factory
        self.max_future_seconds = max_future_seconds
        self.verifier = verifier  # checks large batch requests in worker processes
        # called after each own anchor with (batch CID, leaf CIDs, their payload CIDs), all in
        # the local store and pinned (the syncer need not walk them again)
        self.on_anchored: Callable[[str, list[str], list[str]], None] | None = None
        self._store = store
        self._registry = registry
        self.participants = participants or ParticipantCache(registry)
        self.require_participant = require_participant
        self.domain = domain
        self._node_address = node_address
        self.batch_max = batch_max
        self._anchor_lock = threading.Lock()
        # one writer of this process at a time: SQLite takes one anyway, and a writer that
        # finds the database locked sleeps in SQLite's busy handler (1, 2, 5 … 100 ms steps)
        # well past the moment the lock is free; a lock here hands over at once
        self._write_lock = threading.Lock()
        self.changed = threading.Condition()  # notified on every new leaf and every anchor
        self.leaf_added = threading.Event()  # set by submit, cleared by the anchorer
        self.anchor_generation = 0  # anchors made by this service (under ``changed``)
        self._leaf_hashes: list[bytes] | None = None  # this node's log, by leaf index
        self._frontier: tuple[list[bytes], CompactRange] | None = None  # (log, its frontier)
        # single submissions are committed in groups (node.ledger.intake)
        self._intake: GroupCommit[tuple[Submission, VerifiedTx], AcceptedTx | ValidationError]
        self._intake = GroupCommit(
            self._commit_group, max_items=group_max, after=self._store_group_bodies
        )
        bind = session_factory.kw.get("bind")
        self._naive_times = bind is not None and bind.dialect.name == "sqlite"

    @property
    def node_address(self) -> str:
        """Return the address of the node whose log this service keeps."""
        return self._node_address

    # -- writes ---------------------------------------------------------------------------

    def check(
        self, tx: BusinessTx, signature: bytes, claimed_signer: str | None
    ) -> SignedBusinessTx:
        """Return the verified transaction or raise a ``ValidationError`` subclass.

        Writes nothing. Checks format and sizes, the signature, the claimed signer,
        that the subsystem exists, that the signer participates in it and that the
        signer's nonce is unused.
        """
        signed = self._check_stateless(tx, signature, claimed_signer)
        with self._sessions() as session:
            self._check_replay(session, signed)
        return signed

    def _check_stateless(
        self, tx: BusinessTx, signature: bytes, claimed_signer: str | None
    ) -> SignedBusinessTx:
        return self._check_signed(verify_signed_tx(self.domain, tx, signature), claimed_signer)

    def _check_signed(
        self, signed: SignedBusinessTx, claimed_signer: str | None
    ) -> SignedBusinessTx:
        tx = signed.tx
        if claimed_signer is not None and claimed_signer.lower() != signed.signer.lower():
            raise SignerMismatch(
                f"signature recovers to {signed.signer}, not the claimed signer {claimed_signer}"
            )
        if tx.timestamp > time.time() + self.max_future_seconds:
            raise FutureTimestamp(
                f"timestamp {tx.timestamp} is more than {self.max_future_seconds:g} s ahead of "
                "this node's clock (tx_max_future_seconds)"
            )
        if not self.participants.subsystem_exists(tx.subsystem):
            raise UnknownSubsystem(f"unknown subsystem {tx.subsystem!r}")
        if self.require_participant and not self.participants.is_participant(
            tx.subsystem, signed.signer
        ):
            raise NotAParticipant(f"{signed.signer} is not a participant of {tx.subsystem!r}")
        return signed

    @staticmethod
    def _check_replay(session: Session, signed: SignedBusinessTx) -> None:
        used = session.scalar(
            select(BusinessTransaction.seq).where(
                (BusinessTransaction.tx_id == signed.tx_id)
                | (
                    (BusinessTransaction.signer == signed.signer)
                    & (BusinessTransaction.nonce == signed.tx.nonce)
                )
            )
        )
        if used is not None:
            raise ReplayedTransaction(
                f"nonce {signed.tx.nonce} of {signed.signer} was already used (replay)"
            )

    def submit(
        self, tx: BusinessTx, signature: bytes, claimed_signer: str | None = None
    ) -> BusinessTransaction:
        """Accept one signed transaction; return its row (anchored unless the chain failed).

        Raises ``ValidationError`` subclasses for bad input (nothing is written then).
        """
        signed = self.check(tx, signature, claimed_signer)
        row = self._new_row(signed, datetime.now(UTC))
        body = row.body
        with self._sessions() as session:
            session.add(row)
            try:
                with self._write_lock:
                    session.commit()
            except IntegrityError as exc:  # a concurrent submit won the race for this nonce
                session.rollback()
                raise ReplayedTransaction(
                    f"nonce {tx.nonce} of {signed.signer} was already used (replay)"
                ) from exc
        try:
            self._store.add_bytes(body)
        except CollegiumError as exc:  # the anchorer stores it again before anchoring
            log.warning("storing the body of %s failed, will retry: %s", row.tx_id, exc)
        self.leaf_added.set()
        with self.changed:
            self.changed.notify_all()
        return self.get(row.tx_id) or row

    def _new_row(self, signed: SignedBusinessTx, received_at: datetime) -> BusinessTransaction:
        body = signed.encode()
        return new_row(signed, body, compute_leaf_cid(body), received_at)

    def submit_one(self, item: Submission) -> AcceptedTx:
        """Accept one signed transaction by group commit; return it once durable (pending).

        The signature is checked in the calling thread; the commit is shared with whatever
        other single submissions are queued (:mod:`node.ledger.intake`): one SQL transaction
        and one store write for the group, each caller getting its own result. Raises the
        item's own ``ValidationError`` (nothing is written for it then).
        """
        outcome = self.verify_one(item)
        accepted = self._intake.submit((item, outcome))
        if isinstance(accepted, ValidationError):
            raise accepted
        return accepted

    def verify_one(self, item: Submission) -> VerifiedTx:
        """Return ``item`` verified (signature, claimed signer, subsystem, participant), with
        its leaf; raise its ``ValidationError``. Writes nothing; the replay check is the
        commit's."""
        outcome = verify_many(self.domain, [(item.tx, item.signature)])[0]
        if isinstance(outcome, ValidationError):
            raise outcome
        self._check_signed(outcome.signed, item.claimed_signer)
        return outcome

    def _commit_group(
        self, group: list[tuple[Submission, VerifiedTx]]
    ) -> list[AcceptedTx | ValidationError]:
        return self._commit_verified(group)

    def _store_group_bodies(
        self,
        group: list[tuple[Submission, VerifiedTx]],
        results: list[AcceptedTx | ValidationError],
    ) -> None:
        """Put a committed group's accepted bodies into the content store (one write)."""
        bodies = [r.body for r in results if isinstance(r, AcceptedTx)]
        if bodies:
            self._store_new_bodies(bodies)

    def submit_many(self, items: Sequence[Submission]) -> list[AcceptedTx | ValidationError]:
        """Accept a batch of signed transactions; return, per item, the accepted leaf or the
        ``ValidationError`` that rejected it (rejected items write nothing).

        All accepted rows are committed in one SQL transaction (one fsync, bulk inserts)
        before this returns; their bodies reach the content store through the anchorer.
        """
        if len(items) > MAX_SUBMIT_BATCH:
            raise ValidationError(f"at most {MAX_SUBMIT_BATCH} transactions per batch")
        results: list[AcceptedTx | ValidationError] = []
        candidates: dict[int, tuple[Submission, VerifiedTx]] = {}
        pairs = [(item.tx, item.signature) for item in items]
        verified = (
            self.verifier.verify_many(pairs)
            if self.verifier is not None
            else verify_many(self.domain, pairs)
        )
        for position, (item, outcome) in enumerate(zip(items, verified, strict=True)):
            try:
                if isinstance(outcome, ValidationError):
                    raise outcome
                self._check_signed(outcome.signed, item.claimed_signer)
            except ValidationError as exc:
                results.append(exc)
                continue
            candidates[position] = (item, outcome)
            results.append(_ACCEPTED)
        committed = self._commit_verified(list(candidates.values()))
        for position, result in zip(candidates, committed, strict=True):
            results[position] = result
        return results

    def _commit_verified(
        self, group: Sequence[tuple[Submission, VerifiedTx]]
    ) -> list[AcceptedTx | ValidationError]:
        """Commit the verified, checked items of ``group`` that are not replays, in one SQL
        transaction; return per item its accepted leaf or its ``ReplayedTransaction``.

        The bodies are not stored here: the group commit's ``after`` step or the anchorer
        stores them.
        """
        results: list[AcceptedTx | ValidationError] = [_ACCEPTED] * len(group)
        seen_ids: set[str] = set()
        seen_nonces: set[tuple[str, int]] = set()
        unique: dict[int, VerifiedTx] = {}
        for position, (_, verified_tx) in enumerate(group):
            signed = verified_tx.signed
            key = (signed.signer, signed.tx.nonce)
            if signed.tx_id in seen_ids or key in seen_nonces:
                results[position] = ReplayedTransaction(
                    f"nonce {signed.tx.nonce} of {signed.signer} was already used (replay)"
                )
                continue
            seen_ids.add(signed.tx_id)
            seen_nonces.add(key)
            unique[position] = verified_tx
        now = datetime.now(UTC)
        with self._sessions() as session:
            used = self._used(session, [v.signed for v in unique.values()])
            fresh: dict[int, dict[str, Any]] = {}
            parties: list[Sequence[str]] = []
            for position, verified_tx in unique.items():
                signed = verified_tx.signed
                if signed.tx_id in used[0] or (signed.signer, signed.tx.nonce) in used[1]:
                    results[position] = ReplayedTransaction(
                        f"nonce {signed.tx.nonce} of {signed.signer} was already used (replay)"
                    )
                    continue
                fresh[position] = row_values(
                    signed, verified_tx.body, verified_tx.cid, now, verified_tx.leaf_hash
                )
                parties.append(signed.tx.parties)
            try:
                with self._write_lock:
                    seqs = insert_leaves(session, list(fresh.values()), parties)
                    session.commit()
            except IntegrityError:  # a concurrent submit won a race: fall back to one by one
                session.rollback()
                return [
                    r if isinstance(r, ValidationError) else self._submit_or_error(group[i][0])
                    for i, r in enumerate(results)
                ]
        received_at = now.replace(tzinfo=None) if self._naive_times else now
        for seq, (position, values) in zip(seqs, fresh.items(), strict=True):
            results[position] = AcceptedTx(
                tx_id=values["tx_id"],
                seq=int(seq),
                signer=values["signer"],
                cid=values["cid"],
                body=values["body"],
                leaf_hash=values["leaf_hash"],
                signature=values["signature"],
                received_at=received_at,
                tx=group[position][1].signed.tx,
            )
        if fresh:
            self.leaf_added.set()
            with self.changed:
                self.changed.notify_all()
        return results

    def _store_new_bodies(self, bodies: list[bytes]) -> None:
        """Put just-accepted bodies into the content store, pinned, in one write if the store
        can (``add_many``); a failure is logged (the anchorer stores missing bodies)."""
        add_many = getattr(self._store, "add_many", None)
        try:
            if add_many is not None:
                add_many(bodies)
            else:
                for body in bodies:
                    self._store.add_bytes(body)
        except CollegiumError as exc:
            log.warning("storing %d bodies failed, the anchorer will retry: %s", len(bodies), exc)

    def _submit_or_error(self, item: Submission) -> AcceptedTx | ValidationError:
        try:
            row = self.submit(item.tx, item.signature, item.claimed_signer)
        except ValidationError as exc:
            return exc
        return AcceptedTx(tx_id=row.tx_id, seq=row.seq, signer=row.signer, cid=row.cid,
                          body=row.body)  # fmt: skip

    @staticmethod
    def _used(
        session: Session, signed: list[SignedBusinessTx]
    ) -> tuple[set[str], set[tuple[str, int]]]:
        """Return the tx ids and (signer, nonce) pairs of ``signed`` already in the index."""
        if not signed:
            return set(), set()
        ids = {s.tx_id for s in signed}
        signers = {s.signer for s in signed}
        nonces = {s.tx.nonce for s in signed}
        found = session.execute(
            select(
                BusinessTransaction.tx_id, BusinessTransaction.signer, BusinessTransaction.nonce
            ).where(
                BusinessTransaction.tx_id.in_(ids)
                | (BusinessTransaction.signer.in_(signers) & BusinessTransaction.nonce.in_(nonces))
            )
        ).all()
        return {r[0] for r in found}, {(r[1], int(r[2])) for r in found}

    def wait_anchored(self, tx_id: str, timeout: float) -> BusinessTransaction | None:
        """Return the row of ``tx_id`` once anchored, or as it is after ``timeout`` s.

        The row is read again after each anchor this service makes (and every 0.5 s, for
        anchors adopted otherwise), not on every new leaf."""
        deadline = time.monotonic() + timeout
        while True:
            with self.changed:
                generation = self.anchor_generation
            row = self.get(tx_id)
            remaining = deadline - time.monotonic()
            if row is None or row.status == TransactionStatus.ANCHORED or remaining <= 0:
                return row
            until = time.monotonic() + min(remaining, 0.5)
            with self.changed:
                while self.anchor_generation == generation:
                    left = until - time.monotonic()
                    if left <= 0:
                        break
                    self.changed.wait(left)

    def pending_count(self) -> int:
        """Return how many accepted leaves wait for an anchor."""
        with self._sessions() as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(BusinessTransaction)
                    .where(BusinessTransaction.status == TransactionStatus.PENDING)
                )
                or 0
            )

    # -- the log ----------------------------------------------------------------------------

    def _log(self, session: Session) -> list[bytes]:
        """Return this node's leaf hashes by leaf index (loaded once, then kept current)."""
        if self._leaf_hashes is None:
            hashes = session.scalars(
                select(BusinessTransaction.leaf_hash)
                .where(
                    BusinessTransaction.origin == OWN_LOG,
                    BusinessTransaction.leaf_index.is_not(None),
                )
                .order_by(BusinessTransaction.leaf_index)
            ).all()
            self._leaf_hashes = [bytes.fromhex(h[2:]) for h in hashes]
        return self._leaf_hashes

    def tree_size(self) -> int:
        """Return the size of this node's anchored log (one index lookup)."""
        with self._sessions() as session:
            return tree.log_size(session, OWN_LOG)

    def anchor_pending(self) -> Anchor | None:
        """Anchor one batch of pending leaves; return its anchor, or None if none pending.

        Raises ``ChainError`` / ``StoreError`` if the anchor could not be made (the
        leaves stay pending and are retried).
        """
        with self._anchor_lock, self._sessions() as session:
            # plain rows, not ORM objects: a batch is thousands of leaves
            rows: Sequence[Any] = session.execute(
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
            if not rows:
                return None
            self._check_last_anchor(session)
            log_hashes = self._log(session)
            first = len(log_hashes)
            frontier = self._frontier_of(log_hashes)
            store_bodies(self._store, rows, first)
            new_hashes = [bytes.fromhex(r.leaf_hash[2:]) for r in rows]
            for leaf_hash in new_hashes:
                frontier.append(leaf_hash)
            batch = Batch(
                first,
                tuple(r.cid for r in rows),
                tuple(compute_micros(r.received_at) for r in rows),
            )
            batch_cid = self._store.add_bytes(batch.encode())
            root = frontier.root()
            receipt = self._registry.anchor(SYSTEM_LOG, root, frontier.size, len(rows), batch_cid)
            anchor = Anchor(
                index=int(receipt.index),
                root=_hex(root),
                tree_size=frontier.size,
                count=len(rows),
                batch_cid=batch_cid,
                subsystem=SYSTEM_LOG,
                node=self._node_address,
                block_number=int(receipt.block_number),
                chain_tx_hash=_hex(bytes(receipt.tx_hash)),
            )
            with self._write_lock:
                anchor = session.merge(anchor)  # the follower may have indexed it already
                mark_anchored(session, [r.seq for r in rows], first, anchor.index)
                session.commit()
            log_hashes.extend(new_hashes)
            self._frontier = (log_hashes, frontier)
        if self.on_anchored is not None:
            self.on_anchored(batch_cid, list(batch.leaf_cids), [r.payload for r in rows])
        with self.changed:
            self.anchor_generation += 1
            self.changed.notify_all()
        return anchor

    def _frontier_of(self, log_hashes: list[bytes]) -> CompactRange:
        """Return a frontier of ``log_hashes`` (a copy of the cached one when it is current,
        so a failed anchor leaves the cache as it was)."""
        cached = self._frontier
        if cached is not None and cached[0] is log_hashes and cached[1].size == len(log_hashes):
            return copy.deepcopy(cached[1])
        frontier = CompactRange()
        for leaf_hash in log_hashes:
            frontier.append(leaf_hash)
        return frontier

    def _check_last_anchor(self, session: Session) -> None:
        """Raise ``ChainError`` if this node's newest indexed anchor is no longer on-chain
        (a reorg dropped it): a new tree head must not extend leaves the chain lost. The
        chain follower rolls those leaves back to pending; anchoring resumes after it."""
        last = session.scalar(
            select(Anchor)
            .where(Anchor.node == self._node_address)
            .order_by(Anchor.index.desc())
            .limit(1)
        )
        if last is None:
            return
        try:
            onchain = self._registry.get_anchor(last.index)
            same = _hex(bytes(onchain.root)) == last.root and int(onchain.tree_size) == (
                last.tree_size
            )
        except Exception:  # out of range after a reorg, or the chain is unreachable
            same = False
        if not same:
            raise ChainError(
                f"anchor {last.index} (tree size {last.tree_size}) is not on-chain any more; "
                "waiting for the chain follower to roll its leaves back"
            )

    def recover(self) -> int:
        """Adopt this node's on-chain anchors missing from SQL (a crash right after an
        anchor transaction); return how many leaves were adopted.

        Raises ``ChainError``/``StoreError`` if the chain or the batch cannot be read, and
        ``CollegiumError`` if an on-chain batch does not match the pending leaves.
        """
        adopted = 0
        with self._anchor_lock, self._sessions() as session:
            known = session.scalar(
                select(Anchor.index)
                .where(Anchor.node == self._node_address)
                .order_by(Anchor.index.desc())
                .limit(1)
            )
            for index in range(0 if known is None else known + 1, self._registry.anchor_count()):
                onchain = self._registry.get_anchor(index)
                if str(onchain.node).lower() != self._node_address.lower():
                    continue
                batch = decode_batch(self._store.cat(str(onchain.batch_cid)))
                rows = {
                    r.cid: r
                    for r in session.scalars(
                        select(BusinessTransaction).where(
                            BusinessTransaction.cid.in_(batch.leaf_cids),
                            BusinessTransaction.status == TransactionStatus.PENDING,
                        )
                    )
                }
                log_hashes = self._log(session)
                if batch.first != len(log_hashes) or set(rows) != set(batch.leaf_cids):
                    raise CollegiumError(
                        f"on-chain anchor {index} (leaves {batch.first}..) does not match "
                        f"this node's log of {len(log_hashes)} leaves and pending rows"
                    )
                session.merge(
                    Anchor(
                        index=index,
                        root=_hex(bytes(onchain.root)),
                        tree_size=int(onchain.tree_size),
                        count=int(onchain.count),
                        batch_cid=str(onchain.batch_cid),
                        subsystem=str(onchain.subsystem),
                        node=str(onchain.node),
                        block_number=int(onchain.block_number),
                        chain_tx_hash=self._anchor_tx_hash(index, int(onchain.block_number)),
                    )
                )
                for offset, cid in enumerate(batch.leaf_cids):
                    row = rows[cid]
                    row.leaf_index = batch.first + offset
                    row.anchor_index = index
                    row.status = TransactionStatus.ANCHORED
                    log_hashes.append(bytes.fromhex(row.leaf_hash[2:]))
                adopted += len(batch.leaf_cids)
            session.commit()
        return adopted

    def _anchor_tx_hash(self, index: int, block_number: int) -> str:
        find = getattr(self._registry, "anchor_tx_hash", None)
        if find is None:
            return ""
        found = find(index, block_number)
        return "" if found is None else _hex(bytes(found))

    # -- proofs ---------------------------------------------------------------------------

    def inclusion(self, tx_id: str) -> InclusionBundle | None:
        """Return the inclusion proof of ``tx_id`` in the tree head of its anchor, or None
        if the transaction is unknown or not yet anchored (O(log n) reads, any node's log)."""
        row = self.get(tx_id)
        if row is None or row.anchor is None or row.leaf_index is None:
            return None
        with self._sessions() as session:
            self._catch_up_tree(session, row.origin, row.anchor.tree_size)
            path = tree.inclusion_path(session, row.origin, row.leaf_index, row.anchor.tree_size)
        return InclusionBundle(
            tx_id=row.tx_id,
            leaf=row.body,
            cid=row.cid,
            leaf_index=row.leaf_index,
            tree_size=row.anchor.tree_size,
            root=row.anchor.root,
            path=[_hex(p) for p in path],
            anchor_index=row.anchor.index,
            block_number=row.anchor.block_number,
            chain_tx_hash=row.anchor.chain_tx_hash,
            node=row.anchor.node,
        )

    @staticmethod
    def _catch_up_tree(session: Session, origin: str, size: int) -> None:
        """Persist the tree nodes of ``origin`` first if many leaves are not (normally the
        chain follower keeps them current); proofs are right either way."""
        if size - tree.persisted_size(session, origin) > TREE_CATCH_UP_LAG:
            try:
                tree.catch_up(session, origin, size)
                session.commit()
            except OperationalError as exc:  # a concurrent writer (SQLite): next time
                session.rollback()
                log.debug("tree catch-up of %r postponed: %s", origin, exc)

    def consistency(self, size1: int, size2: int) -> list[str]:
        """Return the consistency proof between two anchored sizes of this node's log.

        Raises ``ValidationError`` unless 0 < size1 <= size2 <= anchored size.
        """
        with self._sessions() as session:
            size = tree.log_size(session, OWN_LOG)
            if not 0 < size1 <= size2 <= size:
                raise ValidationError(f"need 0 < first <= second <= {size}, got {size1}, {size2}")
            self._catch_up_tree(session, OWN_LOG, size2)
            return [_hex(p) for p in tree.consistency_path(session, OWN_LOG, size1, size2)]

    def anchors(self, *, before: int | None = None, limit: int = DEFAULT_PAGE_SIZE) -> list[Anchor]:
        """Return this node's anchors, newest first."""
        query = (
            select(Anchor).order_by(Anchor.index.desc()).limit(max(1, min(limit, MAX_PAGE_SIZE)))
        )
        if before is not None:
            query = query.where(Anchor.index < before)
        with self._sessions() as session:
            return list(session.scalars(query).all())

    # -- reads ----------------------------------------------------------------------------

    def get(self, tx_id: str) -> BusinessTransaction | None:
        """Return the transaction with id ``tx_id`` (0x-hex EIP-712 digest), or None."""
        with self._sessions() as session:
            return session.scalar(
                select(BusinessTransaction)
                .options(
                    selectinload(BusinessTransaction.parties),
                    selectinload(BusinessTransaction.anchor),
                )
                .where(BusinessTransaction.tx_id == tx_id.lower())
                .order_by(BusinessTransaction.origin, BusinessTransaction.seq)
                .limit(1)
            )

    def list(
        self,
        *,
        subsystem: str | None = None,
        kind: str | None = None,
        signer: str | None = None,
        party: str | None = None,
        since: int | None = None,
        until: int | None = None,
        anchor: int | None = None,
        before: int | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
    ) -> Page:
        """Return a page of transactions matching the filters, newest first
        (``since <= timestamp < until`` on the signed timestamp)."""
        where = TxFilter(subsystem, kind, signer, party, since, until, anchor)
        return self.page(where, before=before, limit=limit)

    def page(
        self, where: TxFilter, *, before: int | None = None, limit: int = DEFAULT_PAGE_SIZE
    ) -> Page:
        """Return one page of transactions matching ``where``, newest first."""
        limit = max(1, min(limit, MAX_PAGE_SIZE))
        with self._sessions() as session:
            query = page_query(session, where, before, limit).options(
                defer(BusinessTransaction.body),
                selectinload(BusinessTransaction.parties),
                selectinload(BusinessTransaction.anchor),
            )
            rows: Sequence[BusinessTransaction] = session.scalars(query).all()
        items = list(rows[:limit])
        next_cursor = items[-1].seq if len(rows) > limit else None
        return Page(items, next_cursor)

    def iter_all(
        self, where: TxFilter, *, chunk: int = MAX_PAGE_SIZE, first: int | None = None
    ) -> Iterator[BusinessTransaction]:
        """Yield every transaction matching ``where``, newest first, one page per query
        (for streamed exports: memory stays bounded and no session is held open); the first
        page has ``first`` rows if given (a streamed export starts sooner)."""
        for page in self.iter_pages(where, chunk=chunk, first=first):
            yield from page

    def iter_pages(
        self, where: TxFilter, *, chunk: int = MAX_PAGE_SIZE, first: int | None = None
    ) -> Iterator[Sequence[BusinessTransaction]]:
        """Yield the pages of every transaction matching ``where``, newest first: ``first``
        rows (if given), then twice as many each time up to ``chunk``. A client that stops
        after the first rows (a download cancelled, a preview) leaves the server at most
        one small page of work, not a whole chunk; a full export soon reads ``chunk``
        rows per query."""
        before: int | None = None
        size = chunk if first is None else min(first, chunk)
        while True:
            page = self.page(where, before=before, limit=size)
            yield page.items
            if page.next_cursor is None:
                return
            before = page.next_cursor
            size = min(chunk, size * 2)

    # -- reorgs -----------------------------------------------------------------------------

    def rollback_own_anchors_above(self, block_number: int) -> int:
        """Undo this node's anchors mined above ``block_number`` (dropped by a reorg): their
        leaves become pending again and are re-anchored; return how many leaves.

        The rolled-back anchors are the newest ones, so the log keeps its prefix and the
        pending leaves (ordered by ``seq``) are appended again in the same order.
        """
        with self._anchor_lock, self._sessions() as session:
            indexes = session.scalars(
                select(Anchor.index).where(
                    Anchor.node == self._node_address, Anchor.block_number > block_number
                )
            ).all()
            if not indexes:
                return 0
            result = session.execute(
                update(BusinessTransaction)
                .where(BusinessTransaction.anchor_index.in_(indexes))
                .values(status=TransactionStatus.PENDING, leaf_index=None, anchor_index=None)
            )
            session.execute(delete(Anchor).where(Anchor.index.in_(indexes)))
            tree.truncate(session, OWN_LOG, tree.log_size(session, OWN_LOG))
            session.commit()
            self._leaf_hashes = None
        self.leaf_added.set()
        return int(getattr(result, "rowcount", 0) or 0)

    def count(self) -> dict[str, int]:
        """Return the number of transactions per status: pending by the status index,
        anchored as the sum of the sizes of every log (logs have no gaps; one index lookup
        per log instead of counting a million rows)."""
        with self._sessions() as session:
            pending = session.scalar(
                select(func.count())
                .select_from(BusinessTransaction)
                .where(BusinessTransaction.status == TransactionStatus.PENDING)
            )
            others = session.scalars(
                select(Anchor.node)
                .where(func.lower(Anchor.node) != self._node_address.lower())
                .group_by(Anchor.node)
            ).all()
            anchored = sum(tree.log_size(session, origin) for origin in (OWN_LOG, *others))
        counts = {
            TransactionStatus.PENDING: int(pending or 0),
            TransactionStatus.ANCHORED: anchored,
        }
        return {status: n for status, n in counts.items() if n}
