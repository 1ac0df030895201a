"""CID helpers: parsing, formatting and hashing, all through ``multiformats``.

Inside the store a CID travels as ``multiformats.CID``; on the wire (dag-pb links) as its binary
form. Strings are canonical: CIDv0 in base58btc (``Qm…``), CIDv1 in base32 (``b…``), as kubo prints.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Final

from multiformats import CID, multicodec, multihash, varint

from node.base32 import b32decode_lower, b32encode_lower
from node.storage.errors import BlockCorrupted, BlockMismatch, InvalidCID, UnsupportedNode

CODEC_DAG_PB: Final = "dag-pb"
CODEC_RAW: Final = "raw"
HASH_SHA2_256: Final = "sha2-256"

DAG_PB_CODE: Final[int] = multicodec.get(CODEC_DAG_PB).code
RAW_CODE: Final[int] = multicodec.get(CODEC_RAW).code
SHA2_256_CODE: Final[int] = multicodec.get(HASH_SHA2_256).code

#: Binary prefixes put in front of a sha2-256 multihash to make a binary CIDv1 of each codec.
_V1_PREFIX: Final[dict[str, bytes]] = {
    CODEC_DAG_PB: varint.encode(1) + varint.encode(DAG_PB_CODE),
    CODEC_RAW: varint.encode(1) + varint.encode(RAW_CODE),
}
PARSED_CIDS_CACHED: Final = 16384  # parse_cid keeps this many recently parsed CID strings
_SHA2_256_MH_PREFIX: Final[bytes] = varint.encode(SHA2_256_CODE) + varint.encode(32)


def compute_sha256_multihash(data: bytes) -> bytes:
    """Return the sha2-256 multihash (binary) of ``data``."""
    return _SHA2_256_MH_PREFIX + hashlib.sha256(data).digest()


def compute_cid_bytes(data: bytes, *, codec: str, version: int) -> bytes:
    """Return the binary CID of a block ``data`` with ``codec`` under CID ``version`` (sha2-256).

    Requires ``version == 1`` or (``version == 0`` and ``codec == "dag-pb"``).
    """
    mh = compute_sha256_multihash(data)
    if version == 0:
        assert codec == CODEC_DAG_PB, "CIDv0 is dag-pb only"
        return mh
    assert version == 1, f"unknown CID version {version}"
    return _V1_PREFIX[codec] + mh


def parse_cid(value: str | bytes) -> CID:
    """Return the CID parsed from its string or binary form.

    Raises ``InvalidCID`` if ``value`` is not a CID (bad base, bad varints, unknown codec...).
    """
    if isinstance(value, str):
        value = value.strip()
        if not value:
            raise InvalidCID("empty CID")
        return _parse_cid_text(value)
    return _decode_cid(value)


@functools.lru_cache(maxsize=PARSED_CIDS_CACHED)
def _parse_cid_text(value: str) -> CID:
    # multiformats spends ~100-200 us validating types per CID, and a sync round or a leaf
    # read parses the same CID several times; CID objects are immutable, so they are shared
    return _decode_cid(value)


def _decode_cid(value: str | bytes) -> CID:
    try:
        cid = CID.decode(value)
    except Exception as exc:  # multiformats raises several unrelated exception types
        raise InvalidCID(f"not a CID: {value!r} ({exc})") from None
    if cid.version == 1 and isinstance(value, bytes):
        cid = cid.set(base="base32")
    return cid


_SHA256_CIDV1_LEN: Final = 4 + 32  # version, codec, multihash code and length, digest


def _decode_common_cidv1(value: str) -> bytes | None:
    """Return the binary form of ``value`` if it is the common case, a canonical base32
    CIDv1 (raw or dag-pb, sha2-256), decoded by :mod:`node.base32`; else None (ask
    ``parse_cid``)."""
    if value[:1] != "b" or value != value.lower():
        return None
    try:
        raw = b32decode_lower(value[1:])
    except ValueError:  # not base32 digits, or a length no padding completes
        return None
    if (
        len(raw) == _SHA256_CIDV1_LEN
        and raw[:2] in _V1_PREFIX.values()
        and raw[2:4] == _SHA2_256_MH_PREFIX
        and b32encode_lower(raw) == value[1:]  # canonical (no slack bits)
    ):
        return raw
    return None


def is_cid(value: str) -> bool:
    """Return whether ``value`` parses as a CID (``parse_cid`` succeeds).

    The common case, a base32 CIDv1 (raw or dag-pb, sha2-256), is checked without building a
    ``CID`` object: parsing one costs ~100x more, and the syncer checks every leaf it learns.
    """
    if _decode_common_cidv1(value) is not None:
        return True
    try:
        parse_cid(value)
    except InvalidCID:
        return False
    return True


@functools.lru_cache(maxsize=PARSED_CIDS_CACHED)  # multiformats' encode costs ~200 us
def format_cid(cid: CID) -> str:
    """Return the canonical string of ``cid``: base58btc for v0, base32 for v1 (as kubo prints)."""
    if cid.version == 0:
        return str(cid)
    return cid.encode("base32")


def format_cid_bytes(cid_bytes: bytes) -> str:
    """Return the canonical string of a binary CID (a CIDv1 straight through
    :func:`~node.base32.b32encode_lower`: multiformats' objects cost milliseconds per CID on
    the hot import path)."""
    if cid_bytes[:1] == b"\x01":
        return "b" + b32encode_lower(cid_bytes)
    return format_cid(parse_cid(cid_bytes))


def compute_block_key(cid: CID) -> str:
    """Return the key of a block in the flat file store: its multihash in lower-case base32.

    Keys are per multihash, like kubo's flatfs: a v0 and a v1 CID of the same bytes share a block.
    """
    return compute_block_key_from_multihash(bytes(cid.digest))


def compute_block_key_from_multihash(mh: bytes) -> str:
    """Return the block key of a binary multihash (RFC 4648 base32, lower case, unpadded).

    This is multibase ``base32`` without its ``b`` prefix; :func:`~node.base32.b32encode_lower`
    is used on the hot import path because it is much faster than ``multiformats`` objects
    (and than the standard library's ``base64.b32encode``).
    """
    return b32encode_lower(mh)


def compute_multihash_of_cid_bytes(cid_bytes: bytes) -> bytes:
    """Return the multihash inside a binary CID."""
    if cid_bytes[:2] == _SHA2_256_MH_PREFIX:  # CIDv0 is a bare sha2-256 multihash
        return cid_bytes
    for prefix in _V1_PREFIX.values():
        if cid_bytes.startswith(prefix):
            return cid_bytes[len(prefix) :]
    return bytes(parse_cid(cid_bytes).digest)


def compute_digest_hex(cid: CID, data: bytes) -> str:
    """Return the hex digest of ``data`` under the hash function of ``cid``.

    Raises ``UnsupportedNode`` if that hash function is not available.
    """
    name = cid.hashfun.name
    if name == HASH_SHA2_256:
        return hashlib.sha256(data).hexdigest()
    try:
        mh = multihash.digest(data, name)
    except Exception as exc:
        raise UnsupportedNode(f"hash function {name} is not supported: {exc}") from None
    return bytes(multihash.unwrap(mh)).hex()


def is_block_valid(cid: CID, data: bytes) -> bool:
    """Return whether ``data`` hashes to the digest carried by ``cid``."""
    return compute_digest_hex(cid, data) == bytes(cid.raw_digest).hex()


def check_block(cid: CID, data: bytes, *, stored: bool) -> None:
    """Check that ``data`` hashes to ``cid``.

    Raises ``BlockCorrupted`` (``stored=True``: the copy on our disk is bad) or ``BlockMismatch``
    (``stored=False``: bytes offered from outside are not this CID's).
    """
    actual = compute_digest_hex(cid, data)
    expected = bytes(cid.raw_digest).hex()
    if actual != expected:
        error = BlockCorrupted if stored else BlockMismatch
        raise error(format_cid(cid), expected, actual)


# -- binary CIDs on the hot paths (a CAR stream, a DAG walk): no ``multiformats`` objects -----
# ``multiformats`` validates the types of every call (about 1 ms per CID parsed); these
# helpers take the common case (CIDv0, or CIDv1 raw/dag-pb, over sha2-256) with the stdlib
# and node.base32, and hand anything else to the general functions above.


def compute_cid_bytes_of_name(name: str) -> bytes:
    """Return the binary form of the CID string ``name``; raises ``InvalidCID``."""
    raw = _decode_common_cidv1(name)
    return raw if raw is not None else bytes(parse_cid(name))


def get_codec_of_cid_bytes(cid_bytes: bytes) -> str:
    """Return the codec name (``dag-pb``, ``raw``, ...) of a binary CID."""
    if cid_bytes[:2] == _SHA2_256_MH_PREFIX:
        return CODEC_DAG_PB  # CIDv0
    for codec, prefix in _V1_PREFIX.items():
        if cid_bytes.startswith(prefix):
            return codec
    return str(parse_cid(cid_bytes).codec.name)


def check_block_bytes(cid_bytes: bytes, data: bytes, *, stored: bool) -> None:
    """``check_block`` for a binary CID: raises ``BlockCorrupted`` (``stored``) or
    ``BlockMismatch`` unless ``data`` hashes to it."""
    mh = compute_multihash_of_cid_bytes(cid_bytes)
    if mh[:2] != _SHA2_256_MH_PREFIX:
        check_block(parse_cid(cid_bytes), data, stored=stored)
        return
    actual = hashlib.sha256(data).digest()
    if actual != mh[2:]:
        error = BlockCorrupted if stored else BlockMismatch
        raise error(format_cid_bytes(cid_bytes), mh[2:].hex(), actual.hex())


def compute_block_key_of_cid_bytes(cid_bytes: bytes) -> str:
    """Return the block key (multihash in base32) of a binary CID."""
    return compute_block_key_from_multihash(compute_multihash_of_cid_bytes(cid_bytes))


def check_cid_bytes(cid_bytes: bytes) -> None:
    """Raise ``InvalidCID`` unless ``cid_bytes`` is exactly one binary CID."""
    if len(cid_bytes) == 34 and cid_bytes[:2] == _SHA2_256_MH_PREFIX:
        return  # CIDv0
    if (
        len(cid_bytes) == _SHA256_CIDV1_LEN
        and cid_bytes[:2] in _V1_PREFIX.values()
        and cid_bytes[2:4] == _SHA2_256_MH_PREFIX
    ):
        return
    if bytes(parse_cid(cid_bytes)) != cid_bytes:
        raise InvalidCID(f"not exactly one CID: {cid_bytes.hex()}")
