"""Hand-written protobuf for dag-pb nodes and UnixFS ``Data`` messages, byte-identical to kubo.

The two schemas (``merkledag.proto`` and ``unixfs.proto``), in the canonical form go-codec-dagpb
and go-unixfs emit:

| message  | field      | number | wire    | emitted when                          |
|----------|------------|--------|---------|---------------------------------------|
| PBNode   | Links      | 2      | bytes   | one per link, **before** Data         |
| PBNode   | Data       | 1      | bytes   | present (``None`` = absent)           |
| PBLink   | Hash       | 1      | bytes   | always (binary CID)                   |
| PBLink   | Name       | 2      | string  | present; kubo writes ``""`` for chunks |
| PBLink   | Tsize      | 3      | varint  | present                               |
| Data     | Type       | 1      | varint  | always                                |
| Data     | Data       | 2      | bytes   | present                               |
| Data     | filesize   | 3      | varint  | present                               |
| Data     | blocksizes | 4      | varint  | one per child, not packed (proto2)    |
| Data     | hashType   | 5      | varint  | HAMT only (decoded, never written)    |
| Data     | fanout     | 6      | varint  | HAMT only (decoded, never written)    |
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Final

from node.storage.errors import UnsupportedNode

WIRE_VARINT: Final = 0
WIRE_I64: Final = 1
WIRE_LEN: Final = 2
WIRE_I32: Final = 5


class UnixFSType(IntEnum):
    """UnixFS ``Data.DataType`` values."""

    RAW = 0
    DIRECTORY = 1
    FILE = 2
    METADATA = 3
    SYMLINK = 4
    HAMT_SHARD = 5


@dataclass(frozen=True)
class PBLink:
    """One dag-pb link: binary CID, name and cumulative size of the linked DAG."""

    hash: bytes
    name: str | None = None
    tsize: int | None = None


@dataclass(frozen=True)
class PBNode:
    """One dag-pb node: its links (in stored order) and its opaque data."""

    links: tuple[PBLink, ...] = ()
    data: bytes | None = None


@dataclass(frozen=True)
class UnixFSData:
    """The UnixFS ``Data`` message carried in a dag-pb node's data."""

    type: UnixFSType
    data: bytes | None = None
    filesize: int | None = None
    blocksizes: tuple[int, ...] = field(default=())
    hash_type: int | None = None
    fanout: int | None = None


_ONE_BYTE_VARINTS: Final = tuple(bytes([value]) for value in range(0x80))
VARINT_BOUND: Final = 2**63  # the multiformats unsigned-varint bound


def compute_varint(value: int) -> bytes:
    """Return ``value`` as an unsigned LEB128 varint (protobuf's, for ``value < 2**63``).

    Requires ``0 <= value < 2**63`` (the multiformats unsigned-varint bound). Encoded here,
    not by ``multiformats.varint.encode``, whose run-time type checks cost more than the
    encoding (an anchor's batch directory writes several varints per leaf).
    """
    if not 0 <= value < VARINT_BOUND:
        raise ValueError(f"a varint holds 0 <= value < 2**63, got {value}")
    if value < 0x80:
        return _ONE_BYTE_VARINTS[value]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return compute_varint((number << 3) | wire)


def _len_field(number: int, payload: bytes) -> bytes:
    return _key(number, WIRE_LEN) + compute_varint(len(payload)) + payload


def encode_pb_link(link: PBLink) -> bytes:
    """Return the protobuf bytes of one ``PBLink``."""
    out = _len_field(1, link.hash)
    if link.name is not None:
        out += _len_field(2, link.name.encode("utf-8"))
    if link.tsize is not None:
        out += _key(3, WIRE_VARINT) + compute_varint(link.tsize)
    return out


def encode_pb_node(links: Iterable[PBLink], data: bytes | None) -> bytes:
    """Return the canonical dag-pb bytes of a node: links first, then data (as go-codec-dagpb)."""
    parts = [_len_field(2, encode_pb_link(link)) for link in links]
    if data is not None:
        parts.append(_len_field(1, data))
    return b"".join(parts)


def encode_unixfs(message: UnixFSData) -> bytes:
    """Return the protobuf bytes of a UnixFS ``Data`` message (fields in number order)."""
    out = _key(1, WIRE_VARINT) + compute_varint(int(message.type))
    if message.data is not None:
        out += _len_field(2, message.data)
    if message.filesize is not None:
        out += _key(3, WIRE_VARINT) + compute_varint(message.filesize)
    for size in message.blocksizes:
        out += _key(4, WIRE_VARINT) + compute_varint(size)
    if message.hash_type is not None:
        out += _key(5, WIRE_VARINT) + compute_varint(message.hash_type)
    if message.fanout is not None:
        out += _key(6, WIRE_VARINT) + compute_varint(message.fanout)
    return out


MAX_VARINT_BYTES: Final = 9  # the multiformats unsigned-varint limit (values below 2**63)


def decode_varint(data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[int, int] | None:
    """Return ``(value, bytes used)`` of the unsigned varint at ``data[offset:]``, or ``None``
    if ``data`` ends before it does.

    Raises ``ValueError`` for a varint longer than ``MAX_VARINT_BYTES`` or one that is not
    minimal (a trailing zero byte). Decoded here, not by ``multiformats.varint.decode_raw``,
    which validates its argument types on every call (about a millisecond per link of a
    174-link node).
    """
    value = 0
    for i in range(MAX_VARINT_BYTES):
        if offset + i >= len(data):
            return None
        byte = data[offset + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if byte == 0 and i > 0:
                raise ValueError("varint is not minimally encoded")
            return value, i + 1
    raise ValueError(f"varint longer than {MAX_VARINT_BYTES} bytes")


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Return the varint at ``buf[pos:]`` and the position after it.

    Raises ``UnsupportedNode`` if it is truncated, not minimal or longer than 9 bytes.
    """
    try:
        got = decode_varint(buf, pos)
    except ValueError as exc:
        raise UnsupportedNode(f"malformed protobuf varint: {exc}") from None
    if got is None:
        raise UnsupportedNode("malformed protobuf varint: truncated")
    return got[0], pos + got[1]


def _iter_fields(buf: bytes) -> Iterable[tuple[int, int, int | bytes]]:
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == WIRE_VARINT:
            value, pos = _read_varint(buf, pos)
        elif wire == WIRE_LEN:
            length, pos = _read_varint(buf, pos)
            if pos + length > len(buf):
                raise UnsupportedNode("truncated protobuf field")
            value, pos = buf[pos : pos + length], pos + length
        elif wire == WIRE_I64:
            value, pos = int.from_bytes(buf[pos : pos + 8], "little"), pos + 8
        elif wire == WIRE_I32:
            value, pos = int.from_bytes(buf[pos : pos + 4], "little"), pos + 4
        else:
            raise UnsupportedNode(f"protobuf wire type {wire} not supported")
        yield number, wire, value


def decode_pb_node(buf: bytes) -> PBNode:
    """Return the ``PBNode`` decoded from dag-pb bytes.

    Raises ``UnsupportedNode`` if the bytes are not a well-formed dag-pb node.
    """
    links: list[PBLink] = []
    data: bytes | None = None
    for number, wire, value in _iter_fields(buf):
        if number == 2 and wire == WIRE_LEN:
            assert isinstance(value, bytes)
            links.append(_decode_pb_link(value))
        elif number == 1 and wire == WIRE_LEN:
            assert isinstance(value, bytes)
            data = value
        else:
            raise UnsupportedNode(f"unexpected dag-pb field {number}")
    return PBNode(tuple(links), data)


def _decode_pb_link(buf: bytes) -> PBLink:
    hash_: bytes | None = None
    name: str | None = None
    tsize: int | None = None
    for number, _wire, value in _iter_fields(buf):
        if number == 1 and isinstance(value, bytes):
            hash_ = value
        elif number == 2 and isinstance(value, bytes):
            name = value.decode("utf-8", errors="surrogateescape")
        elif number == 3 and isinstance(value, int):
            tsize = value
        else:
            raise UnsupportedNode(f"unexpected dag-pb link field {number}")
    if hash_ is None:
        raise UnsupportedNode("dag-pb link without Hash")
    return PBLink(hash_, name, tsize)


def decode_unixfs(buf: bytes) -> UnixFSData:
    """Return the UnixFS ``Data`` message decoded from ``buf``.

    Raises ``UnsupportedNode`` if ``buf`` is not a UnixFS message.
    """
    type_: int | None = None
    data: bytes | None = None
    filesize: int | None = None
    blocksizes: list[int] = []
    hash_type: int | None = None
    fanout: int | None = None
    for number, _wire, value in _iter_fields(buf):
        if number == 1 and isinstance(value, int):
            type_ = value
        elif number == 2 and isinstance(value, bytes):
            data = value
        elif number == 3 and isinstance(value, int):
            filesize = value
        elif number == 4 and isinstance(value, int):
            blocksizes.append(value)
        elif number == 4 and isinstance(value, bytes):  # tolerate a packed encoding
            pos = 0
            while pos < len(value):
                size, pos = _read_varint(value, pos)
                blocksizes.append(size)
        elif number == 5 and isinstance(value, int):
            hash_type = value
        elif number == 6 and isinstance(value, int):
            fanout = value
        # mode (7) and mtime (8) are metadata we do not use
    if type_ is None:
        raise UnsupportedNode("UnixFS data without Type")
    try:
        kind = UnixFSType(type_)
    except ValueError:
        raise UnsupportedNode(f"unknown UnixFS type {type_}") from None
    return UnixFSData(kind, data, filesize, tuple(blocksizes), hash_type, fanout)
