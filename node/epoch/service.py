"""The epoch service: each epoch, fix the seed, compute the assignment, attest its root.

A background thread polls the chain. When a new epoch has started (its boundary block is
mined) it

1. fixes the epoch's seed on-chain if no one did yet (``Registry.fix_seed``; anyone may);
2. reads the registry as it was at the boundary block (:func:`read_snapshot`) and computes
   the assignment under the documented policy (:func:`compute_epoch_plan`);
3. attests ``(epoch, seed, root)`` on-chain, once (the registry refuses another seed): it
   first reads its own attestation, so a restart never sends a second one;
   Epochs it missed (a step slowed by the chain's RPC, or a restart after an attestation
   it sent was lost) are attested late, up to ``BACKFILL_EPOCHS`` back, if it was part of
   them (:meth:`EpochService._backfill`);
4. keeps this node live: if its ``lastSeen`` on-chain is older than half the liveness window
   (an epoch without attestation, e.g. no assignment), it sends ``heartbeat()``
   (:func:`compute_heartbeat_due`); a node that attests every epoch never needs one;
5. publishes the result as :meth:`EpochService.current` (the router's input) and tells
   subscribers.

Disagreement is read from the chain: :meth:`EpochService.attestations` compares every
node's attested root with ours.

Reorgs. What the service read from blocks a reorg replaced is stale: the chain follower
reports the fork block (:meth:`EpochService.note_fork`, thread-safe), and the next step
forgets every computed epoch whose boundary, seed source or seed fixing is above it (their
seed may be unfixed or different now, their snapshot another) and every attestation of this
node not known to be at or below it, then computes those epochs again (fixing their seeds
again if needed) and attests each one whose attestation the chain lost. An attestation this
node sent is also read back once it is ``confirmations`` blocks deep, for a reorg too
shallow for the follower to see (:class:`Attester`).

Around this loop: ``view`` holds what an epoch looks like (:class:`EpochView`),
``attestation`` this node's attestations and heartbeats (:class:`Attester`), ``routing`` the
router's input (:class:`EpochAssignmentSource`) and ``summary`` the ``/health`` summary
(:func:`describe_epoch`). The names callers imported from here still are (and
``describe_epoch`` from ``node.epoch``).

Quiet chains. Epochs are counted in blocks, and the embedded chain only makes a block when
a transaction arrives, so an idle network would stay in one epoch for ever. With
``autoadvance`` (default on for the embedded chain, off for an external RPC chain, see
``Settings.epoch_autoadvance``), once an epoch has lasted ``epoch_seconds`` of wall time
without reaching its end, the service mines the empty blocks up to the next boundary
(``ChainBackend.mine``). On a shared external chain block production belongs to the
chain, so the service never mines there unless told to (a local anvil in tests).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Final

from node.chain.registry import Registry, RegistryRejected, SeedInfo
from node.epoch.attestation import STALE_VIEW_ERRORS, Attester
from node.epoch.policy import DEFAULT_REPLICAS, compute_epoch_plan
from node.epoch.routing import (
    FALLBACK_TTL_SECONDS,
    LOCAL_FALLBACK_ROOT,
    EpochAssignmentSource,
    compute_local_assignment,
)
from node.epoch.snapshot import Snapshot, read_snapshot
from node.epoch.view import Attestation, EpochUnavailable, EpochView
from node.errors import CollegiumError
from node.loops import BackgroundLoop

log = logging.getLogger(__name__)

POLL_SECONDS: Final = 1.0
"""How often the thread looks for a new epoch."""
DEFAULT_EPOCH_SECONDS: Final = 60.0
"""With autoadvance: wall-clock seconds after which a quiet epoch is ended by mining."""
VIEW_CACHE_SIZE: Final = 32
"""How many computed epochs are kept in memory (past epochs are recomputed on demand)."""
BACKFILL_EPOCHS: Final = 4
"""How many epochs back a node attests the epochs it missed since it started (a step slowed
by the RPC): each one is read once, and attested if it has no attestation of this node and
this node was in its snapshot."""
RETRY_FIRST_SECONDS: Final = 0.5
RETRY_MAX_SECONDS: Final = 30.0

SnapshotReader = Callable[[Registry, int], Snapshot]

__all__ = [
    "FALLBACK_TTL_SECONDS",
    "LOCAL_FALLBACK_ROOT",
    "Attestation",
    "EpochAssignmentSource",
    "EpochService",
    "EpochUnavailable",
    "EpochView",
    "compute_local_assignment",
]


class EpochService(BackgroundLoop):
    """Follow the epochs of one registry for the node whose account signs ``registry``.

    ``chain`` (a ``ChainBackend``) is needed only to mine with ``autoadvance``.
    ``snapshot_reader`` and ``clock`` are replaceable for tests. An attestation sent is read
    back once ``confirmations`` blocks deep (0: never; the embedded chain does not reorg).
    """

    thread_name = "epochs"

    def __init__(
        self,
        registry: Registry,
        chain: Any = None,
        *,
        autoadvance: bool = False,
        epoch_seconds: float = DEFAULT_EPOCH_SECONDS,
        poll_seconds: float = POLL_SECONDS,
        replicas: Mapping[str, int] = DEFAULT_REPLICAS,
        snapshot_reader: SnapshotReader = read_snapshot,
        clock: Callable[[], float] = time.monotonic,
        confirmations: int = 0,
    ) -> None:
        if autoadvance and chain is None:
            raise CollegiumError("autoadvance needs the chain backend to mine blocks")
        super().__init__()
        self.registry = registry
        self.chain = chain
        self.autoadvance = autoadvance
        self.epoch_seconds = epoch_seconds
        self.poll_seconds = poll_seconds
        self.replicas = dict(replicas)
        self.address = str(registry.account.address) if registry.account is not None else ""
        self._read_snapshot = snapshot_reader
        self._clock = clock
        self._lock = threading.RLock()
        self._views: OrderedDict[int, EpochView] = OrderedDict()
        self._current: EpochView | None = None
        self._attester = Attester(registry, self.address)
        self._seen_epoch: int | None = None
        self._seen_at = 0.0
        self._listeners: list[Callable[[EpochView], None]] = []
        self.last_error: str | None = None
        #: why the last step could not go on yet when that is normal (an epoch's seed fixed
        #: but not readable yet): shown apart from ``last_error``
        self.waiting: str | None = None
        self.seeds_fixed = 0
        self.blocks_mined = 0
        self.confirmations = confirmations
        self._fork_guard = threading.Lock()
        self._fork: int | None = None  # the lowest fork block reported since the last step
        self._reattest: set[int] = set()  # epochs whose attestation a reorg dropped
        self._backfilled: set[int] = set()  # past epochs already looked at for a backfill
        self._first_epoch: int | None = None  # the epoch of this service's first step
        self.reorgs_seen = 0

    # ------------------------------------------------------------------ lifecycle

    def subscribe(self, callback: Callable[[EpochView], None]) -> None:
        """Call ``callback(view)`` each time a new epoch becomes current (from the thread)."""
        self._listeners.append(callback)

    def _run(self) -> None:
        delay = RETRY_FIRST_SECONDS
        while not self._stop.is_set():
            try:
                self.tick()
            except EpochUnavailable as exc:  # a normal wait (e.g. its seed not readable yet)
                self.waiting = str(exc)
                log.debug("epoch step waits: %s", exc)
                self._stop.wait(RETRY_FIRST_SECONDS)
                continue
            except CollegiumError as exc:
                self.last_error = str(exc)
                log.warning("epoch step failed, retrying in %.1fs: %s", delay, exc)
                self._stop.wait(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
                continue
            except Exception as exc:  # never let the thread die silently
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("epoch step crashed, retrying in %.1fs", delay)
                self._stop.wait(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
                continue
            delay = RETRY_FIRST_SECONDS
            self._stop.wait(self.poll_seconds)

    # ------------------------------------------------------------------ one step

    def tick(self) -> EpochView:
        """Advance to the latest started epoch: fix its seed, compute, attest; return it.

        Raises ``CollegiumError`` (chain failures) for the thread to retry.
        """
        with self._lock:
            self._apply_fork()
            head = self._head()
            epoch = self.started_epoch(head)
            if self.autoadvance and self._advance_due(epoch):
                self._advance(epoch, head)
                head = self._head()
                epoch = self.started_epoch(head)
            view = self.view(epoch, fix_seed=True)
            self._attest_again(head, epoch)
            if epoch not in self._attester.attested:
                view = self._recheck_seed(view)
                self._attest(view)
            self._backfill(epoch)
            self._attester.keep_alive(view, head)
            changed = self._current is None or (self._current.epoch, self._current.root) != (
                epoch,
                view.root,
            )
            self._current = view
            self.last_error = self.waiting = None
        if changed:
            log.info(
                "epoch %d: root %s, %d slots here%s",
                epoch,
                view.root.hex() if view.root else "none",
                len(view.my_slots),
                f" ({view.plan.error})" if view.plan.error else "",
            )
            for callback in list(self._listeners):
                try:
                    callback(view)
                except Exception:  # a subscriber's bug must not stop the epochs
                    log.exception("epoch subscriber %r failed", callback)
        return view

    # ------------------------------------------------------------------ reorgs

    def note_fork(self, block: int) -> None:
        """Record that a reorg replaced the chain above block ``block`` (any thread; the
        next step forgets and redoes what was read above it)."""
        with self._fork_guard:
            self._fork = block if self._fork is None else min(self._fork, block)

    def _apply_fork(self) -> None:
        """Forget the epochs and attestations a reported fork made stale (the fork stays
        noted if the chain cannot be read now)."""
        with self._fork_guard:
            fork = self._fork
        if fork is None:
            return
        from_epoch = self.started_epoch(fork)
        stale = [
            e
            for e, v in self._views.items()
            if max(v.boundary_block, v.seed_info.source_block, v.seed_info.fixed_at) > fork
        ]
        for epoch in stale:
            del self._views[epoch]
        lost = self._attester.forget_above(fork, from_epoch)
        self._reattest.update(lost)
        self.reorgs_seen += 1
        with self._fork_guard:
            if self._fork == fork:
                self._fork = None
        log.warning(
            "reorg above block %d: %d computed epochs and the attestations of epochs %s "
            "forgotten; reading them from the chain again",
            fork,
            len(stale),
            lost,
        )

    def _backfill(self, current: int) -> None:
        """Attest the epochs of the last ``BACKFILL_EPOCHS`` this node was part of and has no
        attestation of on-chain: those since this service's first step (a slow step), and
        before it those after an epoch the node did attest (a restart: killed with an
        attestation in flight, or down for a few epochs; a node new to the window, or silent
        through all of it, starts afresh). Each epoch is looked at once; the contract takes an
        attestation of a past epoch."""
        if self._first_epoch is None:
            self._first_epoch = current
        if not self.address:
            return
        first = max(0, current - BACKFILL_EPOCHS)
        self._backfilled = {e for e in self._backfilled if e >= first}
        resumed = False  # an attestation of this node seen earlier in the window
        for epoch in range(first, current):
            if epoch in self._attester.attested:
                resumed = True
                continue
            if epoch in self._backfilled:
                continue
            if self.registry.attestation_of(epoch, self.address) is not None:
                resumed = True
            elif epoch >= self._first_epoch or resumed:
                view = self._recheck_seed(self.view(epoch, fix_seed=True))
                if view.snapshot.node(self.address) is not None:
                    log.info("epoch %d was missed: attesting it late", epoch)
                    self._attest(view)
                else:
                    log.info("epoch %d was missed, but this node was not live then", epoch)
            self._backfilled.add(epoch)

    def _recheck_seed(self, view: EpochView) -> EpochView:
        """Return ``view``, computed again if the chain's seed of its epoch is not the one it
        was computed with (a reorg the follower has not reported yet replaced the boundary
        block or the seed's fixing): a root is never attested from a stale seed. Every
        attestation goes through here: the current epoch's, one a reorg dropped (found by
        reading it back, maybe before the follower reported the fork) and a late one."""
        if self.registry.seed_info(view.epoch) == view.seed_info:
            return view
        log.warning("epoch %d: the seed changed on-chain (a reorg); computing again", view.epoch)
        self._views.pop(view.epoch, None)
        return self.view(view.epoch, fix_seed=True)

    def _attest(self, view: EpochView) -> None:
        """Attest ``view``; if the chain refuses it as computed from a stale seed (a reorg
        replaced the epoch's boundary after the view was computed, maybe while the
        transaction waited for its nonce), forget the view and attest the epoch again from
        the chain's next step (the current epoch is attested again by the step itself)."""
        try:
            self._attester.attest(view)
        except RegistryRejected as exc:
            if exc.error_name not in STALE_VIEW_ERRORS:
                raise
            log.warning(
                "epoch %d: the chain refused the attestation (%s: its seed is another one "
                "now, a reorg); computing the epoch again",
                view.epoch,
                exc.error_name,
            )
            self._views.pop(view.epoch, None)
            self._reattest.add(view.epoch)

    def _attest_again(self, head: int, current: int) -> None:
        """Attest the past epochs whose attestation a reorg dropped (once each, after
        reading the chain), and read back this node's attestations now deep enough."""
        if self.confirmations > 0:
            self._reattest.update(self._attester.due(head, self.confirmations))
        for epoch in sorted(self._reattest):
            self._reattest.discard(epoch)  # the current epoch is attested by the caller
            if epoch < current:  # (refused as stale again: back in the set for the next step)
                try:
                    self._attest(self._recheck_seed(self.view(epoch, fix_seed=True)))
                except (EpochUnavailable, RegistryRejected) as exc:  # e.g. seed out of reach
                    log.warning("epoch %d cannot be attested again: %s", epoch, exc)

    def current(self) -> EpochView | None:
        """Return the latest epoch this service has processed, or None before the first."""
        return self._current

    def assignment_source(self) -> EpochAssignmentSource:
        """Return the router's view of this service: ``current() -> (epoch, assignment)``."""
        return EpochAssignmentSource(self)

    def peers(self) -> dict[str, str]:
        """Return lowercase node address -> endpoint, from the current epoch's snapshot."""
        view = self._current
        if view is None:
            return {}
        return {n.address.lower(): n.endpoint for n in view.snapshot.nodes}

    def _head(self) -> int:
        try:
            return int(self.registry.w3.eth.block_number)
        except Exception as exc:
            raise CollegiumError(f"cannot read the block number: {exc}") from exc

    def started_epoch(self, head: int) -> int:
        """Return the latest epoch whose boundary block is at or below block ``head``."""
        epoch = self.registry.current_epoch()
        while epoch > 0 and self.registry.epoch_start_block(epoch) > head:
            epoch -= 1  # an eth_call may run in the next (pending) block's context
        return epoch

    def _advance_due(self, epoch: int) -> bool:
        now = self._clock()
        if epoch != self._seen_epoch:
            self._seen_epoch, self._seen_at = epoch, now
            return False
        return now - self._seen_at >= self.epoch_seconds

    def _advance(self, epoch: int, head: int) -> None:
        missing = self.registry.epoch_start_block(epoch + 1) - head
        if missing > 0:
            log.info(
                "epoch %d quiet for %.0fs: mining %d blocks", epoch, self.epoch_seconds, missing
            )
            self.chain.mine(missing)
            self.blocks_mined += missing

    # ------------------------------------------------------------------ seeds and views

    def _seed_info(self, epoch: int, fix_seed: bool) -> SeedInfo:
        info = self.registry.seed_info(epoch)
        if info is None and fix_seed:
            try:
                self.registry.fix_seed(epoch)
                self.seeds_fixed += 1
            except RegistryRejected as exc:
                if exc.error_name != "SeedAlreadyFixed":  # another node was first: fine
                    raise
            info = self.registry.seed_info(epoch)
        if info is None:
            raise EpochUnavailable(f"the seed of epoch {epoch} is not fixed yet")
        return info

    def _snapshot_block(self, epoch: int, boundary: int) -> int:
        """Return the block whose registry state is the input of ``epoch``: its boundary, but
        for epoch 0 the block where its first node registered (if within epoch 0), so that
        the deploying node is assigned from the start (docs/assignment.md, "Snapshot")."""
        if epoch != 0:
            return boundary
        end = self.registry.epoch_start_block(1)
        first = min(
            (n.registered_at for n in self.registry.nodes() if n.registered_at >= boundary),
            default=None,
        )
        return first if first is not None and first < end else boundary

    def cached_view(self, epoch: int) -> EpochView | None:
        """Return epoch ``epoch`` if it is already computed, else None (no lock, no chain)."""
        return self._views.get(epoch)

    def view(self, epoch: int, *, fix_seed: bool = False) -> EpochView:
        """Return epoch ``epoch`` (computed once, then cached; the oldest computed is dropped).

        Raises ``EpochUnavailable`` if it has not started or its seed is not fixed (and
        ``fix_seed`` is false).
        """
        cached = self._views.get(epoch)  # a hit needs no lock: /health must not wait for a
        if cached is not None:  # step that holds it while its transactions are mined
            return cached
        with self._lock:
            cached = self._views.get(epoch)
            if cached is not None:
                return cached
            head = self._head()
            if epoch > self.started_epoch(head):
                raise EpochUnavailable(f"epoch {epoch} has not started (latest block {head})")
            info = self._seed_info(epoch, fix_seed)
            boundary = self.registry.epoch_start_block(epoch)
            snapshot = self._read_snapshot(self.registry, self._snapshot_block(epoch, boundary))
            plan = compute_epoch_plan(bytes(info.seed), epoch, snapshot, self.replicas)
            view = EpochView(epoch, boundary, info, snapshot, plan, self.address)
            self._views[epoch] = view
            while len(self._views) > VIEW_CACHE_SIZE:
                self._views.popitem(last=False)
            return view

    # ------------------------------------------------------------------ attestations

    @property
    def attestations_sent(self) -> int:
        """Return how many attestations this service sent."""
        return self._attester.attestations_sent

    @property
    def heartbeats_sent(self) -> int:
        """Return how many heartbeats this service sent."""
        return self._attester.heartbeats_sent

    def last_seen(self) -> int | None:
        """Return this node's ``lastSeen`` block as last read or set, or None if unknown."""
        return self._attester.seen

    def attested_root(self, epoch: int) -> bytes | None:
        """Return the root this node has on-chain for ``epoch``, or None."""
        return self._attester.attested_root(epoch)

    def attestations(self, epoch: int) -> list[Attestation]:
        """Return every node's attestation of ``epoch`` next to our root, sorted by node.

        The nodes asked are those of the epoch's snapshot and those active now.
        """
        view = self.view(epoch)
        addresses = {n.address for n in view.snapshot.nodes}
        addresses.update(n.address for n in self.registry.nodes())
        result = []
        for address in sorted(addresses, key=str.lower):
            root = self.registry.attestation_of(epoch, address)
            matches = None
            if root is not None and view.root is not None:
                matches = bytes(root) == view.root
            result.append(Attestation(str(address), None if root is None else bytes(root), matches))
        return result

    def divergence(self, epoch: int | None = None) -> list[Attestation]:
        """Return the attestations of ``epoch`` (default: current) whose root differs from ours."""
        if epoch is None:
            current = self.current()
            if current is None:
                return []
            epoch = current.epoch
        return [a for a in self.attestations(epoch) if a.matches is False]
