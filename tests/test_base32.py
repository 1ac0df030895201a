"""node.base32: the bit-spreading encoder and its decoder give exactly the standard library's
base32."""

from __future__ import annotations

import base64
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.base32 import FAST_MAX_BYTES, b32decode_lower, b32encode_lower


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


def stdlib_b32decode(text: str) -> bytes:
    """What the node decoded before: the stdlib on the upper-cased, re-padded text."""
    return base64.b32decode(text.upper() + "=" * (-len(text) % 8))


def test_b32decode_lower_inverts_the_encoder_at_every_length() -> None:
    rng = random.Random(7)
    for size in range(FAST_MAX_BYTES + 12):
        for _ in range(20):
            data = rng.randbytes(size)
            assert b32decode_lower(b32encode_lower(data)) == data


@settings(max_examples=1000)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz234567", max_size=3 * FAST_MAX_BYTES))
def test_b32decode_lower_matches_the_stdlib_on_any_digits(text: str) -> None:
    try:
        expected = stdlib_b32decode(text)
    except ValueError:  # binascii.Error: a length no padding completes
        with pytest.raises(ValueError):
            b32decode_lower(text)
    else:
        assert b32decode_lower(text) == expected


@pytest.mark.parametrize("bad", ["A", "1", "8", "0", "=", "!", "é", " ", "\n"])
def test_b32decode_lower_refuses_other_characters(bad: str) -> None:
    for text in (bad + "a" * 7, "mzxw6yt" + bad, "a" * 200 + bad + "a" * 7):
        with pytest.raises(ValueError):
            b32decode_lower(text)
