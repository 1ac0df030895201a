"""The documents of subsystem-private data: key envelopes and sealed objects as JSON.

:class:`KeyEnvelope` and :class:`Sealed` encode to canonical JSON (sorted keys, no spaces,
bytes as base64); :func:`decode_envelope` and :func:`decode_sealed` read them back and
reject anything else as ``MalformedObject``; :func:`compute_references` names the CIDs a
document refers to, for peer sync. ``docs/encryption.md`` is the format's specification; the
cryptography that fills these documents is :mod:`node.crypto.sealed`.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Final

from node.crypto.errors import CryptoError, MalformedObject
from node.crypto.keys import PublicKey, normalize_public_key

FORMAT_VERSION: Final = 1
ENVELOPE_TYPE: Final = "collegium/key-envelope"
SEALED_TYPE: Final = "collegium/sealed"
#: a JSON document larger than this is not decoded for references by peer sync
MAX_REFERENCE_DOC_BYTES: Final = 1024 * 1024


@dataclass(frozen=True)
class Recipient:
    """A participant able to read a subsystem's data: address and secp256k1 public key."""

    address: str
    public_key: PublicKey


@dataclass(frozen=True)
class WrappedKey:
    """The content key wrapped (ECIES) for one participant."""

    address: str
    public_key: PublicKey
    wrapped: bytes


@dataclass(frozen=True)
class KeyEnvelope:
    """The content key of ``subsystem`` at ``key_version``, wrapped for each participant."""

    subsystem: str
    key_version: int
    recipients: tuple[WrappedKey, ...]
    previous: str | None = None

    @property
    def addresses(self) -> tuple[str, ...]:
        """Return the recipients' addresses, in envelope order."""
        return tuple(r.address for r in self.recipients)

    def encode(self) -> bytes:
        """Return the canonical JSON bytes of the envelope (sorted keys, no spaces)."""
        return _encode(
            {
                "type": ENVELOPE_TYPE,
                "version": FORMAT_VERSION,
                "subsystem": self.subsystem,
                "key_version": self.key_version,
                "previous": self.previous,
                "recipients": [
                    {
                        "address": r.address,
                        "public_key": r.public_key.hex(),
                        "wrapped": _b64(r.wrapped),
                    }
                    for r in self.recipients
                ],
            }
        )


@dataclass(frozen=True)
class Sealed:
    """A payload sealed for ``subsystem`` under its content key ``key_version``."""

    subsystem: str
    key_version: int
    envelope: str
    nonce: bytes
    ciphertext: bytes
    commitment: bytes

    def encode(self) -> bytes:
        """Return the canonical JSON bytes of the sealed object."""
        return _encode(
            {
                "type": SEALED_TYPE,
                "version": FORMAT_VERSION,
                "subsystem": self.subsystem,
                "key_version": self.key_version,
                "envelope": self.envelope,
                "nonce": _b64(self.nonce),
                "ciphertext": _b64(self.ciphertext),
                "commitment": self.commitment.hex(),
            }
        )


# -- encoding --------------------------------------------------------------------------------


def _encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise MalformedObject(f"{what} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError as exc:
        raise MalformedObject(f"{what} is not base64: {exc}") from None


def _load(data: bytes, expected_type: str) -> dict[str, Any]:
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedObject(f"not a JSON document: {exc}") from None
    if not isinstance(document, dict) or document.get("type") != expected_type:
        raise MalformedObject(f"not a {expected_type} document")
    if document.get("version") != FORMAT_VERSION:
        raise MalformedObject(f"unsupported {expected_type} version {document.get('version')!r}")
    if not isinstance(document.get("subsystem"), str):
        raise MalformedObject("subsystem must be a string")
    key_version = document.get("key_version")
    if not isinstance(key_version, int) or isinstance(key_version, bool) or key_version < 1:
        raise MalformedObject("key_version must be a positive integer")
    return document


def decode_envelope(data: bytes) -> KeyEnvelope:
    """Return the key envelope in ``data``; raises ``MalformedObject`` if it is not one."""
    document = _load(data, ENVELOPE_TYPE)
    recipients = []
    for entry in document.get("recipients") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("address"), str):
            raise MalformedObject("each recipient needs an address")
        try:
            public_key = normalize_public_key(bytes.fromhex(str(entry.get("public_key"))))
        except (ValueError, CryptoError) as exc:
            raise MalformedObject(f"bad public key for {entry['address']}: {exc}") from None
        wrapped = _unb64(entry.get("wrapped"), "wrapped")
        recipients.append(WrappedKey(entry["address"], public_key, wrapped))
    previous = document.get("previous")
    if previous is not None and not isinstance(previous, str):
        raise MalformedObject("previous must be a CID string or null")
    return KeyEnvelope(document["subsystem"], document["key_version"], tuple(recipients), previous)


def decode_sealed(data: bytes) -> Sealed:
    """Return the sealed object in ``data``; raises ``MalformedObject`` if it is not one."""
    document = _load(data, SEALED_TYPE)
    if not isinstance(document.get("envelope"), str):
        raise MalformedObject("envelope must be a CID string")
    try:
        commitment = bytes.fromhex(str(document.get("commitment")))
    except ValueError:
        raise MalformedObject("commitment must be hex") from None
    return Sealed(
        subsystem=document["subsystem"],
        key_version=document["key_version"],
        envelope=document["envelope"],
        nonce=_unb64(document.get("nonce"), "nonce"),
        ciphertext=_unb64(document.get("ciphertext"), "ciphertext"),
        commitment=commitment,
    )


def compute_references(data: bytes) -> tuple[str, ...]:
    """Return the CIDs a sealed object or key envelope refers to (peer sync wants them): a
    sealed object's envelope, an envelope's previous envelope. Anything else: none."""
    if len(data) > MAX_REFERENCE_DOC_BYTES or not data.startswith(b"{"):
        return ()
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return ()
    if not isinstance(document, dict):
        return ()
    kind = document.get("type")
    field = "envelope" if kind == SEALED_TYPE else "previous" if kind == ENVELOPE_TYPE else None
    value = document.get(field) if field else None
    return (value,) if isinstance(value, str) and value else ()
