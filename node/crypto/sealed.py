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

The documents themselves (their dataclasses, JSON encoding and decoding) are
:mod:`node.crypto.documents`, re-exported here.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Final, Protocol

from Crypto.Cipher import AES
from Crypto.Random import get_random_bytes

from node.crypto import ecies
from node.crypto.documents import (
    ENVELOPE_TYPE,
    FORMAT_VERSION,
    MAX_REFERENCE_DOC_BYTES,
    SEALED_TYPE,
    KeyEnvelope,
    Recipient,
    Sealed,
    WrappedKey,
    compute_references,
    decode_envelope,
    decode_sealed,
)
from node.crypto.errors import DecryptionFailed, MalformedObject, NotARecipient
from node.crypto.keys import compute_address, compute_public_key, normalize_public_key

CONTENT_KEY_BYTES: Final = 32
GCM_NONCE_BYTES: Final = 12
GCM_TAG_BYTES: Final = 16
SALT_BYTES: Final = 32
KEY_VERSION_BYTES: Final = 8
DOMAIN_SEALED: Final = b"collegium/sealed/v1"
DOMAIN_KEY_WRAP: Final = b"collegium/key-wrap/v1"
FIRST_KEY_VERSION: Final = 1

__all__ = [
    "CONTENT_KEY_BYTES",
    "DOMAIN_KEY_WRAP",
    "DOMAIN_SEALED",
    "ENVELOPE_TYPE",
    "FIRST_KEY_VERSION",
    "FORMAT_VERSION",
    "GCM_NONCE_BYTES",
    "GCM_TAG_BYTES",
    "KEY_VERSION_BYTES",
    "MAX_REFERENCE_DOC_BYTES",
    "SALT_BYTES",
    "SEALED_TYPE",
    "ContentStore",
    "KeyEnvelope",
    "Recipient",
    "Sealed",
    "WrappedKey",
    "compute_associated_data",
    "compute_commitment",
    "compute_references",
    "compute_wrap_info",
    "decode_envelope",
    "decode_sealed",
    "get_envelope",
    "make_envelope",
    "new_content_key",
    "open_envelope",
    "put_envelope",
    "put_sealed",
    "read_sealed",
    "rotate_envelope",
    "seal",
    "unseal",
    "unseal_salted",
]


class ContentStore(Protocol):
    """What sealing needs from the content store (any ``BlockStore``)."""

    def add_bytes(self, data: bytes) -> str:
        """Return the CID of ``data`` after storing it."""
        ...

    def cat(self, cid: str) -> bytes:
        """Return the bytes stored under ``cid``."""
        ...


# -- keys and envelopes -----------------------------------------------------------------------


def _bind(domain: bytes, subsystem: str, key_version: int) -> bytes:
    """Return ``domain 0x00 subsystem(UTF-8) 0x00 key_version(uint64 big-endian)``."""
    return (
        domain
        + b"\x00"
        + subsystem.encode("utf-8")
        + b"\x00"
        + key_version.to_bytes(KEY_VERSION_BYTES, "big")
    )


def compute_associated_data(subsystem: str, key_version: int) -> bytes:
    """Return the AES-GCM associated data of a sealed payload:
    ``"collegium/sealed/v1" 0x00 subsystem(UTF-8) 0x00 key_version(uint64 big-endian)``."""
    return _bind(DOMAIN_SEALED, subsystem, key_version)


def compute_wrap_info(subsystem: str, key_version: int, address: str) -> bytes:
    """Return the ECIES ``info`` of a wrapped content key: ``"collegium/key-wrap/v1" 0x00
    subsystem 0x00 key_version(uint64 BE) address(20 bytes)``."""
    return _bind(DOMAIN_KEY_WRAP, subsystem, key_version) + bytes.fromhex(
        address.removeprefix("0x")
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
