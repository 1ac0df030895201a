"""A signed business transaction and its canonical RLP leaf: verification
(:func:`verify_signed_tx`), encoding and decoding (layouts: :mod:`node.ledger.transaction`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import rlp
from eth_utils import to_bytes, to_checksum_address

from node.errors import ValidationError
from node.ledger.transaction.signature import recover_digest_signer
from node.ledger.transaction.typeddata import BusinessTx, Domain, TxId, compute_digest
from node.ledger.transaction.validation import validate_tx

LEAF_VERSION = 1
PRIVATE_LEAF_VERSION = 2
PAYLOAD_HASH_LEN = 32


@dataclass(frozen=True)
class SignedBusinessTx:
    """A business transaction with its signature, signer and identifiers."""

    domain: Domain
    tx: BusinessTx
    signature: bytes
    signer: str
    tx_id: TxId

    def encode(self) -> bytes:
        """Return the canonical RLP body (the ledger leaf)."""
        return encode_leaf(self.domain, self.tx, self.signature)


def verify_signed_tx(domain: Domain, tx: BusinessTx, signature: bytes) -> SignedBusinessTx:
    """Return the verified transaction; raise ``ValidationError`` on any defect."""
    validate_tx(tx)
    digest = compute_digest(domain, tx)
    signer = recover_digest_signer(digest, signature)
    return SignedBusinessTx(domain, tx, signature, signer, TxId("0x" + digest.hex()))


RLP_SHORT = 56  # RLP: payloads shorter than this have a one-byte prefix
RLP_STRING = 0x80
RLP_LIST = 0xC0
RLP_LONG_OFFSET = 55


def _rlp_length(length: int, offset: int) -> bytes:
    if length < RLP_SHORT:
        return bytes([offset + length])
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([offset + RLP_LONG_OFFSET + len(encoded)]) + encoded


def compute_rlp(item: bytes | int | list[Any]) -> bytes:
    """Return the RLP encoding of bytes, non-negative ints (minimal big-endian) and lists
    of them; the same bytes as ``rlp.encode``, without its type inference (a test checks)."""
    if isinstance(item, list):
        payload = b"".join([compute_rlp(x) for x in item])
        return _rlp_length(len(payload), RLP_LIST) + payload
    if isinstance(item, int):
        item = item.to_bytes((item.bit_length() + 7) // 8, "big")
    size = len(item)
    if size == 1 and item[0] < RLP_STRING:
        return item
    if size < RLP_SHORT:
        return bytes((RLP_STRING + size,)) + item
    return _rlp_length(size, RLP_STRING) + item


def _rlp_bytes(item: bytes) -> bytes:
    """Return the RLP encoding of a byte string (what ``compute_rlp`` gives bytes)."""
    size = len(item)
    if size < RLP_SHORT:
        if size == 1 and item[0] < RLP_STRING:
            return item
        return bytes((RLP_STRING + size,)) + item
    return _rlp_length(size, RLP_STRING) + item


def _rlp_uint(value: int) -> bytes:
    """Return the RLP encoding of a non-negative integer (minimal big-endian bytes)."""
    if 0 <= value < RLP_STRING:  # a negative one fails in to_bytes, as in compute_rlp
        return bytes((value,)) if value else b"\x80"
    return _rlp_bytes(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@functools.lru_cache(maxsize=64)  # one per domain and leaf version: a node has one domain
def _leaf_head(version: int, chain_id: int, verifying_contract: str) -> bytes:
    """Return the RLP of a leaf's first three items: version, chain id, registry."""
    return b"".join(
        compute_rlp(x) for x in (version, chain_id, bytes.fromhex(verifying_contract[2:]))
    )


def encode_leaf(domain: Domain, tx: BusinessTx, signature: bytes) -> bytes:
    """Return the canonical RLP encoding of a signed transaction: ``compute_rlp`` of its
    list of fields (layouts: :mod:`node.ledger.transaction`), each field encoded directly
    and the domain's first items once per domain (a test compares with ``rlp.encode``)."""
    if tx.private:
        fields = [
            _leaf_head(PRIVATE_LEAF_VERSION, domain.chain_id, domain.verifying_contract),
            _rlp_bytes(tx.subsystem.encode()),
            _rlp_bytes(tx.kind.encode()),
            _rlp_bytes(tx.payload.encode()),
            _rlp_bytes(to_bytes(hexstr=tx.payload_hash)),
        ]
    else:
        parties = b"".join([_rlp_bytes(bytes.fromhex(p[2:])) for p in tx.parties])
        fields = [
            _leaf_head(LEAF_VERSION, domain.chain_id, domain.verifying_contract),
            _rlp_bytes(tx.subsystem.encode()),
            _rlp_bytes(tx.kind.encode()),
            _rlp_length(len(parties), RLP_LIST) + parties,
            _rlp_bytes(tx.amount.encode()),
            _rlp_bytes(tx.currency.encode()),
            _rlp_bytes(tx.memo.encode()),
            _rlp_bytes(tx.payload.encode()),
        ]
    fields += (_rlp_uint(tx.nonce), _rlp_uint(tx.timestamp), _rlp_bytes(signature))
    payload = b"".join(fields)
    return _rlp_length(len(payload), RLP_LIST) + payload


def _int(item: Any) -> int:
    if not isinstance(item, bytes) or (item[:1] == b"\x00"):
        raise ValidationError("leaf integer is not canonical")
    return int.from_bytes(item, "big")


def _leaf_items(body: bytes) -> list[Any]:
    """Return the top-level RLP items of a leaf; raise ``ValidationError`` if it is not one."""
    try:
        items = rlp.decode(body)
    except Exception as exc:
        raise ValidationError(f"leaf is not RLP: {exc}") from exc
    if not isinstance(items, list) or not items:
        raise ValidationError("leaf must be a non-empty RLP list")
    return items


def decode_leaf_payload(body: bytes) -> str:
    """Return the payload field (a CID or "") of the leaf ``body`` without re-verifying its
    signature: what replication needs to follow a leaf to its payload (the leaf itself is
    checked against its CID, which an anchored batch lists). ``decode_leaf`` checks all.

    Raises ``ValidationError`` if ``body`` is not an RLP leaf of a known version.
    """
    items = _leaf_items(body)
    version = _int(items[0])
    position = {LEAF_VERSION: (13, 9), PRIVATE_LEAF_VERSION: (10, 5)}.get(version)
    if position is None or len(items) != position[0]:
        raise ValidationError(f"not a leaf of version 1 or 2 (version {version})")
    try:
        return str(items[position[1]].decode())
    except (UnicodeDecodeError, AttributeError) as exc:
        raise ValidationError(f"leaf has a malformed payload: {exc}") from exc


def decode_leaf(body: bytes) -> SignedBusinessTx:
    """Return the signed transaction encoded in ``body``, signature re-verified.

    Raises ``ValidationError`` if the body is not a canonical leaf of a known version.
    """
    items = _leaf_items(body)
    version = _int(items[0])
    if version == PRIVATE_LEAF_VERSION:
        return _decode_private_leaf(items, body)
    if len(items) != 13:
        raise ValidationError("leaf must be an RLP list of 13 items")
    if version != LEAF_VERSION:
        raise ValidationError(f"unknown leaf version {version}")
    try:
        domain = Domain(_int(items[1]), to_checksum_address(items[2]))
        tx = BusinessTx(
            subsystem=items[3].decode(),
            kind=items[4].decode(),
            parties=tuple(to_checksum_address(p) for p in items[5]),
            amount=items[6].decode(),
            currency=items[7].decode(),
            memo=items[8].decode(),
            payload=items[9].decode(),
            nonce=_int(items[10]),
            timestamp=_int(items[11]),
        )
    except (UnicodeDecodeError, ValueError, TypeError, AttributeError) as exc:
        raise ValidationError(f"leaf has a malformed field: {exc}") from exc
    signed = verify_signed_tx(domain, tx, bytes(items[12]))
    if signed.encode() != body:
        raise ValidationError("leaf is not in canonical encoding")
    return signed


def _decode_private_leaf(items: list[Any], body: bytes) -> SignedBusinessTx:
    if len(items) != 10:
        raise ValidationError("a private leaf must be an RLP list of 10 items")
    try:
        if len(items[6]) != PAYLOAD_HASH_LEN:
            raise ValueError("payload hash is not 32 bytes")
        domain = Domain(_int(items[1]), to_checksum_address(items[2]))
        tx = BusinessTx(
            subsystem=items[3].decode(),
            kind=items[4].decode(),
            parties=(),
            amount="",
            currency="",
            memo="",
            payload=items[5].decode(),
            nonce=_int(items[7]),
            timestamp=_int(items[8]),
            private=True,
            payload_hash="0x" + bytes(items[6]).hex(),
        )
    except (UnicodeDecodeError, ValueError, TypeError, AttributeError) as exc:
        raise ValidationError(f"leaf has a malformed field: {exc}") from exc
    signed = verify_signed_tx(domain, tx, bytes(items[9]))
    if signed.encode() != body:
        raise ValidationError("leaf is not in canonical encoding")
    return signed
