"""Signature recovery: the signer of an EIP-712 digest, canonical signatures only (EIP-2
low ``s``, ``v`` 27 or 28), through libsecp256k1 (coincurve) when installed."""

from __future__ import annotations

import functools

from eth_keys import KeyAPI
from eth_utils import to_checksum_address

from node.eip712 import SECP256K1_HALF_N, SECP256K1_N
from node.errors import ValidationError
from node.hashing import keccak256

SIGNATURE_LEN = 65
V_OFFSET = 27

_KEYS = KeyAPI()  # the eth-keys default backend: coincurve when installed

try:  # direct libsecp256k1 recovery; eth-keys adds ~100 us of checks and conversions
    import coincurve as _coincurve
except ImportError:  # pragma: no cover - depends on the environment
    _coincurve = None  # type: ignore[assignment]


@functools.lru_cache(maxsize=65536)  # signers and parties recur: most calls are hits
def compute_checksum_address(address: bytes) -> str:
    """Return the EIP-55 checksum form of a 20-byte address."""
    return str(to_checksum_address(address))


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
