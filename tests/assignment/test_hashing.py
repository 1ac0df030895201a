"""Tests of the score primitive: table log2, mixing, domain separation, capacity weighting."""

from __future__ import annotations

import math
import random

from hypothesis import given
from hypothesis import strategies as st

from node.assignment.constants import (
    DRAW_BITS,
    HASH_BITS,
    HASH_MASK,
    LOG2_FRACTION_BITS,
    LOG2_TABLE_BITS,
    ROLES,
    SCORE_SHIFT,
)
from node.assignment.hashing import (
    LOG2_TABLE,
    compute_draw_cost,
    compute_log2_draw,
    compute_log2_fixed,
    compute_node_hash,
    compute_node_score,
    compute_role_seed,
    compute_slot_hash,
    compute_slot_score,
    compute_subsystem_key,
    keccak256,
    mix64,
)

ONE = 1 << LOG2_FRACTION_BITS
INTERPOLATION_ERROR = 1e-6  # chord below log2 over 1/1024 of an octave: < 2e-7 in fact


def test_keccak256_is_ethereum_keccak() -> None:
    assert keccak256(b"").hex() == (
        "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    )


def test_log2_exact_on_powers_of_two() -> None:
    for k in range(HASH_BITS + 1):
        assert compute_log2_fixed(1 << k) == k * ONE
    for k in range(DRAW_BITS + 1):
        assert compute_log2_draw(1 << k) == k * ONE


def test_log2_close_to_float_reference() -> None:
    rng = random.Random(1234)
    for _ in range(2000):
        x = rng.randint(1, 2**HASH_BITS)
        exact = math.log2(x) * ONE
        got = compute_log2_fixed(x)
        # truncating fixed point: never above the true value, at most a few ulps below
        assert exact - 64 <= got <= exact + 1e-3 * max(1.0, exact / ONE)


def test_log2_table_ends() -> None:
    assert len(LOG2_TABLE) == (1 << LOG2_TABLE_BITS) + 1
    assert LOG2_TABLE[0] == 0
    assert LOG2_TABLE[-1] == ONE
    assert all(a < b for a, b in zip(LOG2_TABLE, LOG2_TABLE[1:], strict=False))


@given(st.integers(min_value=1, max_value=2**DRAW_BITS))
def test_log2_draw_close_to_float_reference(y: int) -> None:
    got = compute_log2_draw(y)
    assert abs(got / ONE - math.log2(y)) < INTERPOLATION_ERROR


@given(st.integers(min_value=1, max_value=2**DRAW_BITS - 1))
def test_log2_draw_never_decreases(y: int) -> None:
    assert compute_log2_draw(y) <= compute_log2_draw(y + 1)
    low = y & ~((1 << max(y.bit_length() - 1 - LOG2_TABLE_BITS, 0)) - 1)  # a table boundary
    if low > 1:
        assert compute_log2_draw(low - 1) <= compute_log2_draw(low)


def test_mix64_known_values_and_bijection_sample() -> None:
    assert mix64(0) == 0
    # splitmix64's first output for state 0 is mix64(0x9E3779B97F4A7C15)
    assert mix64(0x9E3779B97F4A7C15) == 0xE220A8397B1DCDAF
    rng = random.Random(5)
    values = [rng.getrandbits(64) for _ in range(1000)]
    assert len({mix64(v) for v in values}) == len(values)
    assert all(0 <= mix64(v) <= HASH_MASK for v in values)


def test_draw_cost_bounds() -> None:
    assert compute_draw_cost(HASH_MASK) == 0
    assert compute_draw_cost(0) == DRAW_BITS * ONE
    assert (compute_draw_cost(0) << SCORE_SHIFT) < 2**64  # every score fits a uint64


def test_role_seeds_are_domain_separated() -> None:
    seed = bytes(range(32))
    seeds = {compute_role_seed(seed, 7, role) for role in ROLES}
    assert len(seeds) == len(ROLES)
    assert compute_role_seed(seed, 7, ROLES[0]) != compute_role_seed(seed, 8, ROLES[0])


def test_node_hash_depends_on_epoch_seed_and_address() -> None:
    address = bytes.fromhex("11" * 20)
    base = compute_node_hash(bytes(32), 1, address)
    assert base != compute_node_hash(bytes(32), 2, address)
    assert base != compute_node_hash(b"\x01" * 32, 1, address)
    assert base != compute_node_hash(bytes(32), 1, bytes.fromhex("12" * 20))


def test_subsystem_key() -> None:
    assert compute_subsystem_key(None) == bytes(32)
    assert compute_subsystem_key("é") == keccak256("é".encode())


def test_score_decreases_with_capacity() -> None:
    slot_hash = compute_slot_hash(compute_role_seed(bytes(32), 1, "fe_system"), bytes(32))
    node_hash = compute_node_hash(bytes(32), 1, bytes.fromhex("11" * 20))
    scores = [compute_node_score(slot_hash, node_hash, c) for c in range(1, 9)]
    assert scores == sorted(scores, reverse=True)
    assert scores[1] == scores[0] // 2  # exact integer division of the same cost


def test_slot_score_known_value() -> None:
    # The same value is asserted by the JS twin (frontend/assignment/assignment.test.mjs)
    # and by the registry's slotScore (tests/chain/test_slot_score.py).
    address = bytes.fromhex("00" * 19 + "01")
    assert compute_slot_score(bytes(32), 7, "fe_system", None, address, 3) == 13029331929748821
