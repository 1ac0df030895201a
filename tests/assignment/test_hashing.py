"""Tests of the score primitive: integer log2, domain separation, capacity weighting."""

from __future__ import annotations

import math
import random

from node.assignment.constants import LOG2_FRACTION_BITS, ROLES, SCORE_HASH_BITS
from node.assignment.hashing import (
    compute_draw_cost,
    compute_log2_fixed,
    compute_node_score,
    compute_role_seed,
    compute_slot_score,
    compute_subsystem_key,
    keccak256,
)

ONE = 1 << LOG2_FRACTION_BITS


def test_keccak256_is_ethereum_keccak() -> None:
    assert keccak256(b"").hex() == (
        "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    )


def test_log2_exact_on_powers_of_two() -> None:
    for k in range(SCORE_HASH_BITS + 1):
        assert compute_log2_fixed(1 << k) == k * ONE


def test_log2_close_to_float_reference() -> None:
    rng = random.Random(1234)
    for _ in range(2000):
        x = rng.randint(1, 2**SCORE_HASH_BITS)
        exact = math.log2(x) * ONE
        got = compute_log2_fixed(x)
        # truncating fixed point: never above the true value, at most a few ulps below
        assert exact - 64 <= got <= exact + 1e-3 * max(1.0, exact / ONE)


def test_draw_cost_bounds() -> None:
    assert compute_draw_cost(b"\xff" * 32) == 0
    assert compute_draw_cost(bytes(32)) == SCORE_HASH_BITS * ONE


def test_role_seeds_are_domain_separated() -> None:
    seed = bytes(range(32))
    seeds = {compute_role_seed(seed, 7, role) for role in ROLES}
    assert len(seeds) == len(ROLES)
    assert compute_role_seed(seed, 7, ROLES[0]) != compute_role_seed(seed, 8, ROLES[0])


def test_subsystem_key() -> None:
    assert compute_subsystem_key(None) == bytes(32)
    assert compute_subsystem_key("é") == keccak256("é".encode())


def test_score_decreases_with_capacity() -> None:
    role_seed = compute_role_seed(bytes(32), 1, "fe_system")
    address = bytes.fromhex("11" * 20)
    scores = [compute_node_score(role_seed, bytes(32), address, c) for c in range(1, 9)]
    assert scores == sorted(scores, reverse=True)
    assert scores[1] == scores[0] // 2  # exact integer division of the same cost


def test_slot_score_known_value() -> None:
    # The same value is asserted by the JS twin (frontend/assignment/assignment.test.mjs).
    address = bytes.fromhex("00" * 19 + "01")
    assert compute_slot_score(bytes(32), 7, "fe_system", None, address, 3) == 6729918080125064533
