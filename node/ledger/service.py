"""The ledger service: accept signed business transactions, keep them, anchor them.

The order of writes is what makes "nothing half-written, nothing acknowledged lost" hold:

1. every check runs first (format, size, signature, subsystem, replay) — a rejected
   request writes nothing anywhere;
2. the leaf is committed to SQL (``status = pending``; SQLite ``synchronous=FULL``);
3. the leaf body is added to the content store (content-addressed, idempotent);
4. the leaf is anchored on-chain and the row becomes ``anchored``.

A crash after 2 leaves a pending row that :meth:`LedgerService.recover` finishes at the
next start (it first looks on-chain for anchors it already sent, so nothing is anchored
twice). Anchoring is per transaction for now (``tree_size`` = the leaf's position in
the log, ``count`` = 1, ``root`` = the leaf hash); Merkle batches replace this step.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from node.db.models import Anchor, BusinessTransaction, TransactionParty, TransactionStatus
from node.errors import CollegiumError, ValidationError
from node.ledger.hasher import hash_leaf
from node.ledger.transaction import BusinessTx, Domain, SignedBusinessTx, verify_signed_tx

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


class UnknownSubsystem(ValidationError):
    """The transaction names a subsystem the registry does not know."""


class SignerMismatch(ValidationError):
    """The signature recovers to another address than the one the client claimed."""


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


class AnchorRegistry(Protocol):
    """What the ledger needs from the registry contract."""

    def subsystem_exists(self, name: str) -> bool:
        """Return whether ``name`` is a registered subsystem."""
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
class Page:
    """A page of transactions, newest first, with the cursor of the next page."""

    items: list[BusinessTransaction]
    next_cursor: int | None


def _hex(data: bytes) -> str:
    return "0x" + bytes(data).hex()


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
    ) -> None:
        self._sessions = session_factory
        self._store = store
        self._registry = registry
        self.domain = domain
        self._node_address = node_address
        self._anchor_lock = threading.Lock()

    # -- writes ---------------------------------------------------------------------------

    def check(
        self, tx: BusinessTx, signature: bytes, claimed_signer: str | None
    ) -> SignedBusinessTx:
        """Return the verified transaction or raise a ``ValidationError`` subclass.

        Writes nothing. Checks format and sizes, the signature, the claimed signer,
        that the subsystem exists and that the signer's nonce is unused.
        """
        signed = verify_signed_tx(self.domain, tx, signature)
        if claimed_signer is not None and claimed_signer.lower() != signed.signer.lower():
            raise SignerMismatch(
                f"signature recovers to {signed.signer}, not the claimed signer {claimed_signer}"
            )
        if not self._registry.subsystem_exists(tx.subsystem):
            raise UnknownSubsystem(f"unknown subsystem {tx.subsystem!r}")
        with self._sessions() as session:
            self._check_replay(session, signed)
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
        body = signed.encode()
        cid = self._store.add_bytes(body, only_hash=True)
        row = BusinessTransaction(
            tx_id=signed.tx_id,
            signer=signed.signer,
            nonce=tx.nonce,
            subsystem=tx.subsystem,
            kind=tx.kind,
            amount=tx.amount,
            currency=tx.currency,
            memo=tx.memo,
            payload=tx.payload,
            timestamp=tx.timestamp,
            signature=_hex(signature),
            body=body,
            leaf_hash=_hex(hash_leaf(body)),
            cid=cid,
            status=TransactionStatus.PENDING,
            received_at=datetime.now(UTC),
            parties=[TransactionParty(position=i, address=p) for i, p in enumerate(tx.parties)],
        )
        with self._sessions() as session:
            session.add(row)
            try:
                session.commit()
            except IntegrityError as exc:  # a concurrent submit won the race for this nonce
                session.rollback()
                raise ReplayedTransaction(
                    f"nonce {tx.nonce} of {signed.signer} was already used (replay)"
                ) from exc
        try:
            self._publish_and_anchor(row.seq)
        except CollegiumError as exc:
            log.warning("transaction %s kept pending: %s", row.tx_id, exc)
        return self.get(row.tx_id) or row

    def _publish_and_anchor(self, seq: int) -> None:
        """Store the body of leaf ``seq`` and anchor it, unless that was already done."""
        with self._anchor_lock, self._sessions() as session:
            row = session.get(BusinessTransaction, seq)
            if row is None or row.status != TransactionStatus.PENDING:
                return
            cid = self._store.add_bytes(row.body)
            if cid != row.cid:
                raise CollegiumError(f"store returned CID {cid}, expected {row.cid}")
            receipt = self._registry.anchor(
                row.subsystem, bytes.fromhex(row.leaf_hash[2:]), row.seq, 1, row.cid
            )
            session.add(
                Anchor(
                    index=int(receipt.index),
                    root=row.leaf_hash,
                    tree_size=row.seq,
                    count=1,
                    batch_cid=row.cid,
                    subsystem=row.subsystem,
                    node=self._node_address,
                    block_number=int(receipt.block_number),
                    chain_tx_hash=_hex(bytes(receipt.tx_hash))
                    if not isinstance(receipt.tx_hash, str)
                    else receipt.tx_hash,
                )
            )
            row.anchor_index = int(receipt.index)
            row.status = TransactionStatus.ANCHORED
            session.commit()

    def recover(self) -> int:
        """Finish every pending leaf (after a crash); return how many were anchored now.

        Anchors already on-chain for a pending leaf (sent just before a crash) are
        adopted, not sent again.
        """
        self._adopt_chain_anchors()
        with self._sessions() as session:
            pending = session.scalars(
                select(BusinessTransaction.seq)
                .where(BusinessTransaction.status == TransactionStatus.PENDING)
                .order_by(BusinessTransaction.seq)
            ).all()
        for seq in pending:
            self._publish_and_anchor(seq)
        return len(pending)

    def _adopt_chain_anchors(self) -> None:
        with self._anchor_lock, self._sessions() as session:
            known = session.scalar(select(Anchor.index).order_by(Anchor.index.desc()).limit(1))
            start = 0 if known is None else known + 1
            for index in range(start, self._registry.anchor_count()):
                onchain = self._registry.get_anchor(index)
                root = _hex(bytes(onchain.root))
                row = session.scalar(
                    select(BusinessTransaction).where(
                        BusinessTransaction.leaf_hash == root,
                        BusinessTransaction.status == TransactionStatus.PENDING,
                    )
                )
                if row is None or str(onchain.node).lower() != self._node_address.lower():
                    continue
                session.add(
                    Anchor(
                        index=index,
                        root=root,
                        tree_size=int(onchain.tree_size),
                        count=int(onchain.count),
                        batch_cid=str(onchain.batch_cid),
                        subsystem=str(onchain.subsystem),
                        node=str(onchain.node),
                        block_number=int(onchain.block_number),
                        chain_tx_hash="",
                    )
                )
                row.anchor_index = index
                row.status = TransactionStatus.ANCHORED
            session.commit()

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
            )

    def list(
        self,
        *,
        subsystem: str | None = None,
        kind: str | None = None,
        signer: str | None = None,
        party: str | None = None,
        before: int | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
    ) -> Page:
        """Return a page of transactions matching the filters, newest first."""
        limit = max(1, min(limit, MAX_PAGE_SIZE))
        query = select(BusinessTransaction).options(
            selectinload(BusinessTransaction.parties), selectinload(BusinessTransaction.anchor)
        )
        if subsystem is not None:
            query = query.where(BusinessTransaction.subsystem == subsystem)
        if kind is not None:
            query = query.where(BusinessTransaction.kind == kind)
        if signer is not None:
            query = query.where(BusinessTransaction.signer == signer)
        if party is not None:
            query = query.where(
                BusinessTransaction.seq.in_(
                    select(TransactionParty.tx_seq).where(TransactionParty.address == party)
                )
            )
        if before is not None:
            query = query.where(BusinessTransaction.seq < before)
        query = query.order_by(BusinessTransaction.seq.desc()).limit(limit + 1)
        with self._sessions() as session:
            rows: Sequence[BusinessTransaction] = session.scalars(query).all()
        items = list(rows[:limit])
        next_cursor = items[-1].seq if len(rows) > limit else None
        return Page(items, next_cursor)

    def count(self) -> dict[str, int]:
        """Return the number of transactions per status."""
        from sqlalchemy import func

        with self._sessions() as session:
            rows = session.execute(
                select(BusinessTransaction.status, func.count()).group_by(
                    BusinessTransaction.status
                )
            ).all()
        return {str(status): int(n) for status, n in rows}
