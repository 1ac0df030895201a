"""The checks a signed transaction passes before anything is written (docs/security.md).

The signature itself is recovered by ``node.ledger.transaction`` / ``node.ledger.verifier``.
Then :class:`AdmissionPolicy` checks, without the index, the claimed signer, the signed
timestamp's bound, the subsystem and the signer's participation; last, the replay check
against the index: neither the transaction id nor the signer's ``(signer, nonce)`` may be
in use already. Each rejection is its own ``ValidationError`` subclass (``node.api``
answers each with its own status) and writes nothing.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from node.db.models import BusinessTransaction
from node.db.session import sqlite_cursor
from node.errors import ValidationError
from node.ledger.participants import ParticipantCache
from node.ledger.transaction import SignedBusinessTx

_TABLE = BusinessTransaction.__tablename__

DEFAULT_MAX_FUTURE_SECONDS = 300.0
"""How far past this node's clock a signed ``timestamp`` may lie (docs/security.md); older ones
are accepted and shown as signed."""


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


@dataclass
class AdmissionPolicy:
    """The checks of a signed transaction that need no index (settable while running)."""

    participants: ParticipantCache
    require_participant: bool = True
    max_future_seconds: float = DEFAULT_MAX_FUTURE_SECONDS

    def check(self, signed: SignedBusinessTx, claimed_signer: str | None) -> SignedBusinessTx:
        """Return ``signed`` if the claimed signer (if any) is its signer, its timestamp is
        within the bound, its subsystem exists and its signer participates (when required);
        raise ``SignerMismatch``, ``FutureTimestamp``, ``UnknownSubsystem`` or
        ``NotAParticipant`` otherwise."""
        checked = self._check(signed, claimed_signer, cached_only=False)
        assert checked is not None  # every answer was read
        return checked

    def check_cached(
        self, signed: SignedBusinessTx, claimed_signer: str | None
    ) -> SignedBusinessTx | None:
        """Return what :meth:`check` returns or raise what it raises, from the participant
        cache alone: None where an answer would need a registry read (then ask
        :meth:`check`, off the event loop)."""
        return self._check(signed, claimed_signer, cached_only=True)

    def _check(
        self, signed: SignedBusinessTx, claimed_signer: str | None, *, cached_only: bool
    ) -> SignedBusinessTx | None:
        tx = signed.tx
        participants = self.participants
        if claimed_signer is not None and claimed_signer.lower() != signed.signer.lower():
            raise SignerMismatch(
                f"signature recovers to {signed.signer}, not the claimed signer {claimed_signer}"
            )
        if tx.timestamp > time.time() + self.max_future_seconds:
            raise FutureTimestamp(
                f"timestamp {tx.timestamp} is more than {self.max_future_seconds:g} s ahead of "
                "this node's clock (tx_max_future_seconds)"
            )
        exists = (
            participants.cached_subsystem_exists(tx.subsystem)
            if cached_only
            else participants.subsystem_exists(tx.subsystem)
        )
        if exists is None:
            return None
        if not exists:
            raise UnknownSubsystem(f"unknown subsystem {tx.subsystem!r}")
        if not self.require_participant:
            return signed
        member = (
            participants.cached_is_participant(tx.subsystem, signed.signer)
            if cached_only
            else participants.is_participant(tx.subsystem, signed.signer)
        )
        if member is None:
            return None
        if not member:
            raise NotAParticipant(f"{signed.signer} is not a participant of {tx.subsystem!r}")
        return signed


def compute_nonce_key(signed: SignedBusinessTx) -> tuple[str, int]:
    """Return the ``(signer, nonce)`` pair a transaction uses up."""
    return (signed.signer, signed.tx.nonce)


def compute_replay_error(signed: SignedBusinessTx) -> ReplayedTransaction:
    """Return the ``ReplayedTransaction`` rejecting ``signed``."""
    return ReplayedTransaction(
        f"nonce {signed.tx.nonce} of {signed.signer} was already used (replay)"
    )


class UsedKeys(NamedTuple):
    """The replay keys found in the index: transaction ids and ``(signer, nonce)`` pairs."""

    tx_ids: set[str]
    nonces: set[tuple[str, int]]

    def holds(self, signed: SignedBusinessTx) -> bool:
        """Return whether ``signed``'s id or ``(signer, nonce)`` is among these keys."""
        return signed.tx_id in self.tx_ids or compute_nonce_key(signed) in self.nonces


def get_used_keys(session: Session, signed: Sequence[SignedBusinessTx]) -> UsedKeys:
    """Return the tx ids and (signer, nonce) pairs of ``signed`` already in the index (any
    origin's rows)."""
    if not signed:
        return UsedKeys(set(), set())
    if session.get_bind().dialect.name == "sqlite":
        return _get_used_keys_sqlite(session, signed)
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
    return UsedKeys({r.tx_id for r in found}, {(r.signer, int(r.nonce)) for r in found})


def _get_used_keys_sqlite(session: Session, signed: Sequence[SignedBusinessTx]) -> UsedKeys:
    """:func:`get_used_keys` in plain SQL on the session's own SQLite connection: the ORM
    statement's compilation and expanding ``IN`` parameters cost ~1 ms of Python per group
    commit, more than SQLite's lookups."""
    with sqlite_cursor(session) as cursor:
        return get_used_keys_sqlite(cursor, signed)


def get_used_keys_sqlite(cursor: sqlite3.Cursor, signed: Sequence[SignedBusinessTx]) -> UsedKeys:
    """:func:`get_used_keys` on the DBAPI ``cursor`` of a SQLite connection. Each key is one
    unique-index probe ((tx_id, origin) and (signer, nonce, origin) lead with the key); only
    the exact pairs are looked up."""
    if not signed:
        return UsedKeys(set(), set())
    found = cursor.execute(*used_keys_query(signed)).fetchall()
    return UsedKeys({tx_id for tx_id, _, _ in found}, {(sg, int(n)) for _, sg, n in found})


def used_keys_query(signed: Sequence[SignedBusinessTx]) -> tuple[str, list[object]]:
    """Return the SQLite query of :func:`get_used_keys_sqlite` for ``signed`` (not empty) and
    its parameters: it yields ``(tx_id, signer, nonce)`` of each row holding a key."""
    ids = sorted({s.tx_id for s in signed})
    pairs = sorted({compute_nonce_key(s) for s in signed})
    return _used_keys_sql(len(ids), len(pairs)), [*ids, *(v for pair in pairs for v in pair)]


@lru_cache(maxsize=256)
def _used_keys_sql(ids: int, pairs: int) -> str:
    """The SQL of :func:`get_used_keys_sqlite` for ``ids`` ids and ``pairs`` nonce keys."""
    keys = ", ".join(["(?, ?)"] * pairs)
    return (
        f"SELECT tx_id, signer, nonce FROM {_TABLE} WHERE tx_id IN ({', '.join('?' * ids)})"
        f" UNION ALL SELECT t.tx_id, t.signer, t.nonce FROM (VALUES {keys}) AS k"
        f" JOIN {_TABLE} AS t ON t.signer = k.column1 AND t.nonce = k.column2"
    )  # (a row-value ``IN (VALUES …)`` would scan the table)


def check_not_replayed(session: Session, signed: SignedBusinessTx) -> None:
    """Raise ``ReplayedTransaction`` if ``signed``'s id or (signer, nonce) is in the index."""
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
        raise compute_replay_error(signed)
