"""Cross-check the streaming importer against a slow, straightforward reference.

The reference builds the balanced tree top-down from the full list of chunks (each subtree at
height h holds up to max_links**h leaves, filled left to right) and writes protobuf with its own
tiny encoder, sharing no code with ``node.storage.importer``/``dagpb``. Small chunk sizes and
fan-outs make deep trees cheap, so every layout edge (exact powers, one over) is exercised.
"""

from __future__ import annotations

import hashlib
import random

import pytest

from node.storage.importer import ImportParams, import_bytes


def _uvarint(n: int) -> bytes:
    out = b""
    while True:
        low, n = n & 0x7F, n >> 7
        if n:
            out += bytes([low | 0x80])
        else:
            return out + bytes([low])


def _field_bytes(number: int, payload: bytes) -> bytes:
    return _uvarint(number * 8 + 2) + _uvarint(len(payload)) + payload


def _field_int(number: int, value: int) -> bytes:
    return _uvarint(number * 8) + _uvarint(value)


def _cid(block: bytes, codec: int, version: int) -> bytes:
    mh = b"\x12\x20" + hashlib.sha256(block).digest()
    return mh if version == 0 else bytes([1, codec]) + mh


def _ref_leaf(chunk: bytes, version: int, raw: bool) -> tuple[bytes, int, int]:
    if raw:
        return _cid(chunk, 0x55, 1), len(chunk), len(chunk)
    unixfs = (
        _field_int(1, 2) + (_field_bytes(2, chunk) if chunk else b"") + _field_int(3, len(chunk))
    )
    node = _field_bytes(1, unixfs)
    return _cid(node, 0x70, version), len(node), len(chunk)


def _ref_tree(
    chunks: list[bytes], height: int, fanout: int, version: int, raw: bool
) -> tuple[bytes, int, int]:
    if height == 0:
        assert len(chunks) == 1
        return _ref_leaf(chunks[0], version, raw)
    per_child = fanout ** (height - 1)
    children = [
        _ref_tree(chunks[i : i + per_child], height - 1, fanout, version, raw)
        for i in range(0, len(chunks), per_child)
    ]
    assert len(children) <= fanout
    unixfs = _field_int(1, 2) + _field_int(3, sum(c[2] for c in children))
    for child in children:
        unixfs += _field_int(4, child[2])
    node = b"".join(
        _field_bytes(2, _field_bytes(1, c[0]) + _field_bytes(2, b"") + _field_int(3, c[1]))
        for c in children
    ) + _field_bytes(1, unixfs)
    return (
        _cid(node, 0x70, version),
        len(node) + sum(c[1] for c in children),
        sum(c[2] for c in children),
    )


def reference_cid(data: bytes, chunk_size: int, fanout: int, version: int, raw: bool) -> bytes:
    """Return the root CID of ``data`` under kubo's balanced layout, computed the slow way."""
    chunks = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)] or [b""]
    height = 0
    while fanout**height < len(chunks):
        height += 1
    return _ref_tree(chunks, height, fanout, version, raw)[0]


SHAPES = [(4, 2), (3, 3), (5, 4), (16, 174)]


@pytest.mark.parametrize("chunk_size,fanout", SHAPES)
@pytest.mark.parametrize("version,raw", [(0, False), (1, True), (1, False), (0, True)])
def test_importer_matches_reference(chunk_size: int, fanout: int, version: int, raw: bool) -> None:
    rng = random.Random(1234 + chunk_size * 31 + fanout)
    sizes = {0, 1, chunk_size - 1, chunk_size, chunk_size + 1}
    for power in range(1, 5):
        leaves = fanout**power
        if leaves * chunk_size > 200_000:
            break
        sizes |= {leaves * chunk_size - 1, leaves * chunk_size, leaves * chunk_size + 1}
    sizes |= {rng.randrange(0, 3000) for _ in range(20)}
    params = ImportParams(
        cid_version=version, raw_leaves=raw, chunk_size=chunk_size, max_links=fanout
    )
    for size in sorted(sizes):
        data = rng.randbytes(size)
        got = import_bytes(data, params, lambda cid, block: None).cid
        assert got == reference_cid(data, chunk_size, fanout, version, raw), size


def test_reference_agrees_on_a_real_multi_level_file() -> None:
    """174 * 262144 + 1 zero bytes: the first two-level tree with kubo's real parameters."""
    data = bytes(174 * 262144 + 1)
    got = import_bytes(data, ImportParams(cid_version=1), lambda cid, block: None).cid
    assert got == reference_cid(data, 262144, 174, 1, True)
