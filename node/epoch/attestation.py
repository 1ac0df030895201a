"""This node's part on-chain each epoch: attest the root once, and stay live.

:class:`Attester` sends ``attest(epoch, seed, root)`` at most once per epoch (it reads its
own attestation first, so a restart never sends a second one) and a ``heartbeat()`` when this
node's ``lastSeen`` is older than half the liveness window (:func:`compute_heartbeat_due`).

The seed sent is the one the view was computed from; the contract takes the attestation only
if it is the epoch's seed on the chain where it lands. A view computed before a reorg replaced
the epoch's boundary block (another block hash, another seed) is refused with
``SeedMismatch`` (``SeedNotFixed`` if no seed is fixed there yet): :data:`STALE_VIEW_ERRORS`.
The caller computes the epoch again.
"""

from __future__ import annotations

import logging
from typing import Final

from node.chain.registry import Registry, RegistryRejected
from node.epoch.policy import compute_heartbeat_due
from node.epoch.view import EpochView

log = logging.getLogger("node.epoch.service")  # the service's log, as before the split

STALE_VIEW_ERRORS: Final = frozenset({"SeedMismatch", "SeedNotFixed"})
"""The registry's refusals of an attestation computed from a seed that is not (or no longer)
the epoch's seed on-chain: a reorg replaced the view's input."""


class Attester:
    """Attest epochs and send heartbeats for ``address`` through ``registry``."""

    def __init__(self, registry: Registry, address: str) -> None:
        self.registry = registry
        self.address = address
        self.attested: dict[int, bytes] = {}
        # epoch -> block of this node's attestation (None: read from the chain, block unknown)
        self.mined_at: dict[int, int | None] = {}
        self._unconfirmed: dict[int, int] = {}  # sent, not read back yet: epoch -> block
        self.seen: int | None = None  # our lastSeen on-chain, as last read or set
        self.attestations_sent = 0
        self.heartbeats_sent = 0

    def attest(self, view: EpochView) -> None:
        """Attest ``view``'s root once; remember what is on-chain for this node."""
        if not self.address or view.root is None:
            return
        if not self.registry.is_node(self.address):
            return  # only registered nodes attest; it may register later
        existing: bytes | None = self.registry.attestation_of(view.epoch, self.address)
        if existing is None:
            try:
                sent = self.registry.attest(view.epoch, view.seed, view.root)
                log.info("epoch %d: attested at block %d", view.epoch, sent.block_number)
                self.attestations_sent += 1
                self.seen = sent.block_number
                self.mined_at[view.epoch] = sent.block_number
                self._unconfirmed[view.epoch] = sent.block_number
                existing = view.root
            except RegistryRejected as exc:
                if exc.error_name != "AlreadyAttested":
                    raise
                existing = self.registry.attestation_of(view.epoch, self.address)
        if existing is not None:
            self.attested[view.epoch] = bytes(existing)
            self.mined_at.setdefault(view.epoch, None)
            if bytes(existing) != view.root:
                log.error(
                    "epoch %d: this node attested %s earlier but now computes %s",
                    view.epoch,
                    bytes(existing).hex(),
                    view.root.hex(),
                )

    def forget(self, epoch: int) -> None:
        """Forget that ``epoch`` is attested (the next :meth:`attest` reads the chain)."""
        self.attested.pop(epoch, None)
        self.mined_at.pop(epoch, None)
        self._unconfirmed.pop(epoch, None)

    def forget_above(self, block: int, from_epoch: int) -> list[int]:
        """Forget the attestations mined above ``block`` (a reorg replaced the chain above
        it) and, of those read from the chain (block unknown), the ones of ``from_epoch``
        (the epoch of ``block``) and later; return their epochs, oldest first."""
        lost = sorted(
            e
            for e, at in self.mined_at.items()
            if (at is not None and at > block) or (at is None and e >= from_epoch)
        )
        for epoch in lost:
            self.forget(epoch)
        if self.seen is not None and self.seen > block:
            self.seen = None  # our lastSeen may be older now: read it again
        return lost

    def due(self, head: int, confirmations: int) -> list[int]:
        """Return the epochs whose attestation this node sent and which are now
        ``confirmations`` deep but no longer on-chain (forgotten: attest them again); the
        others found on-chain are confirmed and not read again."""
        lost = []
        for epoch, block in sorted(self._unconfirmed.items()):
            if head < block + confirmations:
                continue
            if self.registry.attestation_of(epoch, self.address) is None:
                log.warning(
                    "epoch %d: this node's attestation (block %d) is not on-chain any more "
                    "(a reorg); attesting again",
                    epoch,
                    block,
                )
                self.forget(epoch)
                lost.append(epoch)
            else:
                del self._unconfirmed[epoch]
        return lost

    def keep_alive(self, view: EpochView, head: int) -> None:
        """Send ``heartbeat()`` if this node's ``lastSeen`` is older than half the window."""
        if not self.address:
            return
        window = view.snapshot.liveness_window or self.registry.liveness_window(head)
        if self.seen is not None and not compute_heartbeat_due(head, self.seen, window):
            return  # seen recently (our own attestation or heartbeat): no chain read
        if not self.registry.is_node(self.address):
            self.seen = None
            return  # only registered nodes have a lastSeen; it may register later
        self.seen = self.registry.last_seen(self.address)
        if not compute_heartbeat_due(head, self.seen, window):
            return
        age = head - self.seen
        try:
            sent = self.registry.heartbeat()
        except RegistryRejected as exc:
            if exc.error_name != "NotRegisteredNode":  # it left meanwhile: nothing to keep
                raise
            self.seen = None
            return
        self.heartbeats_sent += 1
        self.seen = sent.block_number
        log.info(
            "heartbeat at block %d (last seen %d blocks before block %d, window %d)",
            sent.block_number,
            age,
            head,
            window,
        )

    def attested_root(self, epoch: int) -> bytes | None:
        """Return the root this node has on-chain for ``epoch``, or None."""
        if epoch in self.attested:
            return self.attested[epoch]
        if not self.address:
            return None
        root = self.registry.attestation_of(epoch, self.address)
        return None if root is None else bytes(root)
