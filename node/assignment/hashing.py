"""Hashing and the per-slot score primitive: keccak256 over fixed-width big-endian fields."""

from __future__ import annotations

from node.assignment.constants import (
    ADDRESS_LENGTH,
    COUNT_LENGTH,
    DOMAIN_LENGTH,
    DOMAIN_NODE,
    DRAW_BITS,
    EPOCH_LENGTH,
    HASH_BITS,
    HASH_MASK,
    LOG2_FRACTION_BITS,
    LOG2_INTERPOLATION_BITS,
    LOG2_TABLE_BITS,
    LOG2_WORKING_BITS,
    MAX_CAPACITY,
    MIX_MULTIPLIER_1,
    MIX_MULTIPLIER_2,
    MIX_SHIFT_1,
    MIX_SHIFT_2,
    MIX_SHIFT_3,
    ROLE_DOMAINS,
    SCORE_SHIFT,
    SEED_LENGTH,
    ZERO_SUBSYSTEM_KEY,
)
from node.hashing import keccak256 as keccak256  # re-exported: the spec reads it from here


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

    Requires ``1 <= x <= 2**HASH_BITS``. The result is exact for powers of two and otherwise
    at most a few units in the last place below ``2**LOG2_FRACTION_BITS * log2(x)``. It only
    defines ``LOG2_TABLE``; the score uses the table (``compute_log2_draw``).
    """
    assert 1 <= x <= 2**HASH_BITS
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


def compute_log2_table_entry(i: int) -> int:
    """Return ``log2(1 + i / 2**LOG2_TABLE_BITS)`` in fixed point.

    Requires ``0 <= i <= 2**LOG2_TABLE_BITS``; defined by ``compute_log2_fixed``.
    """
    assert 0 <= i <= 1 << LOG2_TABLE_BITS
    return compute_log2_fixed((1 << LOG2_TABLE_BITS) + i) - (LOG2_TABLE_BITS << LOG2_FRACTION_BITS)


LOG2_TABLE: tuple[int, ...] = tuple(
    compute_log2_table_entry(i) for i in range((1 << LOG2_TABLE_BITS) + 1)
)
"""``LOG2_TABLE[i] = compute_log2_table_entry(i)``; ``LOG2_TABLE[2**LOG2_TABLE_BITS] = 1.0``."""


def compute_log2_draw(y: int) -> int:
    """Return ``log2(y)`` in fixed point for ``1 <= y <= 2**DRAW_BITS``: the integer part, plus
    the table entry of the next ``LOG2_TABLE_BITS`` bits, plus a linear interpolation over the
    remaining ``LOG2_INTERPOLATION_BITS`` bits (every intermediate value is below ``2**64``)."""
    assert 1 <= y <= 1 << DRAW_BITS
    integer_part = y.bit_length() - 1
    mantissa = y << (DRAW_BITS - integer_part)  # in [2**DRAW_BITS, 2**(DRAW_BITS + 1))
    index = (mantissa >> LOG2_INTERPOLATION_BITS) - (1 << LOG2_TABLE_BITS)
    fraction = mantissa & ((1 << LOG2_INTERPOLATION_BITS) - 1)
    low, high = LOG2_TABLE[index], LOG2_TABLE[index + 1]
    step = ((high - low) * fraction) >> LOG2_INTERPOLATION_BITS
    return (integer_part << LOG2_FRACTION_BITS) + low + step


def mix64(x: int) -> int:
    """Return the splitmix64 finalizer of the 64-bit ``x`` (a bijection on uint64)."""
    assert 0 <= x <= HASH_MASK
    x = ((x ^ (x >> MIX_SHIFT_1)) * MIX_MULTIPLIER_1) & HASH_MASK
    x = ((x ^ (x >> MIX_SHIFT_2)) * MIX_MULTIPLIER_2) & HASH_MASK
    return x ^ (x >> MIX_SHIFT_3)


def compute_draw_cost(draw: int) -> int:
    """Return ``-log2(u)`` in fixed point, ``u = (d + 1) / 2**DRAW_BITS``, ``d`` = the draw's
    leading ``DRAW_BITS`` bits; ``0 <= cost <= DRAW_BITS << LOG2_FRACTION_BITS``."""
    assert 0 <= draw <= HASH_MASK
    d = draw >> (HASH_BITS - DRAW_BITS)
    return (DRAW_BITS << LOG2_FRACTION_BITS) - compute_log2_draw(d + 1)


def hash_to_uint64(digest: bytes) -> int:
    """Return the first 8 bytes of ``digest`` as a big-endian ``uint64``."""
    return int.from_bytes(digest[: HASH_BITS // 8], "big")


def compute_slot_hash(role_seed: bytes, subsystem_key: bytes) -> int:
    """Return the 64-bit hash of a slot: keccak256(role seed ++ subsystem key), first 8 bytes."""
    assert len(role_seed) == SEED_LENGTH and len(subsystem_key) == SEED_LENGTH
    return hash_to_uint64(keccak256(role_seed + subsystem_key))


def compute_node_hash(seed: bytes, epoch: int, address: bytes) -> int:
    """Return the 64-bit hash of a node in ``epoch``:
    keccak256(DOMAIN_NODE ++ uint64(epoch) ++ seed ++ address), first 8 bytes."""
    assert len(seed) == SEED_LENGTH and len(address) == ADDRESS_LENGTH
    return hash_to_uint64(
        keccak256(DOMAIN_NODE + uint_to_bytes(epoch, EPOCH_LENGTH) + seed + address)
    )


def compute_node_score(slot_hash: int, node_hash: int, capacity: int) -> int:
    """Return the score of a node for a slot; the lowest score ranks first (straw2 draw)."""
    assert 1 <= capacity <= MAX_CAPACITY
    draw = mix64(slot_hash ^ node_hash)
    return (compute_draw_cost(draw) << SCORE_SHIFT) // capacity


def compute_slot_score(
    seed: bytes, epoch: int, role: str, subsystem: str | None, address: bytes, capacity: int
) -> int:
    """Return the score of a node for slot ``(role, subsystem)`` from first principles.

    This is the primitive the registry contract exposes as a ``view`` for disputes.
    """
    slot_hash = compute_slot_hash(
        compute_role_seed(seed, epoch, role), compute_subsystem_key(subsystem)
    )
    return compute_node_score(slot_hash, compute_node_hash(seed, epoch, address), capacity)


def compute_count_bytes(count: int) -> bytes:
    """Return a slot or host count as a ``uint32``."""
    return uint_to_bytes(count, COUNT_LENGTH)
