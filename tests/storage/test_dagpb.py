"""dag-pb and UnixFS protobuf (``node.storage.dagpb``): hand-assembled bytes, both ways."""

from __future__ import annotations

import pytest

from node.storage.dagpb import (
    PBLink,
    PBNode,
    UnixFSData,
    UnixFSType,
    compute_varint,
    decode_pb_node,
    decode_unixfs,
    encode_pb_node,
    encode_unixfs,
)
from node.storage.errors import UnsupportedNode


@pytest.mark.parametrize(
    ("value", "encoded"),
    [(0, b"\x00"), (1, b"\x01"), (127, b"\x7f"), (128, b"\x80\x01"), (300, b"\xac\x02")],
)
def test_varint_is_leb128(value: int, encoded: bytes) -> None:
    assert compute_varint(value) == encoded


def test_pb_node_links_before_data() -> None:
    link = PBLink(hash=b"\x01\x02", name="", tsize=5)
    # link: Hash (0x0a, len 2), Name (0x12, len 0), Tsize (0x18, 5)
    link_bytes = b"\x0a\x02\x01\x02" + b"\x12\x00" + b"\x18\x05"
    # node: Links (0x12, len 8, link), Data (0x0a, len 1, 0x08)
    expected = b"\x12\x08" + link_bytes + b"\x0a\x01\x08"
    assert encode_pb_node([link], b"\x08") == expected
    assert decode_pb_node(expected) == PBNode((link,), b"\x08")


def test_unixfs_file_message() -> None:
    message = UnixFSData(UnixFSType.FILE, data=b"hi", filesize=2, blocksizes=(1, 1))
    # Type (0x08, 2), Data (0x12, len 2), filesize (0x18, 2), blocksizes (0x20, 1) twice
    expected = b"\x08\x02" + b"\x12\x02hi" + b"\x18\x02" + b"\x20\x01\x20\x01"
    assert encode_unixfs(message) == expected
    assert decode_unixfs(expected) == message
    packed = b"\x08\x02\x22\x02\x01\x01"  # blocksizes packed (field 4, wire 2)
    assert decode_unixfs(packed).blocksizes == (1, 1)


@pytest.mark.parametrize(
    "bad",
    [
        b"\x0a\x05ab",  # Data longer than the buffer
        b"\x0a",  # a key without its length
        b"\x1a\x00",  # field 3 is not in PBNode
        b"\x12\x02\x12\x00",  # a link without Hash
        b"\x0b",  # wire type 3 (groups) is not supported
    ],
)
def test_malformed_pb_node_is_unsupported(bad: bytes) -> None:
    with pytest.raises(UnsupportedNode):
        decode_pb_node(bad)


def test_unixfs_without_or_with_unknown_type_is_unsupported() -> None:
    with pytest.raises(UnsupportedNode):
        decode_unixfs(b"\x12\x00")
    with pytest.raises(UnsupportedNode):
        decode_unixfs(b"\x08\x09")


def test_varints_are_multiformats_varints() -> None:
    """The local LEB128 encoder writes multiformats' bytes, and refuses what it refuses."""
    from multiformats import varint

    values = [*range(300), 2**14 - 1, 2**14, 2**21, 2**35 + 7, 2**63 - 1]
    for value in values:
        assert compute_varint(value) == bytes(varint.encode(value)), value
    for bad in (-1, 2**63):
        with pytest.raises(ValueError):
            compute_varint(bad)
