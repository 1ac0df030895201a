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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from node.assignment import Assignment, Slot
from node.assignment.compute import compute_slot_keys
from node.chain.registry import Registry, RegistryRejected, SeedInfo
from node.epoch.policy import (
    DEFAULT_REPLICAS,
    EpochPlan,
    compute_epoch_plan,
    compute_heartbeat_due,
)
from node.epoch.snapshot import Snapshot, read_snapshot
from node.errors import CollegiumError

log = logging.getLogger(__name__)

POLL_SECONDS: Final = 1.0
"""How often the thread looks for a new epoch."""
DEFAULT_EPOCH_SECONDS: Final = 60.0
"""With autoadvance: wall-clock seconds after which a quiet epoch is ended by mining."""
FALLBACK_TTL_SECONDS: Final = 1.0
"""Before the first epoch is processed, how long the router's local fallback table is reused."""
VIEW_CACHE_SIZE: Final = 32
"""How many computed epochs are kept in memory (past epochs are recomputed on demand)."""
LOCAL_FALLBACK_ROOT: Final = bytes(32)
"""Root of :func:`compute_local_assignment`'s routing table: zero, never attested."""
RETRY_FIRST_SECONDS: Final = 0.5
RETRY_MAX_SECONDS: Final = 30.0

SnapshotReader = Callable[[Registry, int], Snapshot]


class EpochUnavailable(CollegiumError):
    """The epoch has not started, or its seed is not fixed yet."""


@dataclass(frozen=True)
class Attestation:
    """A node's attested root for an epoch; ``matches`` compares it with ours (None: n/a)."""

    node: str
    root: bytes | None
    matches: bool | None


@dataclass(frozen=True)
class EpochView:
    """One epoch as this node sees it: seed, snapshot, plan and this node's slots."""

    epoch: int
    boundary_block: int
    seed_info: SeedInfo
    snapshot: Snapshot
    plan: EpochPlan
    node: str

    @property
    def seed(self) -> bytes:
        """Return the epoch's seed."""
        return bytes(self.seed_info.seed)

    @property
    def assignment(self) -> Assignment | None:
        """Return the assignment, or None when the policy could not make one."""
        return self.plan.assignment

    @property
    def root(self) -> bytes | None:
        """Return the assignment root, or None."""
        return self.plan.root

    @property
    def my_slots(self) -> tuple[Slot, ...]:
        """Return the slots this node hosts this epoch (any rank)."""
        if self.assignment is None:
            return ()
        me = self.node.lower()
        return tuple(s for s in self.assignment.slots if me in s.hosts)

    def rank_of(self, slot: Slot) -> int | None:
        """Return this node's rank (0 = primary) among ``slot``'s hosts, or None."""
        me = self.node.lower()
        return slot.hosts.index(me) if me in slot.hosts else None


class EpochService:
    """Follow the epochs of one registry for the node whose account signs ``registry``.

    ``chain`` (a ``ChainBackend``) is needed only to mine with ``autoadvance``.
    ``snapshot_reader`` and ``clock`` are replaceable for tests.
    """

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
        self._attested: dict[int, bytes] = {}
        self._last_seen: int | None = None  # our lastSeen on-chain, as last read or set
        self._seen_epoch: int | None = None
        self._seen_at = 0.0
        self._listeners: list[Callable[[EpochView], None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        self.attestations_sent = 0
        self.heartbeats_sent = 0
        self.seeds_fixed = 0
        self.blocks_mined = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the background thread (idempotent)."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="epochs", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the thread after its current step and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

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
            if epoch not in self._attested:
                self._attest(view)
            self._keep_alive(view, head)
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

    def _attest(self, view: EpochView) -> None:
        """Attest ``view``'s root once; remember what is on-chain for this node."""
        if not self.address or view.root is None:
            return
        if not self.registry.is_node(self.address):
            return  # only registered nodes attest; it may register later
        existing: bytes | None = self.registry.attestation_of(view.epoch, self.address)
        if existing is None:
            try:
                sent = self.registry.attest(view.epoch, view.root)
                self.attestations_sent += 1
                self._last_seen = sent.block_number
                existing = view.root
            except RegistryRejected as exc:
                if exc.error_name != "AlreadyAttested":
                    raise
                existing = self.registry.attestation_of(view.epoch, self.address)
        if existing is not None:
            self._attested[view.epoch] = bytes(existing)
            if bytes(existing) != view.root:
                log.error(
                    "epoch %d: this node attested %s earlier but now computes %s",
                    view.epoch,
                    bytes(existing).hex(),
                    view.root.hex(),
                )

    def _keep_alive(self, view: EpochView, head: int) -> None:
        """Send ``heartbeat()`` if this node's ``lastSeen`` is older than half the window."""
        if not self.address:
            return
        window = view.snapshot.liveness_window or self.registry.liveness_window(head)
        if self._last_seen is not None and not compute_heartbeat_due(head, self._last_seen, window):
            return  # seen recently (our own attestation or heartbeat): no chain read
        if not self.registry.is_node(self.address):
            self._last_seen = None
            return  # only registered nodes have a lastSeen; it may register later
        self._last_seen = self.registry.last_seen(self.address)
        if not compute_heartbeat_due(head, self._last_seen, window):
            return
        age = head - self._last_seen
        try:
            sent = self.registry.heartbeat()
        except RegistryRejected as exc:
            if exc.error_name != "NotRegisteredNode":  # it left meanwhile: nothing to keep
                raise
            self._last_seen = None
            return
        self.heartbeats_sent += 1
        self._last_seen = sent.block_number
        log.info(
            "heartbeat at block %d (last seen %d blocks before block %d, window %d)",
            sent.block_number,
            age,
            head,
            window,
        )

    def last_seen(self) -> int | None:
        """Return this node's ``lastSeen`` block as last read or set, or None if unknown."""
        return self._last_seen

    def attested_root(self, epoch: int) -> bytes | None:
        """Return the root this node has on-chain for ``epoch``, or None."""
        if epoch in self._attested:
            return self._attested[epoch]
        if not self.address:
            return None
        root = self.registry.attestation_of(epoch, self.address)
        return None if root is None else bytes(root)

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


def compute_local_assignment(
    epoch: int, seed: bytes, subsystems: Sequence[str], me: str
) -> Assignment:
    """Return the routing table of a node left without an assignment: every slot is its own.

    Used only for routing (never attested; its root is zero) when the epoch has no
    assignment, i.e. before the first epoch is processed or when the policy failed: the node
    then serves what it is asked, as a lone node does, instead of refusing everything.
    """
    names = sorted(set(subsystems), key=lambda name: name.encode("utf-8"))
    slots = tuple(Slot(role, sub, (me.lower(),)) for role, sub in compute_slot_keys(names))
    return Assignment(epoch=epoch, seed=bytes(seed), slots=slots, root=LOCAL_FALLBACK_ROOT)


class EpochAssignmentSource:
    """The router's ``AssignmentSource`` over an :class:`EpochService`."""

    def __init__(self, service: EpochService, clock: Callable[[], float] = time.monotonic) -> None:
        self.service = service
        self.clock = clock
        self._fallback: tuple[float, int, Assignment] | None = None

    def cached(self, epoch: int) -> Assignment | None:
        """Return the assignment of ``epoch`` if this node has already computed it, or None."""
        view = self.service.cached_view(epoch)
        return None if view is None else view.assignment

    def current(self) -> tuple[int, Assignment]:
        """Return (epoch, assignment) in force now.

        Without an assignment (before the first epoch, or the policy failed: the reason is
        in ``/health``) it returns :func:`compute_local_assignment`'s table.
        """
        view = self.service.current()
        if view is not None and view.assignment is not None:
            return view.epoch, view.assignment
        if view is not None:
            fallback = compute_local_assignment(
                view.epoch, view.seed, view.snapshot.subsystems, self.service.address
            )
            return view.epoch, fallback
        # no epoch processed yet (starting, or the chain is failing): the fallback costs two
        # registry reads, so it is computed at most once per FALLBACK_TTL_SECONDS, not per request
        now = self.clock()
        if self._fallback is not None and now - self._fallback[0] < FALLBACK_TTL_SECONDS:
            return self._fallback[1], self._fallback[2]
        registry = self.service.registry
        epoch = registry.current_epoch()
        fallback = compute_local_assignment(
            epoch, bytes(32), registry.subsystems(), self.service.address
        )
        self._fallback = (now, epoch, fallback)
        return epoch, fallback


def _hex(value: bytes | None) -> str | None:
    return None if value is None else "0x" + bytes(value).hex()


def describe_epoch(service: EpochService | None) -> dict[str, Any]:
    """Return the current epoch's summary for ``/health`` and ``collegium status``.

    Keys: ``epoch``, ``seed``, ``root``, ``attested``, ``my_slots``, ``agree``/``disagree``
    (node addresses whose attested root matches/differs), ``missing`` (not attested yet),
    ``unserved``, ``adjustments``, ``error`` (why there is no assignment), ``last_error``;
    liveness: ``left_out`` (active nodes not live at the boundary block, so not assigned),
    ``kept_all`` (none was live: all kept), ``liveness_window``, ``last_seen`` (this node's
    block as last read) and ``heartbeats_sent``.
    """
    if service is None:
        return {"enabled": False}
    view = service.current()
    summary: dict[str, Any] = {
        "enabled": True,
        "autoadvance": service.autoadvance,
        "last_error": service.last_error,
    }
    if view is None:
        summary["epoch"] = None
        return summary
    try:
        attestations = service.attestations(view.epoch)
    except CollegiumError as exc:
        attestations = []
        summary["last_error"] = f"cannot read attestations: {exc}"
    summary.update(
        epoch=view.epoch,
        boundary_block=view.boundary_block,
        snapshot_block=view.snapshot.block,
        seed=_hex(view.seed),
        source_block=view.seed_info.source_block,
        root=_hex(view.root),
        attested=_hex(service.attested_root(view.epoch)),
        my_slots=[
            {"role": s.role, "subsystem": s.subsystem, "rank": view.rank_of(s)}
            for s in view.my_slots
        ],
        agree=[a.node for a in attestations if a.matches is True],
        disagree=[a.node for a in attestations if a.matches is False],
        missing=[a.node for a in attestations if a.root is None],
        replicas=dict(view.plan.replicas),
        unserved=list(view.plan.unserved),
        adjustments=list(view.plan.adjustments),
        error=None if view.plan.error is None else str(view.plan.error),
        left_out=[str(a) for a in view.snapshot.left_out],
        kept_all=view.snapshot.kept_all,
        liveness_window=view.snapshot.liveness_window,
        last_seen=service.last_seen(),
        heartbeats_sent=service.heartbeats_sent,
    )
    return summary
