"""Business transactions: the EIP-712 typed data a wallet signs, and its canonical leaf.

A business transaction is signed by a wallet with EIP-712 (``eth_signTypedData_v4``).
The domain binds it to one chain and one registry contract, so a signature cannot be
replayed on another deployment; the per-signer ``nonce`` stops replays on this one.

The canonical body stored in the content store and hashed into the ledger is the RLP
list::

    [LEAF_VERSION, chain_id, registry, subsystem, kind, [party...], amount, currency,
     memo, payload, nonce, timestamp, signature]

from which anyone can recompute the EIP-712 digest and recover the signer.

A *private* transaction (``PrivateBusinessTransaction``, leaf version 2) keeps its
business content in an encrypted payload: only the subsystem, the kind, the CID of the
ciphertext and ``payloadHash = keccak256(salt || plaintext)`` are signed and public::

    [PRIVATE_LEAF_VERSION, chain_id, registry, subsystem, kind, payload, payload_hash,
     nonce, timestamp, signature]

It is a separate EIP-712 primary type (its own type hash), so the public type and every
signature made with it are unchanged, and neither signature can be taken for the other.
A participant who can decrypt the payload proves its content by revealing the salt.

The signing digest is computed here directly (type hashes and the domain separator are
constants), which is several times faster than a generic EIP-712 encoder; a test checks
it byte for byte against ``eth_account``. Recovery uses ``eth_keys`` (coincurve backend
when installed).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, NewType

import rlp
from eth_account import Account
from eth_keys import KeyAPI
from eth_utils import is_hex_address, to_bytes, to_checksum_address

from node.errors import ValidationError
from node.hashing import keccak256

TxId = NewType("TxId", str)

EIP712_DOMAIN_NAME = "Collegium"
EIP712_DOMAIN_VERSION = "1"
PRIMARY_TYPE = "BusinessTransaction"
PRIVATE_TYPE = "PrivateBusinessTransaction"
LEAF_VERSION = 1
PRIVATE_LEAF_VERSION = 2
PAYLOAD_HASH_LEN = 32

MAX_SUBSYSTEM_LEN = 64
MAX_KIND_LEN = 32
MAX_PARTIES = 16
MAX_CURRENCY_LEN = 16
MAX_MEMO_LEN = 1024
MAX_PAYLOAD_LEN = 128
MAX_AMOUNT_DIGITS = 38
MAX_AMOUNT_DECIMALS = 18
MAX_UINT64 = 2**64 - 1
#: the largest ``nonce`` / ``timestamp`` accepted: the index keeps them in signed 64-bit
#: columns (SQLite INTEGER, PostgreSQL BIGINT), so the EIP-712 ``uint64`` is bounded to this
MAX_INDEX_INT = 2**63 - 1
ZERO_ADDRESS = "0x" + "00" * 20
SIGNATURE_LEN = 65
ADDRESS_HEX_LEN = 40
V_OFFSET = 27

_KEYS = KeyAPI()  # the eth-keys default backend: coincurve when installed

try:  # direct libsecp256k1 recovery; eth-keys adds ~100 us of checks and conversions
    import coincurve as _coincurve
except ImportError:  # pragma: no cover - depends on the environment
    _coincurve = None  # type: ignore[assignment]

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
#: EIP-2: of the two valid ``s`` of a signature only the low one (``s <= n/2``) is accepted
SECP256K1_HALF_N = SECP256K1_N // 2


@functools.lru_cache(maxsize=65536)  # signers and parties recur: most calls are hits
def compute_checksum_address(address: bytes) -> str:
    """Return the EIP-55 checksum form of a 20-byte address."""
    return str(to_checksum_address(address))


# used with ``fullmatch`` only: ``re.match(r"...$")`` would accept a trailing newline
NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]*")
KIND_RE = re.compile(r"[a-z][a-z0-9_]*")
CURRENCY_RE = re.compile(r"[A-Z0-9]{1,16}")
AMOUNT_RE = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]*[1-9])?")
HASH_RE = re.compile(r"0x[0-9a-f]{64}")

#: Kinds every subsystem understands; others are allowed if they match ``KIND_RE``.
KNOWN_KINDS = ("invoice", "payment", "order", "contract", "decision", "transfer", "note")

EIP712_TYPES: dict[str, list[dict[str, str]]] = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    PRIMARY_TYPE: [
        {"name": "subsystem", "type": "string"},
        {"name": "kind", "type": "string"},
        {"name": "parties", "type": "address[]"},
        {"name": "amount", "type": "string"},
        {"name": "currency", "type": "string"},
        {"name": "memo", "type": "string"},
        {"name": "payload", "type": "string"},
        {"name": "nonce", "type": "uint64"},
        {"name": "timestamp", "type": "uint64"},
    ],
}

PRIVATE_EIP712_TYPES: dict[str, list[dict[str, str]]] = {
    "EIP712Domain": EIP712_TYPES["EIP712Domain"],
    PRIVATE_TYPE: [
        {"name": "subsystem", "type": "string"},
        {"name": "kind", "type": "string"},
        {"name": "payload", "type": "string"},
        {"name": "payloadHash", "type": "bytes32"},
        {"name": "nonce", "type": "uint64"},
        {"name": "timestamp", "type": "uint64"},
    ],
}


def compute_type_string(name: str, fields: list[dict[str, str]]) -> str:
    """Return the EIP-712 ``encodeType`` string of a struct without nested structs."""
    return f"{name}(" + ",".join(f"{f['type']} {f['name']}" for f in fields) + ")"


DOMAIN_TYPEHASH = keccak256(
    compute_type_string("EIP712Domain", EIP712_TYPES["EIP712Domain"]).encode()
)
PUBLIC_TYPEHASH = keccak256(compute_type_string(PRIMARY_TYPE, EIP712_TYPES[PRIMARY_TYPE]).encode())
PRIVATE_TYPEHASH = keccak256(
    compute_type_string(PRIVATE_TYPE, PRIVATE_EIP712_TYPES[PRIVATE_TYPE]).encode()
)


@dataclass(frozen=True)
class Domain:
    """The EIP-712 domain: one chain, one registry."""

    chain_id: int
    verifying_contract: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "verifying_contract", to_checksum_address(self.verifying_contract))
        object.__setattr__(self, "separator", compute_domain_separator(self))

    def as_dict(self) -> dict[str, Any]:
        """Return the domain as EIP-712 ``domain`` JSON."""
        return {
            "name": EIP712_DOMAIN_NAME,
            "version": EIP712_DOMAIN_VERSION,
            "chainId": self.chain_id,
            "verifyingContract": to_checksum_address(self.verifying_contract),
        }


@dataclass(frozen=True)
class BusinessTx:
    """The fields a wallet signs (the EIP-712 ``message``)."""

    subsystem: str
    kind: str
    parties: tuple[str, ...]
    amount: str
    currency: str
    memo: str
    payload: str
    nonce: int
    timestamp: int
    private: bool = False
    payload_hash: str = ""  # private only: 0x-hex keccak256(salt || plaintext)

    @property
    def primary_type(self) -> str:
        """Return the EIP-712 primary type this transaction is signed as."""
        return PRIVATE_TYPE if self.private else PRIMARY_TYPE

    def as_message(self) -> dict[str, Any]:
        """Return the EIP-712 ``message`` JSON of this transaction."""
        if self.private:
            return {
                "subsystem": self.subsystem,
                "kind": self.kind,
                "payload": self.payload,
                "payloadHash": self.payload_hash,
                "nonce": self.nonce,
                "timestamp": self.timestamp,
            }
        return {
            "subsystem": self.subsystem,
            "kind": self.kind,
            "parties": list(self.parties),
            "amount": self.amount,
            "currency": self.currency,
            "memo": self.memo,
            "payload": self.payload,
            "nonce": self.nonce,
            "timestamp": self.timestamp,
        }


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


def typed_data(domain: Domain, tx: BusinessTx) -> dict[str, Any]:
    """Return the full EIP-712 typed-data document a wallet signs."""
    return {
        "types": PRIVATE_EIP712_TYPES if tx.private else EIP712_TYPES,
        "primaryType": tx.primary_type,
        "domain": domain.as_dict(),
        "message": tx.as_message(),
    }


def typed_data_schema(domain: Domain) -> dict[str, Any]:
    """Return the EIP-712 ``types``, ``primaryType`` and ``domain`` (no message); the
    ``private`` key holds the same for private transactions."""
    return {
        "types": EIP712_TYPES,
        "primaryType": PRIMARY_TYPE,
        "domain": domain.as_dict(),
        "private": {"types": PRIVATE_EIP712_TYPES, "primaryType": PRIVATE_TYPE},
    }


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _address_bytes(address: str) -> bytes:
    """Return the 20 bytes of a hex address (what ``to_bytes(hexstr=…)`` returns, faster)."""
    digits = address[2:] if address[:2] in ("0x", "0X") else address
    if len(digits) == ADDRESS_HEX_LEN:
        try:
            return bytes.fromhex(digits)
        except ValueError:
            pass
    return bytes(to_bytes(hexstr=address))


def compute_domain_separator(domain: Domain) -> bytes:
    """Return the EIP-712 ``hashStruct(EIP712Domain)`` of ``domain``."""
    return bytes(
        keccak256(
            DOMAIN_TYPEHASH
            + keccak256(EIP712_DOMAIN_NAME.encode())
            + keccak256(EIP712_DOMAIN_VERSION.encode())
            + _word(domain.chain_id)
            + bytes(12)
            + to_bytes(hexstr=domain.verifying_contract)
        )
    )


def compute_struct_hash(tx: BusinessTx) -> bytes:
    """Return the EIP-712 ``hashStruct`` of ``tx`` (public or private type)."""
    if tx.private:
        return bytes(
            keccak256(
                PRIVATE_TYPEHASH
                + keccak256(tx.subsystem.encode())
                + keccak256(tx.kind.encode())
                + keccak256(tx.payload.encode())
                + to_bytes(hexstr=tx.payload_hash).rjust(32, b"\0")
                + _word(tx.nonce)
                + _word(tx.timestamp)
            )
        )
    parties = b"".join(bytes(12) + _address_bytes(p) for p in tx.parties)
    return bytes(
        keccak256(
            PUBLIC_TYPEHASH
            + keccak256(tx.subsystem.encode())
            + keccak256(tx.kind.encode())
            + keccak256(parties)
            + keccak256(tx.amount.encode())
            + keccak256(tx.currency.encode())
            + keccak256(tx.memo.encode())
            + keccak256(tx.payload.encode())
            + _word(tx.nonce)
            + _word(tx.timestamp)
        )
    )


def compute_digest(domain: Domain, tx: BusinessTx) -> bytes:
    """Return the EIP-712 digest ``keccak256(0x19 0x01 || domainSeparator || hashStruct)``."""
    separator: bytes = getattr(domain, "separator")  # noqa: B009 - set in __post_init__
    return bytes(keccak256(b"\x19\x01" + separator + compute_struct_hash(tx)))


def compute_tx_id(domain: Domain, tx: BusinessTx) -> TxId:
    """Return the transaction id: the EIP-712 signing digest, 0x-hex."""
    return TxId("0x" + compute_digest(domain, tx).hex())


def sign_tx(domain: Domain, tx: BusinessTx, private_key: bytes | str) -> bytes:
    """Return the 65-byte signature of ``tx`` by ``private_key`` (for clients and tests)."""
    signed = Account.sign_typed_data(private_key, full_message=typed_data(domain, tx))
    return bytes(signed.signature)


def recover_signer(domain: Domain, tx: BusinessTx, signature: bytes) -> str:
    """Return the checksum address that produced ``signature`` over ``tx``.

    Raises ``ValidationError`` if the signature is malformed or not recoverable.
    """
    return recover_digest_signer(compute_digest(domain, tx), signature)


def recover_digest_signer(digest: bytes, signature: bytes) -> str:
    """Return the checksum address whose key made the 65-byte ``signature`` of ``digest``.

    Only the canonical form is accepted, so a signature has exactly one encoding: ``v`` is
    27 or 28 (what wallets return for ``eth_signTypedData_v4``) and ``s`` is in the lower
    half of the curve order (EIP-2; libsecp256k1, eth-account and wallets sign so). Raises
    ``ValidationError`` if the signature is malformed, not canonical or not recoverable.
    """
    if len(signature) != SIGNATURE_LEN:
        raise ValidationError(f"signature must be {SIGNATURE_LEN} bytes, got {len(signature)}")
    if signature[64] not in (V_OFFSET, V_OFFSET + 1):
        raise ValidationError(f"signature is not valid: v must be 27 or 28, got {signature[64]}")
    v = signature[64] - V_OFFSET
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    if not (0 < r < SECP256K1_N and 0 < s < SECP256K1_N):
        raise ValidationError("signature is not valid: r or s out of range")
    if s > SECP256K1_HALF_N:
        raise ValidationError(
            "signature is not valid: s is in the upper half of the curve order "
            "(EIP-2: only the low-s form is accepted)"
        )
    if _coincurve is not None:
        try:
            public = _coincurve.PublicKey.from_signature_and_message(
                signature[:64] + bytes([v]), digest, hasher=None
            )
        except Exception as exc:  # libsecp256k1 rejects unrecoverable signatures
            raise ValidationError(f"signature is not valid: {exc}") from exc
        return compute_checksum_address(keccak256(public.format(compressed=False)[1:])[-20:])
    try:
        sig = _KEYS.Signature(vrs=(v, r, s))
        return str(sig.recover_public_key_from_msg_hash(digest).to_checksum_address())
    except Exception as exc:  # eth-keys raises several types for bad (r, s, v)
        raise ValidationError(f"signature is not valid: {exc}") from exc


def validate_tx(tx: BusinessTx) -> None:
    """Check every field's format and size; raise ``ValidationError`` naming the field."""
    if not (1 <= len(tx.subsystem) <= MAX_SUBSYSTEM_LEN) or not NAME_RE.fullmatch(tx.subsystem):
        raise ValidationError(
            f"subsystem must be 1..{MAX_SUBSYSTEM_LEN} chars of [a-z0-9._-], got {tx.subsystem!r}"
        )
    if not (1 <= len(tx.kind) <= MAX_KIND_LEN) or not KIND_RE.fullmatch(tx.kind):
        raise ValidationError(f"kind must be 1..{MAX_KIND_LEN} chars of [a-z0-9_], got {tx.kind!r}")
    if tx.private:
        _validate_private(tx)
    if len(tx.parties) > MAX_PARTIES:
        raise ValidationError(f"at most {MAX_PARTIES} parties, got {len(tx.parties)}")
    seen: set[str] = set()
    for party in tx.parties:
        if not is_hex_address(party):
            raise ValidationError(f"party is not an address: {party!r}")
        key = party.lower()
        if key == ZERO_ADDRESS:
            raise ValidationError("parties: the zero address cannot be a party")
        if key in seen:
            raise ValidationError(f"parties: {party} is listed more than once")
        seen.add(key)
    if not tx.private:
        validate_amount(tx.amount)
        if not CURRENCY_RE.fullmatch(tx.currency):
            raise ValidationError(f"currency must be 1..16 chars of [A-Z0-9], got {tx.currency!r}")
        if tx.payload_hash:
            raise ValidationError("payload_hash is only for private transactions")
    if len(tx.memo.encode()) > MAX_MEMO_LEN:
        raise ValidationError(f"memo is longer than {MAX_MEMO_LEN} bytes")
    if len(tx.payload) > MAX_PAYLOAD_LEN:
        raise ValidationError(f"payload CID is longer than {MAX_PAYLOAD_LEN} chars")
    for name, value in (("nonce", tx.nonce), ("timestamp", tx.timestamp)):
        if not 0 <= value <= MAX_INDEX_INT:
            raise ValidationError(
                f"{name} must be an integer in 0..{MAX_INDEX_INT} (what the index stores), "
                f"got {value}"
            )


def _validate_private(tx: BusinessTx) -> None:
    if tx.parties or tx.amount or tx.currency or tx.memo:
        raise ValidationError(
            "a private transaction carries parties, amount, currency and memo only inside "
            "its encrypted payload: leave them empty"
        )
    if not tx.payload:
        raise ValidationError("a private transaction needs payload: the CID of its ciphertext")
    if not HASH_RE.fullmatch(tx.payload_hash):
        raise ValidationError(
            "payload_hash must be 0x + 64 lowercase hex: keccak256(salt || plaintext), "
            f"got {tx.payload_hash!r}"
        )


def compute_payload_hash(salt: bytes, plaintext: bytes) -> str:
    """Return the payload commitment of a private transaction: keccak256(salt || plaintext)."""
    return "0x" + keccak256(salt + plaintext).hex()


def validate_amount(amount: str) -> Decimal:
    """Return ``amount`` as an exact ``Decimal``; it must be a canonical non-negative decimal."""
    if not AMOUNT_RE.fullmatch(amount):
        raise ValidationError(
            f"amount must be a canonical non-negative decimal string like '12.5', got {amount!r}"
        )
    integer, _, fraction = amount.partition(".")
    if len(integer) + len(fraction) > MAX_AMOUNT_DIGITS or len(fraction) > MAX_AMOUNT_DECIMALS:
        raise ValidationError(
            f"amount has more than {MAX_AMOUNT_DIGITS} digits or {MAX_AMOUNT_DECIMALS} decimals"
        )
    try:
        return Decimal(amount)
    except InvalidOperation as exc:  # pragma: no cover - the regex already rules this out
        raise ValidationError(f"amount is not a decimal: {amount!r}") from exc


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


def encode_leaf(domain: Domain, tx: BusinessTx, signature: bytes) -> bytes:
    """Return the canonical RLP encoding of a signed transaction."""
    if tx.private:
        return compute_rlp(
            [
                PRIVATE_LEAF_VERSION,
                domain.chain_id,
                bytes.fromhex(domain.verifying_contract[2:]),
                tx.subsystem.encode(),
                tx.kind.encode(),
                tx.payload.encode(),
                to_bytes(hexstr=tx.payload_hash),
                tx.nonce,
                tx.timestamp,
                signature,
            ]
        )
    return compute_rlp(
        [
            LEAF_VERSION,
            domain.chain_id,
            bytes.fromhex(domain.verifying_contract[2:]),
            tx.subsystem.encode(),
            tx.kind.encode(),
            [bytes.fromhex(p[2:]) for p in tx.parties],
            tx.amount.encode(),
            tx.currency.encode(),
            tx.memo.encode(),
            tx.payload.encode(),
            tx.nonce,
            tx.timestamp,
            signature,
        ]
    )


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
