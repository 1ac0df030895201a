"""Hashing and the per-slot score primitive: keccak256 over fixed-width big-endian fields."""

from __future__ import annotations

from collections.abc import Callable

from node.assignment.constants import (
    COUNT_LENGTH,
    DOMAIN_LENGTH,
    EPOCH_LENGTH,
    LOG2_FRACTION_BITS,
    LOG2_WORKING_BITS,
    ROLE_DOMAINS,
    SCORE_HASH_BITS,
    SCORE_SHIFT,
    SEED_LENGTH,
    ZERO_SUBSYSTEM_KEY,
)


def _load_keccak() -> Callable[[bytes], bytes]:
    """Return keccak256, preferring eth-hash's fast pysha3 backend when it is installed."""
    try:
        from eth_hash.backends import pysha3
        from eth_hash.main import Keccak256

        fast = Keccak256(pysha3)  # type: ignore[arg-type]
        fast(b"")
        return fast
    except ImportError:  # pragma: no cover - depends on the environment
        from eth_hash.auto import keccak as auto_keccak

        return auto_keccak


keccak256: Callable[[bytes], bytes] = _load_keccak()


def uint_to_bytes(value: int, length: int) -> bytes:
    """Return ``value`` as ``length`` big-endian bytes (Solidity's ``uintN``)."""
    assert 0 <= value < 2 ** (8 * length)
    return value.to_bytes(length, "big")


def compute_subsystem_key(subsystem: str | None) -> bytes:
    """Return the 32-byte key of a slot's subsystem: keccak256 of its UTF-8 name, or zero."""
    if subsystem is None:
        return ZERO_SUBSYSTEM_KEY
    return keccak256(subsystem.encode("utf-8"))


def compute_role_seed(seed: bytes, epoch: int, role: str) -> bytes:
    """Return the seed of ``role`` in ``epoch``: keccak256(domain ++ uint64(epoch) ++ seed)."""
    assert len(seed) == SEED_LENGTH
    domain = ROLE_DOMAINS[role]
    assert len(domain) == DOMAIN_LENGTH
    return keccak256(domain + uint_to_bytes(epoch, EPOCH_LENGTH) + seed)


def compute_log2_fixed(x: int) -> int:
    """Return ``log2(x)`` in fixed point with ``LOG2_FRACTION_BITS`` bits, by repeated squaring.

    Requires ``1 <= x <= 2**SCORE_HASH_BITS``. The result is exact for powers of two and
    otherwise at most a few units in the last place below ``2**LOG2_FRACTION_BITS * log2(x)``.
    """
    assert 1 <= x <= 2**SCORE_HASH_BITS
    integer_part = x.bit_length() - 1
    one = 1 << LOG2_WORKING_BITS
    two = one << 1
    y = (x << LOG2_WORKING_BITS) >> integer_part  # x / 2**integer_part, in [one, two)
    result = integer_part << LOG2_FRACTION_BITS
    for bit in range(LOG2_FRACTION_BITS - 1, -1, -1):
        y = (y * y) >> LOG2_WORKING_BITS
        if y >= two:
            y >>= 1
            result |= 1 << bit
    return result


def compute_draw_cost(draw_hash: bytes) -> int:
    """Return ``-log2(u)`` in fixed point, ``u = (h + 1) / 2**64``, ``h`` = first 8 hash bytes."""
    h = int.from_bytes(draw_hash[: SCORE_HASH_BITS // 8], "big")
    return (SCORE_HASH_BITS << LOG2_FRACTION_BITS) - compute_log2_fixed(h + 1)


def compute_node_score(
    role_seed: bytes, subsystem_key: bytes, address: bytes, capacity: int
) -> int:
    """Return the score of a node for a slot; the lowest score ranks first (straw2 draw)."""
    assert len(address) == 20 and capacity >= 1
    draw_hash = keccak256(role_seed + subsystem_key + address)
    return (compute_draw_cost(draw_hash) << SCORE_SHIFT) // capacity


def compute_slot_score(
    seed: bytes, epoch: int, role: str, subsystem: str | None, address: bytes, capacity: int
) -> int:
    """Return the score of a node for slot ``(role, subsystem)`` from first principles.

    This is the primitive the registry contract exposes as a ``view`` for disputes.
    """
    role_seed = compute_role_seed(seed, epoch, role)
    return compute_node_score(role_seed, compute_subsystem_key(subsystem), address, capacity)


def compute_count_bytes(count: int) -> bytes:
    """Return a slot or host count as a ``uint32``."""
    return uint_to_bytes(count, COUNT_LENGTH)
