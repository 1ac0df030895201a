"""CARv1 (Content Addressable aRchive) writer and streaming reader.

The format (https://ipld.io/specs/transport/car/carv1/): a varint-prefixed DAG-CBOR header
``{"roots": [CID, ...], "version": 1}``, then sections ``varint(len(cid) + len(data)) | cid |
data``. Varints are unsigned LEB128 (the multiformats unsigned-varint: at most 9 bytes,
minimal). The header is encoded and decoded by ``cbor2`` (CIDs are CBOR tag 42 over a zero
byte and the binary CID, as DAG-CBOR has them; ``canonical=True`` sorts the keys as DAG-CBOR
does); the framing is written here.

:class:`CarReader` parses a stream of byte chunks (an HTTP body) incrementally and never
buffers more than one section; it checks the *framing* only (lengths, CIDs, header) and
raises :class:`CarError` on anything malformed or over the limits it is given. Whether each
block hashes to its CID, and whether it belongs to the DAG asked for, is the caller's to
check (:mod:`node.storage.fetch`): a CAR carries no proof of its own.

| constant                 | value   | meaning                                                |
|--------------------------|---------|--------------------------------------------------------|
| ``MAX_HEADER_BYTES``     | 4 KiB   | a longer header is refused (ours has one root)         |
| ``MAX_VARINT_BYTES``     | 9       | the unsigned-varint spec's limit (values below 2**63)  |
| ``MAX_CID_BYTES``        | 128     | a section whose CID is longer is refused               |
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Final

import cbor2
from multiformats import CID

from node.storage import dagpb
from node.storage.cids import parse_cid
from node.storage.errors import StoreError

CAR_MEDIA_TYPE: Final = "application/vnd.ipld.car"
CAR_VERSION: Final = 1
MAX_HEADER_BYTES: Final = 4096
MAX_VARINT_BYTES: Final = dagpb.MAX_VARINT_BYTES
MAX_CID_BYTES: Final = 128
CID_TAG: Final = 42  # DAG-CBOR's tag for a link


class CarError(StoreError):
    """A CAR stream is malformed, truncated or over a limit; ``truncated`` tells which
    (a cut stream may be the network's fault, a malformed one is the sender's)."""

    def __init__(self, message: str, *, truncated: bool = False) -> None:
        super().__init__(message)
        self.truncated = truncated


def decode_varint(data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[int, int] | None:
    """Return ``(value, bytes used)`` of the varint at ``offset``, or ``None`` if ``data`` ends
    before it does. Raises ``CarError`` for a varint over ``MAX_VARINT_BYTES`` bytes or one
    that is not minimal (a trailing zero byte)."""
    try:
        return dagpb.decode_varint(data, offset)
    except ValueError as exc:
        raise CarError(str(exc)) from None


def encode_header(roots: Iterable[CID]) -> bytes:
    """Return the varint-prefixed CARv1 header naming ``roots``."""
    links = [cbor2.CBORTag(CID_TAG, b"\x00" + bytes(root)) for root in roots]
    body = cbor2.dumps({"version": CAR_VERSION, "roots": links}, canonical=True)
    return dagpb.compute_varint(len(body)) + body


def encode_section(cid: CID | bytes, data: bytes) -> bytes:
    """Return one CAR section: the varint length, the binary CID and the block."""
    cid_bytes = bytes(cid)
    return dagpb.compute_varint(len(cid_bytes) + len(data)) + cid_bytes + data


def iter_car(roots: Iterable[CID], blocks: Iterable[tuple[CID | bytes, bytes]]) -> Iterator[bytes]:
    """Yield a CARv1 stream: the header naming ``roots``, then one piece per block."""
    yield encode_header(roots)
    for cid, data in blocks:
        yield encode_section(cid, data)


def decode_header(body: bytes) -> list[CID]:
    """Return the roots of a CARv1 header body (without its varint). Raises ``CarError``
    unless it is a map with ``version`` 1 and a non-empty ``roots`` list of CIDs."""
    try:
        header = cbor2.loads(body)
    except Exception as exc:  # cbor2 raises several exception types on bad input
        raise CarError(f"CAR header is not valid CBOR: {exc}") from None
    if not isinstance(header, dict) or set(header) != {"version", "roots"}:
        raise CarError("CAR header must be a map of exactly 'version' and 'roots'")
    if header["version"] != CAR_VERSION or isinstance(header["version"], bool):
        raise CarError(f"CAR version {header['version']!r} is not supported (only 1)")
    roots = header["roots"]
    if not isinstance(roots, list) or not roots:
        raise CarError("CAR header roots must be a non-empty list")
    out: list[CID] = []
    for root in roots:
        if not (
            isinstance(root, cbor2.CBORTag)
            and root.tag == CID_TAG
            and isinstance(root.value, bytes)
            and root.value[:1] == b"\x00"
        ):
            raise CarError("CAR header root is not a CID (tag 42)")
        out.append(_parse_cid_bytes(root.value[1:]))
    return out


def _parse_cid_bytes(raw: bytes) -> CID:
    try:
        return parse_cid(raw)
    except StoreError as exc:
        raise CarError(f"invalid CID in CAR: {exc}") from None


def compute_cid_length(frame: bytes | memoryview) -> int:
    """Return the length of the binary CID at the start of a section ``frame``. Raises
    ``CarError`` if the bytes there cannot be a CID (or run past the section)."""
    if frame[:2] == b"\x12\x20":
        length = 34  # CIDv0: a bare sha2-256 multihash
    else:
        pos = 0
        value = 0
        for _ in range(4):  # version, codec, hash function, digest length
            got = decode_varint(frame, pos)
            if got is None:
                raise CarError("CID runs past its section")
            value, used = got
            pos += used
        length = pos + value
    if length > MAX_CID_BYTES or length > len(frame):
        raise CarError("CID runs past its section or is too long")
    return length


class CarReader:
    """Parse a CARv1 stream from ``chunks`` (bytes pieces, any sizes) one section at a time.

    ``roots`` (read first, by :meth:`read_header`) are the header's; iterating yields
    ``(cid, data)`` per section, the CID in binary form (its length checked, nothing else: a
    ``multiformats`` object per block would cost more than the block's hash). A section
    longer than ``max_section_bytes`` (CID and data) is refused before it is buffered;
    ``max_total_bytes`` bounds the whole stream. Raises ``CarError`` (``truncated=True`` when
    the stream ends inside the header or a section).
    """

    def __init__(
        self, chunks: Iterable[bytes], *, max_section_bytes: int, max_total_bytes: int
    ) -> None:
        self._chunks = iter(chunks)
        self._buffer = bytearray()
        self._start = 0  # bytes of _buffer already consumed
        self._total = 0
        self._ended = False
        self.max_section_bytes = max_section_bytes
        self.max_total_bytes = max_total_bytes
        self.roots: list[CID] = []

    def _fill(self) -> bool:
        """Read one more chunk; return False at the end of the stream."""
        if self._ended:
            return False
        for chunk in self._chunks:
            if not chunk:
                continue
            self._total += len(chunk)
            if self._total > self.max_total_bytes:
                raise CarError(f"CAR stream longer than {self.max_total_bytes} bytes")
            if self._start:
                del self._buffer[: self._start]
                self._start = 0
            self._buffer += chunk
            return True
        self._ended = True
        return False

    def _read_frame(self, limit: int, what: str) -> tuple[int, int] | None:
        """Return where the next varint-prefixed frame (without its varint) is in the buffer,
        ``(begin, end)``, ``None`` at a clean end of stream. Raises ``CarError`` for a frame
        over ``limit`` bytes or a cut one."""
        while True:
            got = decode_varint(self._buffer, self._start)
            if got is not None:
                break
            if not self._fill():
                if self._start == len(self._buffer):
                    return None
                raise CarError(f"CAR stream cut inside a {what} length", truncated=True)
        length, used = got
        if length == 0 or length > limit:
            raise CarError(f"CAR {what} of {length} bytes (at most {limit})")
        begin = self._start + used
        while len(self._buffer) < begin + length:
            if not self._fill():
                raise CarError(f"CAR stream cut inside a {what}", truncated=True)
            begin = self._start + used  # _fill may have dropped consumed bytes
        self._start = begin + length
        return begin, begin + length

    def read_header(self) -> list[CID]:
        """Read and return the header's roots."""
        frame = self._read_frame(MAX_HEADER_BYTES, "header")
        if frame is None:
            raise CarError("empty CAR stream", truncated=True)
        self.roots = decode_header(bytes(self._buffer[frame[0] : frame[1]]))
        return self.roots

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        if not self.roots:
            self.read_header()
        while True:
            frame = self._read_frame(self.max_section_bytes, "section")
            if frame is None:
                return
            yield self._split(*frame)

    def _split(self, begin: int, end: int) -> tuple[bytes, bytes]:
        """Return the CID and the block of the section at ``[begin, end)``, copied once (the
        views are released before the buffer grows again)."""
        with memoryview(self._buffer) as buffer, buffer[begin:end] as section:
            cid_length = compute_cid_length(section)
            return bytes(section[:cid_length]), bytes(section[cid_length:])
