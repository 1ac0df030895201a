"""Signature recovery: the signer of an EIP-712 digest, canonical signatures only (EIP-2
low ``s``, ``v`` 27 or 28), through libsecp256k1 (coincurve) when installed.

Recovery is most of a transaction's verification (~42 µs of libsecp256k1 on the node's VM);
around it this module does as little as it can: the range checks compare the big-endian
bytes of ``r`` and ``s`` (no integers), libsecp256k1 is called through coincurve's cffi
binding (:func:`recover_public_key`; coincurve's ``PublicKey`` adds ~2 µs of objects and
checks, and is the fallback if its binding module moves) and the address is keccak256 of the
key's 64 bytes, spelled by :func:`~node.hashing.compute_eip55_address`.
"""

from __future__ import annotations

import functools
from typing import Any, Final

from eth_keys import KeyAPI

from node.eip712 import SECP256K1_HALF_N, SECP256K1_N
from node.errors import ValidationError
from node.hashing import compute_eip55_address, keccak256

SIGNATURE_LEN = 65
V_OFFSET = 27
DIGEST_LEN: Final = 32
UNCOMPRESSED_KEY_LEN: Final = 65  # 0x04 || x || y
SECP256K1_EC_UNCOMPRESSED: Final = 2  # libsecp256k1's flag (SECP256K1_FLAGS_TYPE_COMPRESSION)

_ZERO_WORD: Final = bytes(32)
_N_WORD: Final = SECP256K1_N.to_bytes(32, "big")
_HALF_N_WORD: Final = SECP256K1_HALF_N.to_bytes(32, "big")
MAX_RECOVERY_ID: Final = 3
# coincurve's messages (in its order of checks), which recover_digest_signer's errors carry
SIGNATURE_LEN_MESSAGE: Final = "Serialized signature must be 65 bytes long."
RECOVERY_ID_MESSAGE: Final = "Invalid recovery id."
HASH_LEN_MESSAGE: Final = "Message hash must be 32 bytes long."
PARSE_FAILED_MESSAGE: Final = "Failed to parse recoverable signature."
RECOVER_FAILED_MESSAGE: Final = "failed to recover ECDSA public key"

_KEYS = KeyAPI()  # the eth-keys default backend: coincurve when installed

try:  # direct libsecp256k1 recovery; eth-keys adds ~100 us of checks and conversions
    import coincurve as _coincurve
except ImportError:  # pragma: no cover - depends on the environment
    _coincurve = None  # type: ignore[assignment]


def _load_binding() -> tuple[Any, Any, Any]:
    """Return coincurve's cffi ``ffi``, ``lib`` and global context, what its ``PublicKey``
    calls (not a public API: it may move), or three ``None`` without it."""
    if _coincurve is None:  # pragma: no cover - depends on the environment
        return None, None, None
    try:
        from coincurve._libsecp256k1 import ffi, lib
        from coincurve.context import GLOBAL_CONTEXT
    except ImportError:  # pragma: no cover - depends on the coincurve version
        return None, None, None
    return ffi, lib, GLOBAL_CONTEXT.ctx


_ffi, _lib, _ctx = _load_binding()


@functools.lru_cache(maxsize=65536)  # signers and parties recur: most calls are hits
def compute_checksum_address(address: bytes) -> str:
    """Return the EIP-55 checksum form of a 20-byte address."""
    return compute_eip55_address(address)


def recover_public_key(digest: bytes, signature: bytes) -> bytes:
    """Return the uncompressed public key (65 bytes, ``0x04 || x || y``) that made the
    ``signature`` (64 bytes ``r || s`` and a recovery id 0..3) of the 32-byte ``digest``,
    as coincurve's ``PublicKey.from_signature_and_message(..., hasher=None)`` does, with
    its messages. Raises ``ValueError`` if the signature does not parse or recover.

    Calls libsecp256k1 through coincurve's cffi binding with buffers of this call only
    (cffi releases the GIL in the calls: several threads may recover at once).
    """
    if _lib is None:
        return _recover_with_coincurve(digest, signature)
    if len(signature) != SIGNATURE_LEN:
        raise ValueError(SIGNATURE_LEN_MESSAGE)
    if signature[64] > MAX_RECOVERY_ID:
        raise ValueError(RECOVERY_ID_MESSAGE)
    parsed = _ffi.new("secp256k1_ecdsa_recoverable_signature *")
    if not _lib.secp256k1_ecdsa_recoverable_signature_parse_compact(
        _ctx, parsed, signature, signature[64]
    ):
        raise ValueError(PARSE_FAILED_MESSAGE)
    if len(digest) != DIGEST_LEN:
        raise ValueError(HASH_LEN_MESSAGE)
    public = _ffi.new("secp256k1_pubkey *")
    if not _lib.secp256k1_ecdsa_recover(_ctx, public, parsed, digest):
        raise ValueError(RECOVER_FAILED_MESSAGE)
    out = _ffi.new("unsigned char[65]")
    size = _ffi.new("size_t *", UNCOMPRESSED_KEY_LEN)
    _lib.secp256k1_ec_pubkey_serialize(_ctx, out, size, public, SECP256K1_EC_UNCOMPRESSED)
    return bytes(_ffi.buffer(out, UNCOMPRESSED_KEY_LEN))


def _recover_with_coincurve(digest: bytes, signature: bytes) -> bytes:
    """Return what :func:`recover_public_key` does, through coincurve's public API."""
    public = _coincurve.PublicKey.from_signature_and_message(signature, digest, hasher=None)
    return bytes(public.format(compressed=False))


def _check_canonical(signature: bytes) -> None:
    """Raise ``ValidationError`` unless ``signature`` is 65 bytes, ``v`` 27 or 28, ``r`` and
    ``s`` in 1..n-1 and ``s`` at most n/2 (compared as 32-byte big-endian words)."""
    if len(signature) != SIGNATURE_LEN:
        raise ValidationError(f"signature must be {SIGNATURE_LEN} bytes, got {len(signature)}")
    if signature[64] not in (V_OFFSET, V_OFFSET + 1):
        raise ValidationError(f"signature is not valid: v must be 27 or 28, got {signature[64]}")
    r, s = signature[:32], signature[32:64]
    if not (_ZERO_WORD < r < _N_WORD and _ZERO_WORD < s < _N_WORD):
        raise ValidationError("signature is not valid: r or s out of range")
    if s > _HALF_N_WORD:
        raise ValidationError(
            "signature is not valid: s is in the upper half of the curve order "
            "(EIP-2: only the low-s form is accepted)"
        )


def recover_digest_signer(digest: bytes, signature: bytes) -> str:
    """Return the checksum address whose key made the 65-byte ``signature`` of ``digest``.

    Only the canonical form is accepted, so a signature has exactly one encoding: ``v`` is
    27 or 28 (what wallets return for ``eth_signTypedData_v4``) and ``s`` is in the lower
    half of the curve order (EIP-2; libsecp256k1, eth-account and wallets sign so). Raises
    ``ValidationError`` if the signature is malformed, not canonical or not recoverable.
    """
    _check_canonical(signature)
    v = signature[64] - V_OFFSET
    if _coincurve is not None:
        try:
            public = recover_public_key(digest, signature[:64] + bytes((v,)))
        except Exception as exc:  # libsecp256k1 rejects unrecoverable signatures
            raise ValidationError(f"signature is not valid: {exc}") from exc
        return compute_checksum_address(keccak256(public[1:])[-20:])
    try:
        sig = _KEYS.Signature(
            vrs=(v, int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big"))
        )
        return str(sig.recover_public_key_from_msg_hash(digest).to_checksum_address())
    except Exception as exc:  # eth-keys raises several types for bad (r, s, v)
        raise ValidationError(f"signature is not valid: {exc}") from exc
