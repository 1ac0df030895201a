"""CID helpers: the fast ``is_cid`` agrees with ``parse_cid`` (multiformats) on valid CIDs and
on near misses; binary CIDs and block keys are spelled as multiformats and the stdlib do."""

from __future__ import annotations

import base64
import hashlib

from hypothesis import given
from hypothesis import strategies as st

from node.errors import InvalidCID
from node.storage.cids import (
    compute_block_key,
    compute_block_key_from_multihash,
    compute_cid_bytes,
    compute_multihash_of_cid_bytes,
    format_cid,
    format_cid_bytes,
    is_cid,
    parse_cid,
)


def _parses(value: str) -> bool:
    try:
        parse_cid(value)
    except InvalidCID:
        return False
    return True


def _cids(data: bytes) -> list[str]:
    return [
        format_cid(parse_cid(compute_cid_bytes(data, codec="raw", version=1))),
        format_cid(parse_cid(compute_cid_bytes(data, codec="dag-pb", version=1))),
        format_cid(parse_cid(compute_cid_bytes(data, codec="dag-pb", version=0))),
    ]


@given(st.binary(max_size=64), st.integers(0, 58), st.sampled_from("abz2=B!"))
def test_is_cid_agrees_with_parse_cid(data: bytes, position: int, char: str) -> None:
    for cid in _cids(data):
        assert is_cid(cid) and _parses(cid)
        mutated = cid[:position] + char + cid[position + 1 :]
        assert is_cid(mutated) == _parses(mutated), mutated
        for variant in (cid[:-1], cid + "a", cid.upper(), "b" + cid[1:].upper()):
            assert is_cid(variant) == _parses(variant), variant


def test_is_cid_refuses_non_cids() -> None:
    for value in ("", "b", "bafy-bench", "not-a-cid", "b" + "a" * 58, hashlib.sha256().hexdigest()):
        assert not is_cid(value) and not _parses(value), value


@given(st.binary(max_size=200))
def test_binary_cids_and_block_keys_spell_as_multiformats_and_the_stdlib(data: bytes) -> None:
    for codec, version in (("raw", 1), ("dag-pb", 1)):
        cid_bytes = compute_cid_bytes(data, codec=codec, version=version)
        assert format_cid_bytes(cid_bytes) == format_cid(parse_cid(cid_bytes))
        assert format_cid_bytes(cid_bytes) == parse_cid(cid_bytes).encode("base32")
        multihash = compute_multihash_of_cid_bytes(cid_bytes)
        stdlib = base64.b32encode(multihash).decode("ascii").rstrip("=").lower()
        assert compute_block_key_from_multihash(multihash) == stdlib
        assert compute_block_key(parse_cid(cid_bytes)) == stdlib
