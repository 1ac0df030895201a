"""The epoch service: each epoch, fix the seed, compute the assignment, attest its root.

A background thread polls the chain. When a new epoch has started (its boundary block is
mined) it

1. fixes the epoch's seed on-chain if no one did yet (``Registry.fix_seed``; anyone may);
2. reads the registry as it was at the boundary block (:func:`read_snapshot`) and computes
   the assignment under the documented policy (:func:`compute_epoch_plan`);
3. attests ``(epoch, root)`` on-chain, once: it first reads its own attestation, so a
   restart never sends a second one;
4. keeps this node live: if its ``lastSeen`` on-chain is older than half the liveness window
   (an epoch without attestation, e.g. no assignment), it sends ``heartbeat()``
   (:func:`compute_heartbeat_due`); a node that attests every epoch never needs one;
5. publishes the result as :meth:`EpochService.current` (the router's input) and tells
   subscribers.

Disagreement is read from the chain: :meth:`EpochService.attestations` compares every
node's attested root with ours.

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
from node.epoch.attestation import Attester
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
    ``snapshot_reader`` and ``clock`` are replaceable for tests.
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
        self.seeds_fixed = 0
        self.blocks_mined = 0

    # ------------------------------------------------------------------ lifecycle

    def subscribe(self, callback: Callable[[EpochView], None]) -> None:
        """Call ``callback(view)`` each time a new epoch becomes current (from the thread)."""
        self._listeners.append(callback)

    def _run(self) -> None:
        delay = RETRY_FIRST_SECONDS
        while not self._stop.is_set():
            try:
                self.tick()
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
            head = self._head()
            epoch = self.started_epoch(head)
            if self.autoadvance and self._advance_due(epoch):
                self._advance(epoch, head)
                head = self._head()
                epoch = self.started_epoch(head)
            view = self.view(epoch, fix_seed=True)
            if epoch not in self._attester.attested:
                self._attester.attest(view)
            self._attester.keep_alive(view, head)
            changed = self._current is None or self._current.epoch != epoch
            self._current = view
            self.last_error = None
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
        """Return epoch ``epoch`` (computed once, then cached).

        Raises ``EpochUnavailable`` if it has not started or its seed is not fixed (and
        ``fix_seed`` is false).
        """
        with self._lock:
            cached = self._views.get(epoch)
            if cached is not None:
                self._views.move_to_end(epoch)
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
