"""ECIES on secp256k1: wrap a secret for one public key.

``encrypt(Q, m, info)``:

1. ephemeral key pair ``(e, E = e·G)`` (fresh for every call);
2. shared secret ``Z`` = x-coordinate of ``e·Q`` (ECDH, SEC1 §3.3.1), 32 bytes;
3. key ``K`` = HKDF-SHA256(IKM = ``Z``, salt = ``E || Q`` (both compressed), info = ``info``),
   32 bytes (RFC 5869);
4. AES-256-GCM under ``K`` with a random 96-bit nonce ``N`` and associated data ``info``;
5. output ``E (33) || N (12) || ciphertext || tag (16)``.

``info`` binds the wrapped secret to its context (e.g. subsystem, key version and recipient), so a
wrapped key copied into another context fails to authenticate.
"""

from __future__ import annotations

from typing import Final

import coincurve
from Crypto.Cipher import AES
from Crypto.Hash import SHA256
from Crypto.Protocol.KDF import HKDF
from Crypto.Random import get_random_bytes

from node.crypto.errors import DecryptionFailed, MalformedObject
from node.crypto.keys import COMPRESSED_KEY_BYTES, PublicKey, normalize_public_key

AES_KEY_BYTES: Final = 32
GCM_NONCE_BYTES: Final = 12
GCM_TAG_BYTES: Final = 16
ECIES_OVERHEAD: Final = COMPRESSED_KEY_BYTES + GCM_NONCE_BYTES + GCM_TAG_BYTES


def compute_shared_secret(private_key: bytes, public_key: bytes) -> bytes:
    """Return the ECDH shared secret: the 32-byte x-coordinate of ``private_key · public_key``."""
    point = coincurve.PublicKey(normalize_public_key(public_key)).multiply(bytes(private_key))
    return bytes(point.format(compressed=False)[1:33])


def compute_wrapping_key(
    shared_secret: bytes, ephemeral_key: PublicKey, recipient_key: PublicKey, info: bytes
) -> bytes:
    """Return HKDF-SHA256(shared_secret, salt = ephemeral || recipient, info), 32 bytes."""
    key = HKDF(shared_secret, AES_KEY_BYTES, ephemeral_key + recipient_key, SHA256, 1, info)
    assert isinstance(key, bytes)
    return key


def encrypt(public_key: bytes, plaintext: bytes, info: bytes) -> bytes:
    """Return ``plaintext`` encrypted for the holder of ``public_key`` (format in module doc)."""
    recipient = normalize_public_key(public_key)
    ephemeral = coincurve.PrivateKey()
    ephemeral_key = PublicKey(ephemeral.public_key.format(compressed=True))
    shared = compute_shared_secret(ephemeral.secret, recipient)
    key = compute_wrapping_key(shared, ephemeral_key, recipient, info)
    nonce = get_random_bytes(GCM_NONCE_BYTES)
    cipher = AES.new(key, AES.MODE_GCM, nonce=nonce, mac_len=GCM_TAG_BYTES)
    cipher.update(info)
    ciphertext, tag = cipher.encrypt_and_digest(plaintext)
    return ephemeral_key + nonce + ciphertext + tag


def decrypt(private_key: bytes, blob: bytes, info: bytes) -> bytes:
    """Return the plaintext of an ECIES ``blob`` made for ``private_key``'s public key.

    Raises ``MalformedObject`` if ``blob`` is too short or its ephemeral key is not a point, and
    ``DecryptionFailed`` if it does not authenticate (another recipient, other ``info``, tampering).
    """
    if len(blob) < ECIES_OVERHEAD:
        raise MalformedObject(f"ECIES blob of {len(blob)} bytes is shorter than {ECIES_OVERHEAD}")
    ephemeral_key = PublicKey(blob[:COMPRESSED_KEY_BYTES])
    nonce = blob[COMPRESSED_KEY_BYTES : COMPRESSED_KEY_BYTES + GCM_NONCE_BYTES]
    body, tag = blob[COMPRESSED_KEY_BYTES + GCM_NONCE_BYTES : -GCM_TAG_BYTES], blob[-GCM_TAG_BYTES:]
    try:
        shared = compute_shared_secret(private_key, ephemeral_key)
    except (ValueError, TypeError) as exc:
        raise MalformedObject(f"ECIES ephemeral key is not a secp256k1 point: {exc}") from None
    recipient = PublicKey(coincurve.PrivateKey(bytes(private_key)).public_key.format())
    key = compute_wrapping_key(shared, ephemeral_key, recipient, info)
    cipher = AES.new(key, AES.MODE_GCM, nonce=nonce, mac_len=GCM_TAG_BYTES)
    cipher.update(info)
    try:
        return bytes(cipher.decrypt_and_verify(body, tag))
    except ValueError:
        raise DecryptionFailed("ECIES ciphertext did not authenticate") from None
