"""secp256k1 public keys of participants, recovered from signatures they made.

A participant never has to publish a key by hand: any EIP-191 ``personal_sign`` signature (their
SIWE login message, or a signed "publish my encryption key" message) yields their public key by
ECDSA public-key recovery, and the key's Ethereum address proves whose it is.
"""

from __future__ import annotations

from typing import Final, NewType

import coincurve
from eth_account.messages import encode_defunct
from eth_keys import keys
from eth_utils import to_checksum_address

from node.crypto.errors import InvalidSignature
from node.hashing import keccak256

PublicKey = NewType("PublicKey", bytes)
"""A secp256k1 public key, SEC1 compressed (33 bytes)."""

COMPRESSED_KEY_BYTES: Final = 33
UNCOMPRESSED_KEY_BYTES: Final = 65
RAW_KEY_BYTES: Final = 64  # eth-keys form: x || y without the 0x04 prefix
PRIVATE_KEY_BYTES: Final = 32
SIGNATURE_BYTES: Final = 65
EIP191_MARKER: Final = b"\x19"  # every EIP-191 signed-data envelope starts with this byte
ETH_V_OFFSET: Final = 27

KEY_ANNOUNCEMENT_TEMPLATE: Final = (
    "Collegium: publish my encryption key\naddress: {address}\nsubsystem: {subsystem}"
)
"""A message a participant may sign (personal_sign) so that nodes can recover their key."""


def compute_eip191_hash(message: str | bytes) -> bytes:
    """Return the EIP-191 (``personal_sign``, version ``E``) hash of ``message``: keccak256 of
    the envelope ``eth_account.messages.encode_defunct`` builds."""
    data = message.encode("utf-8") if isinstance(message, str) else bytes(message)
    signable = encode_defunct(primitive=data)
    return keccak256(EIP191_MARKER + signable.version + signable.header + signable.body)


def normalize_public_key(public_key: bytes) -> PublicKey:
    """Return ``public_key`` (33-byte compressed, 65-byte uncompressed or 64-byte raw) compressed.

    Raises ``InvalidSignature`` if it is not a point on secp256k1.
    """
    data = bytes(public_key)
    if len(data) == RAW_KEY_BYTES:
        data = b"\x04" + data
    try:
        return PublicKey(coincurve.PublicKey(data).format(compressed=True))
    except (ValueError, TypeError) as exc:
        raise InvalidSignature(f"not a secp256k1 public key: {exc}") from None


def compute_public_key(private_key: bytes) -> PublicKey:
    """Return the compressed public key of a 32-byte private key."""
    assert len(private_key) == PRIVATE_KEY_BYTES
    return PublicKey(coincurve.PrivateKey(bytes(private_key)).public_key.format(compressed=True))


def compute_address(public_key: bytes) -> str:
    """Return the checksummed Ethereum address of ``public_key``."""
    raw = coincurve.PublicKey(normalize_public_key(public_key)).format(compressed=False)[1:]
    return str(to_checksum_address(keccak256(raw)[-20:]))


def recover_public_key(message: str | bytes, signature: bytes | str) -> PublicKey:
    """Return the public key that made ``signature`` (65 bytes r || s || v, hex allowed) over the
    EIP-191 ``personal_sign`` message ``message``.

    Raises ``InvalidSignature`` if the signature is malformed or recovers no key.
    """
    sig = bytes.fromhex(signature.removeprefix("0x")) if isinstance(signature, str) else signature
    if len(sig) != SIGNATURE_BYTES:
        raise InvalidSignature(f"a signature has {SIGNATURE_BYTES} bytes, got {len(sig)}")
    v = sig[64] - ETH_V_OFFSET if sig[64] >= ETH_V_OFFSET else sig[64]
    try:
        signature_obj = keys.Signature(
            vrs=(v, int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big"))
        )
        recovered = signature_obj.recover_public_key_from_msg_hash(compute_eip191_hash(message))
    except Exception as exc:  # eth-keys raises BadSignature, ValidationError, ValueError
        raise InvalidSignature(f"cannot recover a key from the signature: {exc}") from None
    return normalize_public_key(recovered.to_bytes())


def recover_participant_key(
    address: str, message: str | bytes, signature: bytes | str
) -> PublicKey:
    """Return ``address``'s public key recovered from its signature over ``message``.

    Raises ``InvalidSignature`` if the signature was made by another address.
    """
    public_key = recover_public_key(message, signature)
    signer = compute_address(public_key)
    if signer.lower() != address.lower():
        raise InvalidSignature(f"signature made by {signer}, expected {address}")
    return public_key
