"""Subsystem-private data: sealed objects under a per-subsystem content key, and key envelopes
that wrap that key for each participant. Both are JSON documents stored in the content store;
``docs/encryption.md`` is the format's specification.

* **Content key**: 32 random bytes per subsystem and *key version*. A payload is sealed with
  AES-256-GCM, a random 96-bit nonce and associated data naming the subsystem and key version
  (``compute_associated_data``). The plaintext is ``salt (32) || payload``; the public
  ``commitment`` is ``SHA-256(salt || payload)``, so a participant can later prove what a CID held
  by revealing salt and payload, while others learn nothing from it.
* **Key envelope**: for one subsystem and key version, the content key wrapped with ECIES
  (``node.crypto.ecies``) for every participant's secp256k1 public key, the wrap bound to
  subsystem, version and recipient address. ``previous`` links to the envelope it replaces.
* **Rotation** (``rotate_envelope``): removing a participant makes a new content key under
  version + 1, wrapped only for those who remain; new data is sealed under it. Data sealed before
  stays under its old key: whoever had that key can still read it (it cannot be taken back).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from Crypto.Cipher import AES
from Crypto.Random import get_random_bytes

from node.crypto import ecies
from node.crypto.errors import CryptoError, DecryptionFailed, MalformedObject, NotARecipient
from node.crypto.keys import PublicKey, compute_address, compute_public_key, normalize_public_key

FORMAT_VERSION: Final = 1
ENVELOPE_TYPE: Final = "collegium/key-envelope"
SEALED_TYPE: Final = "collegium/sealed"
CONTENT_KEY_BYTES: Final = 32
GCM_NONCE_BYTES: Final = 12
GCM_TAG_BYTES: Final = 16
SALT_BYTES: Final = 32
KEY_VERSION_BYTES: Final = 8
DOMAIN_SEALED: Final = b"collegium/sealed/v1"
DOMAIN_KEY_WRAP: Final = b"collegium/key-wrap/v1"
FIRST_KEY_VERSION: Final = 1
#: a JSON document larger than this is not decoded for references by peer sync
MAX_REFERENCE_DOC_BYTES: Final = 1024 * 1024


class ContentStore(Protocol):
    """What sealing needs from the content store (any ``BlockStore``)."""

    def add_bytes(self, data: bytes) -> str:
        """Return the CID of ``data`` after storing it."""
        ...

    def cat(self, cid: str) -> bytes:
        """Return the bytes stored under ``cid``."""
        ...


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


# -- keys and envelopes -----------------------------------------------------------------------


def compute_associated_data(subsystem: str, key_version: int) -> bytes:
    """Return the AES-GCM associated data of a sealed payload:
    ``"collegium/sealed/v1" 0x00 subsystem(UTF-8) 0x00 key_version(uint64 big-endian)``."""
    return (
        DOMAIN_SEALED
        + b"\x00"
        + subsystem.encode("utf-8")
        + b"\x00"
        + key_version.to_bytes(KEY_VERSION_BYTES, "big")
    )


def compute_wrap_info(subsystem: str, key_version: int, address: str) -> bytes:
    """Return the ECIES ``info`` of a wrapped content key: ``"collegium/key-wrap/v1" 0x00
    subsystem 0x00 key_version(uint64 BE) address(20 bytes)``."""
    return (
        DOMAIN_KEY_WRAP
        + b"\x00"
        + subsystem.encode("utf-8")
        + b"\x00"
        + key_version.to_bytes(KEY_VERSION_BYTES, "big")
        + bytes.fromhex(address.removeprefix("0x"))
    )


def compute_commitment(salt: bytes, payload: bytes) -> bytes:
    """Return the public salted hash of a payload: SHA-256(salt || payload)."""
    return hashlib.sha256(salt + payload).digest()


def new_content_key() -> bytes:
    """Return a fresh random 256-bit content key."""
    return get_random_bytes(CONTENT_KEY_BYTES)


def make_envelope(
    subsystem: str,
    key_version: int,
    content_key: bytes,
    recipients: Iterable[Recipient],
    previous: str | None = None,
) -> KeyEnvelope:
    """Return an envelope wrapping ``content_key`` for each recipient (sorted by address).

    Raises ``MalformedObject`` if a recipient's public key does not belong to its address.
    """
    assert len(content_key) == CONTENT_KEY_BYTES and key_version >= FIRST_KEY_VERSION
    wrapped = []
    for recipient in sorted(set(recipients), key=lambda r: r.address.lower()):
        if compute_address(recipient.public_key).lower() != recipient.address.lower():
            raise MalformedObject(f"public key does not belong to {recipient.address}")
        info = compute_wrap_info(subsystem, key_version, recipient.address)
        blob = ecies.encrypt(recipient.public_key, content_key, info)
        public_key = normalize_public_key(recipient.public_key)
        wrapped.append(WrappedKey(recipient.address, public_key, blob))
    return KeyEnvelope(subsystem, key_version, tuple(wrapped), previous)


def open_envelope(envelope: KeyEnvelope, private_key: bytes) -> bytes:
    """Return the content key of ``envelope`` unwrapped with the reader's ``private_key``.

    Raises ``NotARecipient`` if the envelope holds no key for the reader's address and
    ``DecryptionFailed`` if the wrapped key does not authenticate.
    """
    public_key = compute_public_key(private_key)
    address = compute_address(public_key)
    for entry in envelope.recipients:
        if entry.address.lower() == address.lower() and entry.public_key == public_key:
            info = compute_wrap_info(envelope.subsystem, envelope.key_version, entry.address)
            key = ecies.decrypt(private_key, entry.wrapped, info)
            if len(key) != CONTENT_KEY_BYTES:
                raise DecryptionFailed("unwrapped content key has the wrong length")
            return key
    raise NotARecipient(
        f"{address} holds no key of {envelope.subsystem!r} version {envelope.key_version}"
    )


def rotate_envelope(
    current: KeyEnvelope, current_cid: str, recipients: Iterable[Recipient]
) -> tuple[bytes, KeyEnvelope]:
    """Return a new content key and its envelope at ``current.key_version + 1`` for
    ``recipients`` (e.g. everyone but a removed participant), linked to ``current_cid``."""
    key = new_content_key()
    envelope = make_envelope(
        current.subsystem, current.key_version + 1, key, recipients, previous=current_cid
    )
    return key, envelope


# -- sealing -----------------------------------------------------------------------------------


def seal(
    content_key: bytes,
    subsystem: str,
    key_version: int,
    envelope: str,
    payload: bytes,
    salt: bytes | None = None,
) -> Sealed:
    """Return ``payload`` sealed with AES-256-GCM under ``content_key`` (random nonce; random
    salt unless the caller passes the 32-byte ``salt`` it also commits to elsewhere)."""
    salt = get_random_bytes(SALT_BYTES) if salt is None else bytes(salt)
    assert len(salt) == SALT_BYTES
    nonce = get_random_bytes(GCM_NONCE_BYTES)
    cipher = AES.new(content_key, AES.MODE_GCM, nonce=nonce, mac_len=GCM_TAG_BYTES)
    cipher.update(compute_associated_data(subsystem, key_version))
    ciphertext, tag = cipher.encrypt_and_digest(salt + payload)
    return Sealed(
        subsystem,
        key_version,
        envelope,
        nonce,
        ciphertext + tag,
        compute_commitment(salt, payload),
    )


def unseal(content_key: bytes, sealed: Sealed) -> bytes:
    """Return the payload of ``sealed``.

    Raises ``DecryptionFailed`` if it does not authenticate under ``content_key`` and its
    subsystem and key version (wrong key, tampered bytes or header) or if the commitment differs.
    """
    return unseal_salted(content_key, sealed)[1]


def unseal_salted(content_key: bytes, sealed: Sealed) -> tuple[bytes, bytes]:
    """Return ``(salt, payload)`` of ``sealed``: the salt lets a reader check other salted
    commitments to the same payload (e.g. a private transaction's ``payloadHash``).

    Raises ``DecryptionFailed`` as :func:`unseal` does.
    """
    if len(sealed.nonce) != GCM_NONCE_BYTES or len(sealed.ciphertext) < GCM_TAG_BYTES + SALT_BYTES:
        raise DecryptionFailed("sealed object is truncated")
    body, tag = sealed.ciphertext[:-GCM_TAG_BYTES], sealed.ciphertext[-GCM_TAG_BYTES:]
    cipher = AES.new(content_key, AES.MODE_GCM, nonce=sealed.nonce, mac_len=GCM_TAG_BYTES)
    cipher.update(compute_associated_data(sealed.subsystem, sealed.key_version))
    try:
        plaintext = cipher.decrypt_and_verify(body, tag)
    except ValueError:
        raise DecryptionFailed("sealed payload did not authenticate") from None
    salt, payload = plaintext[:SALT_BYTES], plaintext[SALT_BYTES:]
    if not hmac.compare_digest(compute_commitment(salt, payload), sealed.commitment):
        raise DecryptionFailed("sealed payload does not match its public commitment")
    return bytes(salt), bytes(payload)


# -- content-store objects ---------------------------------------------------------------------


def put_envelope(store: ContentStore, envelope: KeyEnvelope) -> str:
    """Return the CID of ``envelope`` after adding it to the store."""
    return store.add_bytes(envelope.encode())


def get_envelope(store: ContentStore, cid: str) -> KeyEnvelope:
    """Return the envelope stored at ``cid``; raises ``MalformedObject`` or a ``StoreError``."""
    return decode_envelope(store.cat(cid))


def put_sealed(
    store: ContentStore,
    content_key: bytes,
    envelope_cid: str,
    envelope: KeyEnvelope,
    payload: bytes,
) -> str:
    """Return the CID of ``payload`` sealed under ``envelope``'s key and added to the store."""
    sealed = seal(content_key, envelope.subsystem, envelope.key_version, envelope_cid, payload)
    return store.add_bytes(sealed.encode())


def read_sealed(store: ContentStore, cid: str, private_key: bytes) -> bytes:
    """Return the payload of the sealed object at ``cid``, as the holder of ``private_key``.

    Raises ``NotARecipient`` (not a participant at that key version), ``DecryptionFailed``
    (tampered), ``MalformedObject`` (envelope of another subsystem or version) or a
    ``StoreError``.
    """
    sealed = decode_sealed(store.cat(cid))
    envelope = get_envelope(store, sealed.envelope)
    if (envelope.subsystem, envelope.key_version) != (sealed.subsystem, sealed.key_version):
        raise MalformedObject(
            f"envelope {sealed.envelope} is for {envelope.subsystem!r} v{envelope.key_version}, "
            f"not {sealed.subsystem!r} v{sealed.key_version}"
        )
    return unseal(open_envelope(envelope, private_key), sealed)


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
