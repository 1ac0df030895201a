"""The score of docs/assignment.md on numpy ``uint64`` arrays: the same integers, many at once.

Every function here equals its scalar twin in ``node.assignment.hashing`` element by element
(``test_vectorized_score_equals_scalar`` in ``tests/assignment/test_fill.py``); arithmetic wraps
modulo ``2**64`` exactly as the spec's ``& HASH_MASK``. No floating point reaches a result:
``np.frexp`` only reads the exponent of an integer below ``2**53``, which a float64 holds exactly.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from node.assignment.constants import (
    DRAW_BITS,
    HASH_BITS,
    LOG2_FRACTION_BITS,
    LOG2_INTERPOLATION_BITS,
    LOG2_TABLE_BITS,
    MIX_MULTIPLIER_1,
    MIX_MULTIPLIER_2,
    MIX_SHIFT_1,
    MIX_SHIFT_2,
    MIX_SHIFT_3,
    SCORE_SHIFT,
)
from node.assignment.hashing import LOG2_TABLE

U64 = npt.NDArray[np.uint64]

_TABLE = np.array(LOG2_TABLE, dtype=np.uint64)
_TABLE_STEP = _TABLE[1:] - _TABLE[:-1]
_SHIFT_1 = np.uint64(MIX_SHIFT_1)
_SHIFT_2 = np.uint64(MIX_SHIFT_2)
_SHIFT_3 = np.uint64(MIX_SHIFT_3)
_MULTIPLIER_1 = np.uint64(MIX_MULTIPLIER_1)
_MULTIPLIER_2 = np.uint64(MIX_MULTIPLIER_2)
_DRAW_SHIFT = np.uint64(HASH_BITS - DRAW_BITS)
_ONE = np.uint64(1)
_INTERPOLATION_SHIFT = np.uint64(LOG2_INTERPOLATION_BITS)
_INTERPOLATION_MASK = np.uint64((1 << LOG2_INTERPOLATION_BITS) - 1)
_TABLE_BASE = np.uint64(1 << LOG2_TABLE_BITS)
_FRACTION_SHIFT = np.uint64(LOG2_FRACTION_BITS)
_MAX_COST = np.uint64(DRAW_BITS << LOG2_FRACTION_BITS)
_SCORE_SHIFT = np.uint64(SCORE_SHIFT)


def mix64_array(x: U64) -> U64:
    """Return ``mix64`` of every element (a new array; ``x`` is not modified)."""
    with np.errstate(over="ignore"):
        z = x ^ (x >> _SHIFT_1)
        z *= _MULTIPLIER_1
        z ^= z >> _SHIFT_2
        z *= _MULTIPLIER_2
        z ^= z >> _SHIFT_3
    return z


def compute_draws(slot_hashes: U64, node_hashes: U64) -> U64:
    """Return the draws of every (slot, node) pair: shape ``(slots, nodes)``."""
    return mix64_array(slot_hashes[:, None] ^ node_hashes[None, :])


def compute_log2_draw_array(y: U64) -> U64:
    """Return ``compute_log2_draw`` of every element, ``1 <= y <= 2**DRAW_BITS``."""
    _, exponent = np.frexp(y.astype(np.float64))  # y = f * 2**exponent, 0.5 <= f < 1: exact
    integer_part = (exponent - 1).astype(np.uint64)
    mantissa = y << (np.uint64(DRAW_BITS) - integer_part)
    index = ((mantissa >> _INTERPOLATION_SHIFT) - _TABLE_BASE).astype(np.intp)
    fraction = mantissa & _INTERPOLATION_MASK
    step = (_TABLE_STEP[index] * fraction) >> _INTERPOLATION_SHIFT
    result: U64 = (integer_part << _FRACTION_SHIFT) + _TABLE[index] + step
    return result


def compute_scores(draws: U64, capacities: U64) -> U64:
    """Return the scores of ``draws`` for nodes of ``capacities`` (broadcast): the spec's
    ``(compute_draw_cost(draw) << SCORE_SHIFT) // capacity``."""
    cost = _MAX_COST - compute_log2_draw_array((draws >> _DRAW_SHIFT) + _ONE)
    result: U64 = (cost << _SCORE_SHIFT) // capacities
    return result


def compute_draw_thresholds(limit: int, capacities: U64) -> U64:
    """Return, per capacity, the smallest draw whose score is ``<= limit``.

    The score never increases with the draw (``compute_log2_draw`` never decreases), and the
    largest draw scores 0, so ``score(draw, c) <= limit`` iff ``draw >= threshold(c)``.
    Found by binary search over the 64-bit draws, all capacities at once.
    """
    low = np.zeros(capacities.shape, dtype=np.uint64)  # score(low) > limit unless low is the answer
    high = np.full(capacities.shape, np.iinfo(np.uint64).max, dtype=np.uint64)  # score <= limit
    bound = np.uint64(limit)
    for _ in range(HASH_BITS):
        middle = low + (high - low) // np.uint64(2)
        fits = compute_scores(middle, capacities) <= bound
        high = np.where(fits, middle, high)
        low = np.where(fits, low, middle)
    # high - low <= 1 now; low itself may fit (only possible when it is 0)
    fits_low = compute_scores(low, capacities) <= bound
    result: U64 = np.where(fits_low, low, high)
    return result


__all__ = [
    "compute_draw_thresholds",
    "compute_draws",
    "compute_log2_draw_array",
    "compute_scores",
    "mix64_array",
]
