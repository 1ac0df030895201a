"""node.base32: the bit-spreading encoder gives exactly the standard library's base32."""

from __future__ import annotations

import base64
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from node.base32 import FAST_MAX_BYTES, b32encode_lower


def stdlib_b32(data: bytes) -> str:
    """The spelling the node used before: ``base64.b32encode``, unpadded, lower case."""
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def test_b32encode_lower_matches_the_stdlib_at_every_length() -> None:
    rng = random.Random(20261207)
    for size in range(FAST_MAX_BYTES + 12):  # every fast length and a few past the limit
        for _ in range(40):
            data = rng.randbytes(size)
            assert b32encode_lower(data) == stdlib_b32(data), data.hex()


def test_b32encode_lower_matches_the_stdlib_on_edge_bytes() -> None:
    for size in range(FAST_MAX_BYTES + 2):
        for fill in (0x00, 0xFF, 0x80, 0x01, 0x55, 0xAA):
            data = bytes([fill]) * size
            assert b32encode_lower(data) == stdlib_b32(data), (size, fill)


def test_b32encode_lower_known_values() -> None:
    # RFC 4648, section 10 (lower case, unpadded)
    assert [b32encode_lower(x) for x in (b"", b"f", b"fo", b"foo", b"foob", b"fooba")] == [
        "",
        "my",
        "mzxq",
        "mzxw6",
        "mzxw6yq",
        "mzxw6ytb",
    ]
    assert b32encode_lower(b"foobar") == "mzxw6ytboi"


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=3 * FAST_MAX_BYTES))
def test_b32encode_lower_matches_the_stdlib_on_any_bytes(data: bytes) -> None:
    assert b32encode_lower(data) == stdlib_b32(data)
