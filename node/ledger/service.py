"""The ledger service: accept signed business transactions, keep them, anchor them.

:class:`LedgerService` is the one object the API, the CLI and the runtime hold; it wires the
modules that do the work, one job each:

* ``intake.py`` — checks (``checks.py``), then the SQL commit of pending leaves (single,
  group-committed or batched), then the bodies to the content store;
* ``anchoring.py`` — pending leaves integrated into this node's log, the tree head anchored
  on-chain; ``recovery.py`` adopts anchors a crash left unrecorded, ``reorg.py`` undoes the
  ones a reorg dropped;
* ``proofs.py`` — inclusion and consistency proofs;
* ``queries.py`` — reads: one transaction, pages, exports, counts, anchors;
* ``signals.py`` — how intake, the anchorer thread and waiting requests wake each other.

The order of writes (all checks, then SQL, then content store, then anchor) is what makes
"nothing half-written, nothing acknowledged lost" hold: see ``intake.py`` and
``anchoring.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence

from sqlalchemy.orm import Session, sessionmaker

from node.db.models import Anchor, BusinessTransaction
from node.errors import ValidationError
from node.groupcommit import GROUP_MAX_ITEMS
from node.ledger import proofs, queries
from node.ledger.anchoring import DEFAULT_BATCH_MAX, SYSTEM_LOG, OnAnchored, Sequencer
from node.ledger.batch import compute_micros
from node.ledger.bodywriter import WAIT_SECONDS as BODY_WAIT_SECONDS
from node.ledger.checks import (
    DEFAULT_MAX_FUTURE_SECONDS,
    AdmissionPolicy,
    FutureTimestamp,
    NotAParticipant,
    ReplayedTransaction,
    SignerMismatch,
    UnknownSubsystem,
)
from node.ledger.intake import MAX_SUBMIT_BATCH, AcceptedTx, Intake, Outcome, Submission
from node.ledger.participants import ParticipantCache
from node.ledger.proofs import TREE_CATCH_UP_LAG, InclusionBundle
from node.ledger.protocols import AnchorRegistry, ContentStore
from node.ledger.queries import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page, TxFilter
from node.ledger.rows import OWN_LOG, new_row, row_values
from node.ledger.signals import LedgerSignals
from node.ledger.transaction import BusinessTx, Domain, SignedBusinessTx
from node.ledger.verifier import VerifiedTx, VerifierPool, compute_leaf_cid

# the names callers import from here (their homes are the modules above)
__all__ = [
    "DEFAULT_BATCH_MAX",
    "DEFAULT_MAX_FUTURE_SECONDS",
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "MAX_SUBMIT_BATCH",
    "OWN_LOG",
    "SYSTEM_LOG",
    "TREE_CATCH_UP_LAG",
    "AcceptedTx",
    "AnchorRegistry",
    "ContentStore",
    "FutureTimestamp",
    "InclusionBundle",
    "LedgerService",
    "NotAParticipant",
    "Page",
    "ReplayedTransaction",
    "SignerMismatch",
    "Submission",
    "TxFilter",
    "UnknownSubsystem",
    "compute_leaf_cid",
    "compute_micros",
    "new_row",
    "row_values",
]


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
        chain_reorgs: bool = True,
        separate_writer: bool = True,
    ) -> None:
        self._sessions = session_factory
        self._node_address = node_address
        # one writer of this process at a time: SQLite takes one anyway, and a writer that
        # finds the database locked sleeps in SQLite's busy handler (1, 2, 5 … 100 ms steps)
        # well past the moment the lock is free; a lock here hands over at once
        self._write_lock = threading.Lock()
        self._signals = LedgerSignals()
        self.changed = self._signals.changed  # notified on every new leaf and every anchor
        self.leaf_added = self._signals.leaf_added  # set by intake, cleared by the anchorer
        policy = AdmissionPolicy(
            participants or ParticipantCache(registry), require_participant, max_future_seconds
        )
        self._accept = Intake(
            sessions=session_factory,
            store=store,
            domain=domain,
            policy=policy,
            signals=self._signals,
            write_lock=self._write_lock,
            verifier=verifier,
            group_max=group_max,
            separate_writer=separate_writer,
        )
        self._intake = self._accept.group  # single submissions are committed in groups
        self._sequencer = Sequencer(
            sessions=session_factory,
            store=store,
            registry=registry,
            node_address=node_address,
            signals=self._signals,
            write_lock=self._write_lock,
            batch_max=batch_max,
            chain_reorgs=chain_reorgs,
        )

    # -- settings of the parts ----------------------------------------------------------------

    @property
    def node_address(self) -> str:
        """Return the address of the node whose log this service keeps."""
        return self._node_address

    @property
    def domain(self) -> Domain:
        """Return the EIP-712 domain transactions are signed for."""
        return self._accept.domain

    @property
    def verifier(self) -> VerifierPool | None:
        """Return the worker pool that checks large batch requests, if any."""
        return self._accept.verifier

    @property
    def participants(self) -> ParticipantCache:
        """Return the cache of subsystems and participants the checks consult."""
        return self._accept.policy.participants

    @participants.setter
    def participants(self, cache: ParticipantCache) -> None:
        self._accept.policy.participants = cache

    @property
    def require_participant(self) -> bool:
        """Return whether a signer must participate in the transaction's subsystem."""
        return self._accept.policy.require_participant

    @property
    def max_future_seconds(self) -> float:
        """Return how far past this node's clock a signed timestamp may lie."""
        return self._accept.policy.max_future_seconds

    @property
    def batch_max(self) -> int:
        """Return the most leaves one anchor adds."""
        return self._sequencer.batch_max

    @property
    def on_anchored(self) -> OnAnchored | None:
        """Return what is called after each own anchor with (batch CID, leaf CIDs, their
        payload CIDs), all in the local store and pinned."""
        return self._sequencer.on_anchored

    @on_anchored.setter
    def on_anchored(self, callback: OnAnchored | None) -> None:
        self._sequencer.on_anchored = callback

    @property
    def anchor_generation(self) -> int:
        """Return how many anchors this service made."""
        return self._signals.anchor_generation

    # -- writes -------------------------------------------------------------------------------

    def check(
        self, tx: BusinessTx, signature: bytes, claimed_signer: str | None
    ) -> SignedBusinessTx:
        """Return the verified transaction or raise a ``ValidationError`` subclass (writes
        nothing): :meth:`node.ledger.intake.Intake.check`."""
        return self._accept.check(tx, signature, claimed_signer)

    def submit(
        self, tx: BusinessTx, signature: bytes, claimed_signer: str | None = None
    ) -> BusinessTransaction:
        """Accept one signed transaction; return its row: :meth:`Intake.submit`."""
        return self._accept.submit(tx, signature, claimed_signer)

    def submit_one(self, item: Submission) -> AcceptedTx:
        """Accept one signed transaction by group commit: :meth:`Intake.submit_one`."""
        return self._accept.submit_one(item)

    def admit_cached(
        self, item: Submission, checked: VerifiedTx | ValidationError
    ) -> VerifiedTx | None:
        """Return ``item`` (its signature check ``checked``) admitted from cached answers
        only, or None: :meth:`Intake.admit_cached`."""
        return self._accept.admit_cached(item, checked)

    def submit_later(
        self,
        item: Submission,
        verified: VerifiedTx,
        done: Callable[[AcceptedTx | None, BaseException | None], None],
    ) -> None:
        """Group-commit a verified item without blocking: :meth:`Intake.submit_later`."""
        self._accept.submit_later(item, verified, done)

    def wait_body_stored(self, cid: str, timeout: float = BODY_WAIT_SECONDS) -> bool:
        """Return once a just-accepted body ``cid`` is in the content store (False if still
        pending after ``timeout``): :meth:`Intake.wait_body_stored`."""
        return self._accept.wait_body_stored(cid, timeout)

    def flush_bodies(self, timeout: float | None = None) -> bool:
        """Return once every just-accepted body is stored: :meth:`Intake.flush_bodies`."""
        return self._accept.flush_bodies(timeout)

    def close_writer(self) -> None:
        """End the SQLite writer process of group commits, if any: :meth:`Intake.close`."""
        self._accept.close()

    def verify_one(self, item: Submission) -> VerifiedTx:
        """Return ``item`` verified, writing nothing: :meth:`Intake.verify_one`."""
        return self._accept.verify_one(item)

    def submit_many(self, items: Sequence[Submission]) -> list[Outcome]:
        """Accept a batch of signed transactions: :meth:`Intake.submit_many`."""
        return self._accept.submit_many(items)

    def submit_checked(
        self, items: Sequence[tuple[Submission, VerifiedTx | ValidationError]]
    ) -> list[Outcome]:
        """Accept a batch whose signatures are recovered: :meth:`Intake.submit_checked`."""
        return self._accept.submit_checked(items)

    def wait_anchored(self, tx_id: str, timeout: float) -> BusinessTransaction | None:
        """Return the row of ``tx_id`` once anchored, or as it is after ``timeout`` s."""
        return self._signals.wait_anchored(self.get, tx_id, timeout)

    def pending_count(self) -> int:
        """Return how many accepted leaves wait for an anchor."""
        return queries.count_pending(self._sessions)

    # -- the log ------------------------------------------------------------------------------

    def tree_size(self) -> int:
        """Return the size of this node's anchored log (one index lookup)."""
        return queries.get_own_log_size(self._sessions)

    def anchor_pending(self) -> Anchor | None:
        """Anchor one batch of pending leaves: :meth:`Sequencer.anchor_pending`."""
        return self._sequencer.anchor_pending()

    def recover(self, from_block: int = 0) -> int:
        """Adopt this node's anchors a crash left unrecorded: :meth:`Sequencer.recover`."""
        return self._sequencer.recover(from_block)

    def rollback_own_anchors_above(self, block_number: int) -> int:
        """Undo this node's anchors a reorg dropped: :meth:`Sequencer.roll_back_above`."""
        return self._sequencer.roll_back_above(block_number)

    # -- proofs -------------------------------------------------------------------------------

    def inclusion(self, tx_id: str) -> InclusionBundle | None:
        """Return the inclusion proof of ``tx_id`` in the tree head of its anchor, or None
        if the transaction is unknown or not yet anchored (O(log n) reads, any node's log)."""
        return proofs.get_inclusion_bundle(self._sessions, self.get(tx_id))

    def consistency(self, size1: int, size2: int) -> list[str]:
        """Return the consistency proof between two anchored sizes of this node's log.

        Raises ``ValidationError`` unless 0 < size1 <= size2 <= anchored size.
        """
        return proofs.get_consistency_proof(self._sessions, size1, size2)

    # -- reads --------------------------------------------------------------------------------

    def anchors(self, *, before: int | None = None, limit: int = DEFAULT_PAGE_SIZE) -> list[Anchor]:
        """Return the indexed anchors, newest first."""
        return queries.list_anchors(self._sessions, before=before, limit=limit)

    def count(self) -> dict[str, int]:
        """Return the number of transactions per status (statuses with none left out)."""
        return queries.count_by_status(self._sessions, self._node_address)

    def get(self, tx_id: str) -> BusinessTransaction | None:
        """Return the transaction with id ``tx_id`` (0x-hex EIP-712 digest), or None."""
        return queries.get_transaction(self._sessions, tx_id)

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
        return queries.read_page(self._sessions, where, before=before, limit=limit)

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
        """Yield the pages of every transaction matching ``where``, newest first, each read
        by :meth:`page`: ``first`` rows (if given), then twice as many each time up to
        ``chunk`` (:func:`node.ledger.queries.iter_pages`)."""
        return queries.iter_pages(
            lambda before, size: self.page(where, before=before, limit=size),
            chunk=chunk,
            first=first,
        )
