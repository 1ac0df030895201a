"""Subsystem-private data: AES-256-GCM content keys wrapped per participant with ECIES on
secp256k1 (ECDH + HKDF-SHA256 + AES-GCM); participants' keys recovered from their signatures.
The format is specified in ``docs/encryption.md``.
"""

from __future__ import annotations

from node.crypto.errors import (
    CryptoError,
    DecryptionFailed,
    InvalidSignature,
    MalformedObject,
    NotARecipient,
)
from node.crypto.keys import (
    KEY_ANNOUNCEMENT_TEMPLATE,
    PublicKey,
    compute_address,
    compute_public_key,
    recover_participant_key,
    recover_public_key,
)
from node.crypto.sealed import (
    KeyEnvelope,
    Recipient,
    Sealed,
    get_envelope,
    make_envelope,
    new_content_key,
    open_envelope,
    put_envelope,
    put_sealed,
    read_sealed,
    rotate_envelope,
    seal,
    unseal,
)

__all__ = [
    "KEY_ANNOUNCEMENT_TEMPLATE",
    "CryptoError",
    "DecryptionFailed",
    "InvalidSignature",
    "KeyEnvelope",
    "MalformedObject",
    "NotARecipient",
    "PublicKey",
    "Recipient",
    "Sealed",
    "compute_address",
    "compute_public_key",
    "get_envelope",
    "make_envelope",
    "new_content_key",
    "open_envelope",
    "put_envelope",
    "put_sealed",
    "read_sealed",
    "recover_participant_key",
    "recover_public_key",
    "rotate_envelope",
    "seal",
    "unseal",
]
