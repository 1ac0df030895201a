"""The CARv1 writer and streaming reader against the IPLD spec's ``carv1-basic`` fixture, and
the reader's refusals of malformed streams (pure: no store, no HTTP)."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.storage.car import (
    CarError,
    CarReader,
    decode_varint,
    encode_header,
    iter_car,
)
from node.storage.cids import check_block, format_cid, parse_cid
from node.storage.dagpb import compute_varint

VECTOR = Path(__file__).parent / "vectors" / "carv1-basic.car.hex"
ROOTS = [
    "bafyreihyrpefhacm6kkp4ql6j6udakdit7g3dmkzfriqfykhjw6cad5lrm",
    "bafyreidj5idub6mapiupjwjsyyxhyhedxycv4vihfsicm2vt46o7morwlm",
]
LIMITS = {"max_section_bytes": 1 << 20, "max_total_bytes": 1 << 20}


def vector() -> bytes:
    return bytes.fromhex(VECTOR.read_text().strip())


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_reads_the_spec_fixture_in_any_chunking(chunk: int) -> None:
    reader = CarReader(pieces(vector(), chunk), **LIMITS)

    assert [format_cid(r) for r in reader.read_header()] == ROOTS
    blocks = [(parse_cid(c), d) for c, d in reader]

    assert len(blocks) == 8
    assert [c.codec.name for c, _ in blocks] == ["raw"] * 3 + ["dag-pb"] * 3 + ["dag-cbor"] * 2
    assert [c.version for c, _ in blocks] == [1, 1, 1, 0, 0, 0, 1, 1]
    for cid, data in blocks:
        check_block(cid, data, stored=False)  # every block hashes to its CID


def test_writes_the_spec_fixture_byte_for_byte() -> None:
    reader = CarReader([vector()], **LIMITS)
    roots = reader.read_header()
    blocks = list(reader)

    assert b"".join(iter_car(roots, blocks)) == vector()


def test_varints() -> None:
    for value in (0, 1, 127, 128, 300, 2**32, 2**63 - 1):
        encoded = compute_varint(value)
        assert decode_varint(encoded) == (value, len(encoded))
    assert decode_varint(b"\x80") is None  # needs more bytes
    with pytest.raises(CarError, match="longer than 9"):
        decode_varint(b"\xff" * 10)
    with pytest.raises(CarError, match="minimal"):
        decode_varint(b"\x80\x00")


def test_a_huge_section_length_is_refused_before_it_is_buffered() -> None:
    header = encode_header([parse_cid(ROOTS[0])])
    stream = header + compute_varint(2**62)  # no section body follows at all
    reader = CarReader([stream], **LIMITS)
    reader.read_header()
    with pytest.raises(CarError, match="at most") as caught:
        list(reader)
    assert not caught.value.truncated


def test_a_cut_stream_is_reported_as_truncated() -> None:
    data = vector()
    reader = CarReader([data[:-5]], **LIMITS)
    reader.read_header()
    with pytest.raises(CarError) as caught:
        list(reader)
    assert caught.value.truncated
    with pytest.raises(CarError) as caught:
        CarReader([data[:30]], **LIMITS).read_header()
    assert caught.value.truncated


def test_the_total_length_is_bounded() -> None:
    reader = CarReader(pieces(vector(), 64), max_section_bytes=1 << 20, max_total_bytes=200)
    with pytest.raises(CarError, match="longer than 200"):
        reader.read_header()
        list(reader)


@pytest.mark.parametrize(
    "body",
    [
        b"\xa1gversion\x01",  # no roots
        b"\xa2eroots\x80gversion\x01",  # empty roots
        b"\xa2eroots\x81\x01gversion\x01",  # a root that is not a CID
        b"\xa2eroots\x81\xd8\x2a\x42\x00\x01gversion\x02",  # version 2
        b"\xff\xff",  # not CBOR
    ],
)
def test_bad_headers_are_refused(body: bytes) -> None:
    with pytest.raises(CarError):
        CarReader([compute_varint(len(body)) + body], **LIMITS).read_header()


def test_a_section_whose_cid_runs_past_it_is_refused() -> None:
    header = encode_header([parse_cid(ROOTS[0])])
    section = b"\x01\x55\x12\x20" + b"\x00" * 8  # claims a 32-byte digest, has 8
    reader = CarReader([header + compute_varint(len(section)) + section], **LIMITS)
    reader.read_header()
    with pytest.raises(CarError, match="CID"):
        list(reader)
