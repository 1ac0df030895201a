"""The checks of a business transaction's fields: formats, sizes, exact decimal amounts,
and the payload commitment of a private transaction."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from node.errors import ValidationError
from node.hashing import keccak256
from node.ledger.transaction.typeddata import BusinessTx

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

# used with ``fullmatch`` only: ``re.match(r"...$")`` would accept a trailing newline
NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]*")
KIND_RE = re.compile(r"[a-z][a-z0-9_]*")
CURRENCY_RE = re.compile(r"[A-Z0-9]{1,16}")
AMOUNT_RE = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]*[1-9])?")
HASH_RE = re.compile(r"0x[0-9a-f]{64}")
# eth_utils.is_hex_address's pattern: 40 hex digits of any case, optionally after 0x or 0X
HEX_ADDRESS_RE = re.compile(r"(0x)?[0-9a-f]{40}", re.IGNORECASE | re.ASCII)

#: Kinds every subsystem understands; others are allowed if they match ``KIND_RE``.
KNOWN_KINDS = ("invoice", "payment", "order", "contract", "decision", "transfer", "note")


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
        if party[:2] not in ("0x", "0X"):  # the leaf encodes the 20 bytes after the prefix
            raise ValidationError(f"party is not a 0x-prefixed address: {party!r}")
        key = party.lower()
        if key == ZERO_ADDRESS:
            raise ValidationError("parties: the zero address cannot be a party")
        if key in seen:
            raise ValidationError(f"parties: {party} is listed more than once")
        seen.add(key)
    if not tx.private:
        check_amount(tx.amount)
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


def is_hex_address(value: object) -> bool:
    """Return whether ``value`` is a string of 40 hex digits, optionally after ``0x``: what
    ``eth_utils.is_hex_address`` returns (a test compares them), without its call layers."""
    return isinstance(value, str) and HEX_ADDRESS_RE.fullmatch(value) is not None


def check_amount(amount: str) -> None:
    """Raise ``ValidationError`` unless ``amount`` is a canonical non-negative decimal of at
    most ``MAX_AMOUNT_DIGITS`` digits and ``MAX_AMOUNT_DECIMALS`` decimals."""
    if not AMOUNT_RE.fullmatch(amount):
        raise ValidationError(
            f"amount must be a canonical non-negative decimal string like '12.5', got {amount!r}"
        )
    integer, _, fraction = amount.partition(".")
    if len(integer) + len(fraction) > MAX_AMOUNT_DIGITS or len(fraction) > MAX_AMOUNT_DECIMALS:
        raise ValidationError(
            f"amount has more than {MAX_AMOUNT_DIGITS} digits or {MAX_AMOUNT_DECIMALS} decimals"
        )


def validate_amount(amount: str) -> Decimal:
    """Return ``amount`` as an exact ``Decimal``; it must be a canonical non-negative decimal
    (:func:`check_amount`, which verification calls without building the ``Decimal``)."""
    check_amount(amount)
    try:
        return Decimal(amount)
    except InvalidOperation as exc:  # pragma: no cover - the regex already rules this out
        raise ValidationError(f"amount is not a decimal: {amount!r}") from exc
