"""RFC 4648 base32, lower case and unpadded: the digits of a CIDv1 (multibase ``b``) and of a
block key, without the standard library's pure-Python loop.

``base64.b32encode`` encodes 5 bytes per Python-level iteration (about 4 µs for a 36-byte
CID on the node's VM). :func:`b32encode_lower` instead moves every 5-bit group of the input,
read as one integer, into its own byte with a handful of whole-integer shifts and masks (a
log2-step bit spread, done by C code on all groups at once), then maps the bytes 0..31 to the
alphabet with one ``bytes.translate``: about 1 µs. The output is exactly
``base64.b32encode(data).decode().rstrip("=").lower()`` (tests compare them on random
inputs); inputs longer than ``FAST_MAX_BYTES`` go through the standard library.
:func:`b32decode_lower` runs the same steps backwards: what ``base64.b32decode`` gives the
upper-cased, re-padded text.
"""

from __future__ import annotations

import base64
import functools
from typing import Final

ALPHABET: Final = b"abcdefghijklmnopqrstuvwxyz234567"
FAST_MAX_BYTES: Final = 80  # CIDs and multihashes are ~36 bytes; the masks grow with the input
GROUP_BITS: Final = 5

_TO_ALPHABET: Final = bytes.maketrans(bytes(range(len(ALPHABET))), ALPHABET)
_FROM_ALPHABET: Final = bytes.maketrans(ALPHABET, bytes(range(len(ALPHABET))))
# digits % 8 that RFC 4648 padding cannot complete (1, 3 or 6 digits left over)
_BAD_REMAINDERS: Final = frozenset((1, 3, 6))

# one spreading step: (mask of the groups that stay, mask of those that move, shift)
Step = tuple[int, int, int]


def _lane_mask(lane_bits: int, width: int, lanes: int) -> int:
    """Return a mask of the low ``width`` bits of each of ``lanes`` lanes of ``lane_bits``."""
    one = (1 << width) - 1
    mask = 0
    for lane in range(lanes):
        mask |= one << (lane * lane_bits)
    return mask


@functools.cache
def _spread_steps(groups: int) -> tuple[Step, ...]:
    """Return the steps that move ``groups`` (a power of two) 5-bit groups, packed from bit 0,
    each to its own byte (group ``i`` to bits ``8i..8i+4``).

    Each step halves the groups per lane: in every lane the upper half of its groups moves
    up to the bottom of the lane's upper half, so after log2(groups) steps a lane is a byte.
    """
    steps: list[Step] = []
    lane_bits, per_lane = 8 * groups, groups
    while per_lane > 1:
        kept = GROUP_BITS * (per_lane // 2)
        lanes = 8 * groups // lane_bits
        low = _lane_mask(lane_bits, kept, lanes)
        steps.append((low, low << kept, lane_bits // 2 - kept))
        lane_bits, per_lane = lane_bits // 2, per_lane // 2
    return tuple(steps)


def b32encode_lower(data: bytes) -> str:
    """Return RFC 4648 base32 of ``data``, lower case, without ``=`` padding."""
    size = len(data)
    if size > FAST_MAX_BYTES:
        return base64.b32encode(data).decode("ascii").rstrip("=").lower()
    digits = -(-8 * size // GROUP_BITS)
    if digits == 0:
        return ""
    # the last digit is completed with zero bits, as RFC 4648 does
    value = int.from_bytes(data, "big") << (GROUP_BITS * digits - 8 * size)
    groups = 1 << (digits - 1).bit_length()
    for keep, move, shift in _spread_steps(groups):
        value = (value & keep) | ((value & move) << shift)
    return value.to_bytes(groups, "big")[groups - digits :].translate(_TO_ALPHABET).decode("ascii")


def b32decode_lower(text: str) -> bytes:
    """Return the bytes of lower-case, unpadded RFC 4648 base32 ``text``: for text of the
    lower-case alphabet, what ``base64.b32decode(text.upper() + padding)`` returns (the
    unused low bits of the last digit are ignored, as there). Raises ``ValueError`` on a
    length no padding completes and on any other character (upper case and ``=`` too)."""
    digits = len(text)
    data = text.encode("ascii")  # UnicodeEncodeError is a ValueError
    if data.translate(None, ALPHABET) or digits % 8 in _BAD_REMAINDERS:
        raise ValueError(f"not unpadded lower-case base32: {text!r}")
    if digits > -(-8 * FAST_MAX_BYTES // GROUP_BITS):
        return base64.b32decode(data.upper() + b"=" * (-digits % 8))
    if digits == 0:
        return b""
    value = int.from_bytes(data.translate(_FROM_ALPHABET), "big")
    for keep, move, shift in reversed(_spread_steps(1 << (digits - 1).bit_length())):
        value = (value & keep) | ((value >> shift) & move)
    size = GROUP_BITS * digits // 8
    return (value >> (GROUP_BITS * digits - 8 * size)).to_bytes(size, "big")
