"""EIP-712 typed data of a business transaction: the domain, the message, the type hashes and
the signing digest (computed directly, not by a generic encoder; a test checks it against
``eth_account``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, NewType

from eth_account import Account
from eth_utils import to_bytes, to_checksum_address

from node.eip712 import Types, domain_json, with_domain
from node.eip712 import typed_data as document
from node.hashing import keccak256
from node.ledger.transaction.signature import recover_digest_signer

TxId = NewType("TxId", str)

EIP712_DOMAIN_NAME = "Collegium"
EIP712_DOMAIN_VERSION = "1"
PRIMARY_TYPE = "BusinessTransaction"
PRIVATE_TYPE = "PrivateBusinessTransaction"
ADDRESS_HEX_LEN = 40

EIP712_TYPES: Types = with_domain(
    PRIMARY_TYPE,
    [
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
)

PRIVATE_EIP712_TYPES: Types = with_domain(
    PRIVATE_TYPE,
    [
        {"name": "subsystem", "type": "string"},
        {"name": "kind", "type": "string"},
        {"name": "payload", "type": "string"},
        {"name": "payloadHash", "type": "bytes32"},
        {"name": "nonce", "type": "uint64"},
        {"name": "timestamp", "type": "uint64"},
    ],
)


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
        return domain_json(
            EIP712_DOMAIN_NAME, EIP712_DOMAIN_VERSION, self.chain_id, self.verifying_contract
        )


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


def typed_data(domain: Domain, tx: BusinessTx) -> dict[str, Any]:
    """Return the full EIP-712 typed-data document a wallet signs."""
    types = PRIVATE_EIP712_TYPES if tx.private else EIP712_TYPES
    return document(types, tx.primary_type, domain.as_dict(), tx.as_message())


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


EMPTY_TEXT_HASH = keccak256(b"")
RECURRING_TEXTS = 4096  # distinct subsystem / kind / currency hashes kept


@functools.lru_cache(maxsize=RECURRING_TEXTS)
def _hash_recurring(text: str) -> bytes:
    """Return keccak256 of a field that recurs across transactions (subsystem, kind,
    currency: a few values each), cached; ``_hash_text`` for the others."""
    return keccak256(text.encode())


def _hash_text(text: str) -> bytes:
    """Return keccak256 of a string field (EIP-712 ``string``): the empty one precomputed."""
    return keccak256(text.encode()) if text else EMPTY_TEXT_HASH


def compute_struct_hash(tx: BusinessTx) -> bytes:
    """Return the EIP-712 ``hashStruct`` of ``tx`` (public or private type): keccak256 of the
    type hash and the encoded fields (joined once, not concatenated pairwise)."""
    if tx.private:
        return keccak256(
            b"".join(
                (
                    PRIVATE_TYPEHASH,
                    _hash_recurring(tx.subsystem),
                    _hash_recurring(tx.kind),
                    _hash_text(tx.payload),
                    to_bytes(hexstr=tx.payload_hash).rjust(32, b"\0"),
                    _word(tx.nonce),
                    _word(tx.timestamp),
                )
            )
        )
    parties = b"".join([bytes(12) + _address_bytes(p) for p in tx.parties])
    return keccak256(
        b"".join(
            (
                PUBLIC_TYPEHASH,
                _hash_recurring(tx.subsystem),
                _hash_recurring(tx.kind),
                keccak256(parties),
                _hash_text(tx.amount),
                _hash_recurring(tx.currency),
                _hash_text(tx.memo),
                _hash_text(tx.payload),
                _word(tx.nonce),
                _word(tx.timestamp),
            )
        )
    )


def compute_digest(domain: Domain, tx: BusinessTx) -> bytes:
    """Return the EIP-712 digest ``keccak256(0x19 0x01 || domainSeparator || hashStruct)``."""
    separator: bytes = getattr(domain, "separator")  # noqa: B009 - set in __post_init__
    return keccak256(b"\x19\x01" + separator + compute_struct_hash(tx))


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
