"""The assignment root: a keccak256 commitment over a canonical encoding of all slots."""

from __future__ import annotations

from collections.abc import Sequence

from node.assignment.constants import (
    ADJUSTMENT_REASON_CODES,
    DOMAIN_ADJUSTMENT,
    DOMAIN_ASSIGNMENT,
    DOMAIN_SLOT,
    EPOCH_LENGTH,
    ROLE_DOMAINS,
)
from node.assignment.containers import Adjustment, Slot
from node.assignment.hashing import (
    compute_count_bytes,
    compute_subsystem_key,
    keccak256,
    uint_to_bytes,
)


def compute_slot_commitment(slot: Slot) -> bytes:
    """Return keccak256(DOMAIN_SLOT ++ role domain ++ subsystem key ++ uint32(n) ++ n addresses)."""
    hosts = b"".join(bytes.fromhex(host[2:]) for host in slot.hosts)
    return keccak256(
        DOMAIN_SLOT
        + ROLE_DOMAINS[slot.role]
        + compute_subsystem_key(slot.subsystem)
        + compute_count_bytes(len(slot.hosts))
        + hosts
    )


def compute_adjustment_commitment(adjustment: Adjustment) -> bytes:
    """Return keccak256(DOMAIN_ADJUSTMENT ++ uint8(reason code) ++ role domain ++ subsystem key
    ++ uint32(before) ++ uint32(to))."""
    return keccak256(
        DOMAIN_ADJUSTMENT
        + uint_to_bytes(ADJUSTMENT_REASON_CODES[adjustment.reason], 1)
        + ROLE_DOMAINS[adjustment.role]
        + compute_subsystem_key(adjustment.subsystem)
        + compute_count_bytes(adjustment.before)
        + compute_count_bytes(adjustment.to)
    )


def compute_assignment_root(
    epoch: int, seed: bytes, slots: Sequence[Slot], adjustments: Sequence[Adjustment] = ()
) -> bytes:
    """Return keccak256(DOMAIN_ASSIGNMENT ++ uint64(epoch) ++ seed ++ uint32(n) ++ commitments
    [++ uint32(k) ++ k adjustment commitments, only if k > 0])."""
    commitments = b"".join(compute_slot_commitment(slot) for slot in slots)
    tail = b""
    if adjustments:
        tail = compute_count_bytes(len(adjustments)) + b"".join(
            compute_adjustment_commitment(a) for a in adjustments
        )
    return keccak256(
        DOMAIN_ASSIGNMENT
        + uint_to_bytes(epoch, EPOCH_LENGTH)
        + seed
        + compute_count_bytes(len(slots))
        + commitments
        + tail
    )
