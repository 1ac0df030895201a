"""Intake: accept signed transactions as pending leaves (see ``docs/ledger.md``, "Accept").

The order of writes is what makes "nothing half-written, nothing acknowledged lost" hold:
every check runs first (``node.ledger.checks``: a rejected request writes nothing anywhere),
then the leaf is committed to SQL (``status = pending``; SQLite ``synchronous=FULL``) — from
here on it is acknowledged and survives ``kill -9`` — and only then is its body added to the
content store (content-addressed, idempotent; a failure there is retried by the anchorer,
which stores missing bodies before anchoring).

Three ways in:

* :meth:`Intake.submit` — one transaction, its own SQL transaction;
* :meth:`Intake.submit_one` — one transaction by **group commit** (:mod:`node.groupcommit`):
  each request thread verifies its own transaction, the group is committed by
  :meth:`Intake.commit_verified` (one SQL transaction) and each request gets its own result
  as soon as that commit is durable; the group's bodies are handed to the
  :class:`~node.ledger.bodywriter.BodyWriter`, which stores them after the answers (one
  store write for the bodies of several groups) while readers of the content store wait
  for a body still pending (:meth:`Intake.wait_body_stored`);
* :meth:`Intake.submit_many` — a batch request: signatures recovered in the verifier pool,
  every accepted row in one SQL transaction; bodies left to the anchorer.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from node.db.models import BusinessTransaction, TransactionStatus
from node.db.session import commit_sqlite, sqlite_transaction
from node.db.writer import SqliteWriter
from node.errors import CollegiumError, ValidationError
from node.groupcommit import GROUP_MAX_ITEMS, GroupCommit
from node.ledger.bodywriter import WAIT_SECONDS, BodyWriter
from node.ledger.bulk import insert_leaves, insert_leaves_sqlite, sqlite_insert
from node.ledger.checks import (
    AdmissionPolicy,
    UsedKeys,
    check_not_replayed,
    compute_nonce_key,
    compute_replay_error,
    get_used_keys,
    get_used_keys_sqlite,
    used_keys_query,
)
from node.ledger.groupwrite import LeafWrite, write_leaves
from node.ledger.protocols import ContentStore
from node.ledger.queries import get_transaction
from node.ledger.rows import new_row, row_values
from node.ledger.signals import LedgerSignals
from node.ledger.transaction import BusinessTx, Domain, SignedBusinessTx, verify_signed_tx
from node.ledger.verifier import VerifiedTx, VerifierPool, compute_leaf_cid, verify_many
from node.worker import WorkerGone

log = logging.getLogger(__name__)

MAX_SUBMIT_BATCH = 1000  # transactions per call of the batch endpoint

_ACCEPTED = ValidationError("accepted")  # placeholder, replaced by the row before returning


@dataclass(frozen=True)
class Submission:
    """One item of a batch submission."""

    tx: BusinessTx
    signature: bytes
    claimed_signer: str | None = None


@dataclass(frozen=True)
class AcceptedTx:
    """A transaction accepted by :meth:`Intake.submit_many` (committed, pending)."""

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


Outcome = AcceptedTx | ValidationError
Verified = tuple[Submission, VerifiedTx]


class Intake:
    """Check signed transactions and commit them as pending leaves (see the module doc)."""

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        store: ContentStore,
        domain: Domain,
        policy: AdmissionPolicy,
        signals: LedgerSignals,
        write_lock: threading.Lock,
        verifier: VerifierPool | None = None,
        group_max: int = GROUP_MAX_ITEMS,
        separate_writer: bool = False,
    ) -> None:
        """``separate_writer``: on a SQLite file, commit groups and batches in a writer
        process of their own (:mod:`node.db.writer`), not in the committing thread."""
        self._sessions = sessions
        self._store = store
        self.domain = domain
        self.policy = policy
        self._signals = signals
        self._write_lock = write_lock  # one writer of this process at a time (service.py)
        self.verifier = verifier  # checks large batch requests in worker processes
        self.bodies = BodyWriter(self._store_many)  # stores bodies after the answers
        self.group: GroupCommit[Verified, Outcome] = GroupCommit(
            self.commit_group, max_items=group_max
        )
        bind = sessions.kw.get("bind")
        self._naive_times = bind is not None and bind.dialect.name == "sqlite"
        #: the SQLite engine group commits write through without a ``Session``, if it is one
        self._sqlite = bind if self._naive_times and isinstance(bind, Engine) else None
        path = self._sqlite.url.database if self._sqlite is not None else None
        in_file = bool(path) and path != ":memory:" and not str(path).startswith("file:")
        #: the writer process of group commits and batches (SQLite files only)
        self.writer = SqliteWriter(str(path)) if separate_writer and in_file else None

    def close(self) -> None:
        """End the writer process, if there is one (a later commit starts it again)."""
        if self.writer is not None:
            self.writer.close()

    # -- checks -------------------------------------------------------------------------------

    def check(
        self, tx: BusinessTx, signature: bytes, claimed_signer: str | None
    ) -> SignedBusinessTx:
        """Return the verified transaction or raise a ``ValidationError`` subclass.

        Writes nothing. Checks format and sizes, the signature, the claimed signer,
        that the subsystem exists, that the signer participates in it and that the
        signer's nonce is unused.
        """
        signed = self.policy.check(verify_signed_tx(self.domain, tx, signature), claimed_signer)
        with self._sessions() as session:
            check_not_replayed(session, signed)
        return signed

    def verify_one(self, item: Submission) -> VerifiedTx:
        """Return ``item`` verified (signature, claimed signer, subsystem, participant), with
        its leaf; raise its ``ValidationError``. Writes nothing; the replay check is the
        commit's."""
        outcome = verify_many(self.domain, [(item.tx, item.signature)])[0]
        if isinstance(outcome, ValidationError):
            raise outcome
        self.policy.check(outcome.signed, item.claimed_signer)
        return outcome

    def admit_cached(
        self, item: Submission, checked: VerifiedTx | ValidationError
    ) -> VerifiedTx | None:
        """Return what :meth:`verify_one` returns, or raise what it raises, for ``item`` whose
        signature check gave ``checked`` (``verify_many``, here or in a worker), from the
        participant cache alone: None where a check would read the registry (a caller on the
        event loop then calls :meth:`submit_one` in a thread)."""
        if isinstance(checked, ValidationError):
            raise checked
        if self.policy.check_cached(checked.signed, item.claimed_signer) is None:
            return None
        return checked

    # -- one transaction ----------------------------------------------------------------------

    def submit(
        self, tx: BusinessTx, signature: bytes, claimed_signer: str | None = None
    ) -> BusinessTransaction:
        """Accept one signed transaction in its own SQL transaction; return its row.

        Raises ``ValidationError`` subclasses for bad input (nothing is written then).
        """
        signed = self.check(tx, signature, claimed_signer)
        body = signed.encode()
        row = new_row(signed, body, compute_leaf_cid(body), datetime.now(UTC))
        with self._sessions() as session:
            session.add(row)
            try:
                with self._write_lock:
                    session.commit()
            except IntegrityError as exc:  # a concurrent submit won the race for this nonce
                session.rollback()
                raise compute_replay_error(signed) from exc
        try:
            self._store.add_bytes(body)
        except CollegiumError as exc:  # the anchorer stores it again before anchoring
            log.warning("storing the body of %s failed, will retry: %s", row.tx_id, exc)
        self._signals.note_leaves()
        return get_transaction(self._sessions, row.tx_id) or row

    def submit_one(self, item: Submission) -> AcceptedTx:
        """Accept one signed transaction by group commit; return it once durable (pending).

        The signature is checked in the calling thread; the commit is shared with whatever
        other single submissions are queued: one SQL transaction and one store write for the
        group, each caller getting its own result. Raises the item's own
        ``ValidationError`` (nothing is written for it then).
        """
        accepted = self.group.submit((item, self.verify_one(item)))
        if isinstance(accepted, ValidationError):
            raise accepted
        return accepted

    def submit_later(
        self,
        item: Submission,
        verified: VerifiedTx,
        done: Callable[[AcceptedTx | None, BaseException | None], None],
    ) -> None:
        """Queue ``item`` (checked by :meth:`verify_cached`) for the group commit and return
        at once; ``done(accepted, None)`` or ``done(None, error)`` is called from the group
        commit's thread once its group is durable (``error``: its own ``ValidationError``,
        e.g. a replay, or what the commit raised)."""

        def settle(outcome: Outcome | None, error: BaseException | None) -> None:
            if isinstance(outcome, ValidationError):
                done(None, outcome)
            else:
                done(outcome, error)

        self.group.submit_later((item, verified), settle)

    def commit_group(self, group: Sequence[Verified]) -> list[Outcome]:
        """Commit a group of single submissions (:meth:`commit_verified`) and queue its
        accepted bodies for the content store: pending from before any request of the
        group is answered, stored after (see :mod:`node.ledger.bodywriter`)."""
        results = self.commit_verified(group)
        self.bodies.put([(r.cid, r.body) for r in results if isinstance(r, AcceptedTx)])
        return results

    def wait_body_stored(self, cid: str, timeout: float = WAIT_SECONDS) -> bool:
        """Return once the body of ``cid`` (canonical CID string), if just accepted, is in
        the content store (True), or False if its write is still pending after ``timeout``
        seconds. Readers of the content store call this before looking a body up."""
        return self.bodies.wait_stored(cid, timeout)

    def flush_bodies(self, timeout: float | None = None) -> bool:
        """Return once every queued body is stored (True), or False after ``timeout``."""
        return self.bodies.flush(timeout)

    def _store_many(self, bodies: list[bytes]) -> None:
        """Put just-accepted bodies into the content store, pinned, in one write if the store
        can (``add_many``); raises what the store raises (the writer logs it: the anchorer
        stores missing bodies)."""
        add_many = getattr(self._store, "add_many", None)
        if add_many is not None:
            add_many(bodies)
            return
        for body in bodies:
            self._store.add_bytes(body)

    # -- a batch ------------------------------------------------------------------------------

    def submit_many(self, items: Sequence[Submission]) -> list[Outcome]:
        """Accept a batch of signed transactions; return, per item, the accepted leaf or the
        ``ValidationError`` that rejected it (rejected items write nothing).

        All accepted rows are committed in one SQL transaction (one fsync, bulk inserts)
        before this returns; their bodies reach the content store through the anchorer.
        """
        if len(items) > MAX_SUBMIT_BATCH:
            raise ValidationError(f"at most {MAX_SUBMIT_BATCH} transactions per batch")
        return self.submit_checked(list(zip(items, self._verify_signatures(items), strict=True)))

    def submit_checked(
        self, items: Sequence[tuple[Submission, VerifiedTx | ValidationError]]
    ) -> list[Outcome]:
        """Accept a batch whose signatures are already recovered (``verify_many``, or the
        verifier pool: :meth:`VerifierPool.map_items`); return per item what
        :meth:`submit_many` returns: the policy's checks (claimed signer, timestamp bound,
        subsystem, participant) and the replay check run here, then one SQL commit.
        """
        if len(items) > MAX_SUBMIT_BATCH:
            raise ValidationError(f"at most {MAX_SUBMIT_BATCH} transactions per batch")
        results: list[Outcome] = []
        candidates: dict[int, Verified] = {}
        for position, (item, outcome) in enumerate(items):
            try:
                if isinstance(outcome, ValidationError):
                    raise outcome
                self.policy.check(outcome.signed, item.claimed_signer)
            except ValidationError as exc:
                results.append(exc)
                continue
            candidates[position] = (item, outcome)
            results.append(_ACCEPTED)
        committed = self.commit_verified(list(candidates.values()))
        for position, result in zip(candidates, committed, strict=True):
            results[position] = result
        return results

    def _verify_signatures(self, items: Sequence[Submission]) -> list[VerifiedTx | ValidationError]:
        """Return each item's recovered signer and leaf, in the worker pool if there is one."""
        pairs = [(item.tx, item.signature) for item in items]
        if self.verifier is not None:
            return self.verifier.verify_many(pairs)
        return verify_many(self.domain, pairs)

    # -- the commit ---------------------------------------------------------------------------

    def commit_verified(self, group: Sequence[Verified]) -> list[Outcome]:
        """Commit the verified, checked items of ``group`` that are not replays, in one SQL
        transaction; return per item its accepted leaf or its ``ReplayedTransaction``.

        The bodies are not stored here: the group commit's ``after`` step or the anchorer
        stores them.
        """
        results, unique = _sift_duplicates(group)
        now = datetime.now(UTC)
        commit = self._commit_session if self._sqlite is None else self._commit_sqlite
        try:
            fresh, seqs = commit(unique, results, now)
        except IntegrityError:  # a concurrent submit won a race: fall back to one by one
            return [
                r if r is not _ACCEPTED else self._submit_or_error(*group[i])
                for i, r in enumerate(results)
            ]
        received_at = now.replace(tzinfo=None) if self._naive_times else now
        for seq, (position, values) in zip(seqs, fresh.items(), strict=True):
            signed_tx = group[position][1].signed.tx
            results[position] = _accepted(values, int(seq), received_at, signed_tx)
        if fresh:
            self._signals.note_leaves()
        return results

    def _commit_session(
        self, unique: dict[int, VerifiedTx], results: list[Outcome], now: datetime
    ) -> tuple[dict[int, dict[str, Any]], list[int]]:
        """Check ``unique`` against the index and insert the fresh ones in one committed SQL
        transaction of a ``Session``; return their row values by position and their seqs
        (the replays' ``results`` marked). Raises ``IntegrityError`` (rolled back)."""
        with self._sessions() as session:
            used = get_used_keys(session, [v.signed for v in unique.values()])
            fresh, parties = _fresh_values(unique, used, results, now)
            try:
                with self._write_lock:
                    seqs = insert_leaves(session, list(fresh.values()), parties)
                    session.commit()
            except IntegrityError:
                session.rollback()
                raise
        return fresh, seqs

    def _commit_sqlite(
        self, unique: dict[int, VerifiedTx], results: list[Outcome], now: datetime
    ) -> tuple[dict[int, dict[str, Any]], list[int]]:
        """:meth:`_commit_session` in plain SQL on SQLite: in the writer process if there is
        one (:meth:`_commit_in_writer`), else on a pooled connection of this process
        (:meth:`_commit_here`)."""
        if self.writer is None or not unique:
            return self._commit_here(unique, results, now)
        return self._commit_in_writer(self.writer, unique, results, now)

    def _commit_here(
        self, unique: dict[int, VerifiedTx], results: list[Outcome], now: datetime
    ) -> tuple[dict[int, dict[str, Any]], list[int]]:
        """:meth:`_commit_session` in plain SQL on one pooled DBAPI connection of the SQLite
        engine (same statements, same rows, the same durable commit): without a
        ``Session``, a group commit spends about half the Python it did."""
        assert self._sqlite is not None
        with sqlite_transaction(self._sqlite) as cursor:
            used = get_used_keys_sqlite(cursor, [v.signed for v in unique.values()])
            fresh, parties = _fresh_values(unique, used, results, now)
            with self._write_lock:
                rows = list(fresh.values())
                seqs = insert_leaves_sqlite(cursor, self._sqlite.dialect, rows, parties)
                commit_sqlite(cursor)
        return fresh, seqs

    def _commit_in_writer(
        self,
        writer: SqliteWriter,
        unique: dict[int, VerifiedTx],
        results: list[Outcome],
        now: datetime,
    ) -> tuple[dict[int, dict[str, Any]], list[int]]:
        """:meth:`_commit_here`'s statements run in ``writer``'s process in one transaction
        (:func:`~node.ledger.groupwrite.write_leaves`); this thread waits once for the answer
        instead of taking the GIL back after every statement.

        If the writer process ended first: a write it never got is done here; one whose
        answer was lost is looked up (all of it committed, or none: then it is done here).
        """
        assert self._sqlite is not None
        values = _row_values(unique, now)
        write = _leaf_write(self._sqlite, unique, values)
        try:
            with self._write_lock:
                replays, seqs = writer.call(write_leaves, write)
        except sqlite3.IntegrityError as exc:  # as SQLAlchemy reports it, for the caller
            raise IntegrityError(write.insert.head, None, exc) from exc
        except WorkerGone as exc:
            log.warning("group commit: %s; checking what it committed", exc)
            received_at = write.rows[0][list(values[next(iter(values))]).index("received_at")]
            found = self._committed(write, received_at) if exc.sent else None
            if found is None:  # nothing of it is in the index: commit it here
                return self._commit_here(unique, results, now)
            replays, seqs = found
        positions = list(unique)
        for i in replays:
            results[positions[i]] = compute_replay_error(unique[positions[i]].signed)
        skipped = set(replays)
        fresh = {p: values[p] for i, p in enumerate(positions) if i not in skipped}
        return fresh, seqs

    def _committed(
        self, write: LeafWrite, received_at: object
    ) -> tuple[list[int], list[int]] | None:
        """Return what :func:`~node.ledger.groupwrite.write_leaves` returned for ``write`` if
        its transaction is in the index (its rows carry its ``received_at``, as bound), else
        None."""
        assert self._sqlite is not None
        marks = ", ".join("?" * len(write.tx_ids))
        with sqlite_transaction(self._sqlite) as cursor:
            found = dict(
                cursor.execute(
                    "SELECT tx_id, seq FROM transactions WHERE origin = '' AND received_at = ?"
                    f" AND tx_id IN ({marks})",
                    [received_at, *write.tx_ids],
                ).fetchall()
            )
        if not found:
            return None
        replays = [i for i, tx_id in enumerate(write.tx_ids) if tx_id not in found]
        return replays, [found[tx_id] for tx_id in write.tx_ids if tx_id in found]

    def _submit_or_error(self, item: Submission, verified: VerifiedTx) -> Outcome:
        """Accept ``item`` in its own SQL transaction (:meth:`submit`); return it as the
        group commit returns its items (every field set, as the answer needs), or its
        ``ValidationError``."""
        try:
            row = self.submit(item.tx, item.signature, item.claimed_signer)
        except ValidationError as exc:
            return exc
        return AcceptedTx(
            tx_id=row.tx_id,
            seq=row.seq,
            signer=row.signer,
            cid=row.cid,
            body=row.body,
            status=row.status,
            leaf_hash=row.leaf_hash,
            signature=row.signature,
            received_at=row.received_at,
            tx=verified.signed.tx,
        )


def _sift_duplicates(group: Sequence[Verified]) -> tuple[list[Outcome], dict[int, VerifiedTx]]:
    """Return per item a placeholder, or its ``ReplayedTransaction`` if an earlier item of
    ``group`` has its id or (signer, nonce); and the first items by position."""
    results: list[Outcome] = [_ACCEPTED] * len(group)
    seen_ids: set[str] = set()
    seen_nonces: set[tuple[str, int]] = set()
    unique: dict[int, VerifiedTx] = {}
    for position, (_, verified_tx) in enumerate(group):
        signed = verified_tx.signed
        nonce_key = compute_nonce_key(signed)
        if signed.tx_id in seen_ids or nonce_key in seen_nonces:
            results[position] = compute_replay_error(signed)
            continue
        seen_ids.add(signed.tx_id)
        seen_nonces.add(nonce_key)
        unique[position] = verified_tx
    return results, unique


def _fresh_values(
    unique: dict[int, VerifiedTx], used: UsedKeys, results: list[Outcome], received_at: datetime
) -> tuple[dict[int, dict[str, Any]], list[Sequence[str]]]:
    """Return the row values (by position) and parties of the items not ``used`` in the
    index; mark the others' ``results`` as replays."""
    some_used = bool(used.tx_ids or used.nonces)  # (rarely: replays are few)
    fresh: dict[int, dict[str, Any]] = {}
    for position, verified_tx in unique.items():
        if some_used and used.holds(verified_tx.signed):
            results[position] = compute_replay_error(verified_tx.signed)
            continue
        fresh[position] = _values_of(verified_tx, received_at)
    return fresh, [unique[p].signed.tx.parties for p in fresh]


def _row_values(unique: dict[int, VerifiedTx], received_at: datetime) -> dict[int, dict[str, Any]]:
    """Return the row values of every item of ``unique``, by position."""
    return {position: _values_of(v, received_at) for position, v in unique.items()}


def _values_of(verified_tx: VerifiedTx, received_at: datetime) -> dict[str, Any]:
    return row_values(
        verified_tx.signed, verified_tx.body, verified_tx.cid, received_at, verified_tx.leaf_hash
    )


def _leaf_write(
    engine: Engine, unique: dict[int, VerifiedTx], values: dict[int, dict[str, Any]]
) -> LeafWrite:
    """Return the writer process's statements and values for the rows ``values`` of the
    items ``unique`` (both by position, in the same order)."""
    signed = [v.signed for v in unique.values()]
    insert, rows = sqlite_insert(engine.dialect, list(values.values()))
    views = [i for i, value in enumerate(rows[0]) if isinstance(value, memoryview)]
    for row in rows:  # SQLAlchemy binds blobs as memoryviews, which do not pickle
        for i in views:
            row[i] = bytes(row[i])
    used_sql, used_params = used_keys_query(signed)
    return LeafWrite(
        used_keys_sql=used_sql,
        used_keys_params=used_params,
        tx_ids=[s.tx_id for s in signed],
        nonce_keys=[compute_nonce_key(s) for s in signed],
        insert=insert,
        rows=rows,
        timestamps=[s.tx.timestamp for s in signed],
        parties=[s.tx.parties for s in signed],
    )


def _accepted(
    values: dict[str, Any], seq: int, received_at: datetime, tx: BusinessTx
) -> AcceptedTx:
    """Return the accepted leaf committed from row ``values`` as ``seq``."""
    return AcceptedTx(
        tx_id=values["tx_id"],
        seq=seq,
        signer=values["signer"],
        cid=values["cid"],
        body=values["body"],
        leaf_hash=values["leaf_hash"],
        signature=values["signature"],
        received_at=received_at,
        tx=tx,
    )
