"""ECIES (``node.crypto.ecies``): a known-answer vector computed step by step without the module
(pure-Python secp256k1, HKDF from ``hmac``, AES-GCM from pycryptodome), and its failure modes."""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

import coincurve
import pytest
from Crypto.Cipher import AES

from node.crypto import ecies
from node.crypto.errors import DecryptionFailed, MalformedObject

P: Final = 2**256 - 2**32 - 977
GX: Final = 0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798
GY: Final = 0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8

RECIPIENT_SECRET: Final = 0x1111111111111111111111111111111111111111111111111111111111111111
EPHEMERAL_SECRET: Final = 0x2222222222222222222222222222222222222222222222222222222222222222
NONCE: Final = bytes(range(12))
INFO: Final = b"collegium/test/v1"
PLAINTEXT: Final = b"a 32-byte subsystem key, say....."


def point_add(a: tuple[int, int] | None, b: tuple[int, int] | None) -> tuple[int, int] | None:
    if a is None:
        return b
    if b is None:
        return a
    if a[0] == b[0] and (a[1] + b[1]) % P == 0:
        return None
    if a == b:
        slope = 3 * a[0] * a[0] * pow(2 * a[1], -1, P) % P
    else:
        slope = (b[1] - a[1]) * pow(b[0] - a[0], -1, P) % P
    x = (slope * slope - a[0] - b[0]) % P
    return x, (slope * (a[0] - x) - a[1]) % P


def point_mul(k: int, point: tuple[int, int]) -> tuple[int, int]:
    result: tuple[int, int] | None = None
    addend: tuple[int, int] | None = point
    while k:
        if k & 1:
            result = point_add(result, addend)
        addend = point_add(addend, addend)
        k >>= 1
    assert result is not None
    return result


def compressed(point: tuple[int, int]) -> bytes:
    return bytes([2 + (point[1] & 1)]) + point[0].to_bytes(32, "big")


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()  # RFC 5869 extract
    okm, block = b"", b""
    for counter in range(1, -(-length // 32) + 1):  # RFC 5869 expand
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
    return okm[:length]


def expected_blob() -> bytes:
    """Return the ECIES blob of the module doc, computed from the fixed keys and nonce."""
    recipient = compressed(point_mul(RECIPIENT_SECRET, (GX, GY)))
    ephemeral = compressed(point_mul(EPHEMERAL_SECRET, (GX, GY)))
    shared = point_mul(EPHEMERAL_SECRET, point_mul(RECIPIENT_SECRET, (GX, GY)))[0]
    key = hkdf_sha256(shared.to_bytes(32, "big"), ephemeral + recipient, INFO, 32)
    cipher = AES.new(key, AES.MODE_GCM, nonce=NONCE, mac_len=16)
    cipher.update(INFO)
    body, tag = cipher.encrypt_and_digest(PLAINTEXT)
    return ephemeral + NONCE + body + tag


# ``expected_blob()`` as computed once; pinned so that a change of the construction shows here too
KNOWN_ANSWER: Final = bytes.fromhex(
    "02466d7fcae563e5cb09a0d1870bb580344804617879a14949cf22285f1bae3f"
    "27000102030405060708090a0b10e1af088a8934089694b8b4921ef222e732f6"
    "de9cdb123ebbf423604e4fc2e895beee1fb852eb48324e0abadff918cc79"
)


def recipient_public() -> bytes:
    return coincurve.PrivateKey(RECIPIENT_SECRET.to_bytes(32, "big")).public_key.format()


def test_encrypt_with_fixed_ephemeral_key_and_nonce_gives_the_known_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = coincurve.PrivateKey

    def fixed(secret: bytes | None = None) -> coincurve.PrivateKey:
        return real(secret if secret is not None else EPHEMERAL_SECRET.to_bytes(32, "big"))

    monkeypatch.setattr(ecies.coincurve, "PrivateKey", fixed)
    monkeypatch.setattr(ecies, "get_random_bytes", lambda n: NONCE[:n])
    blob = ecies.encrypt(recipient_public(), PLAINTEXT, INFO)
    assert blob == expected_blob() == KNOWN_ANSWER


def test_decrypt_of_the_known_answer() -> None:
    secret = RECIPIENT_SECRET.to_bytes(32, "big")
    assert ecies.decrypt(secret, KNOWN_ANSWER, INFO) == PLAINTEXT


def test_round_trip_and_failures() -> None:
    secret = RECIPIENT_SECRET.to_bytes(32, "big")
    blob = ecies.encrypt(recipient_public(), PLAINTEXT, INFO)
    assert len(blob) == len(PLAINTEXT) + ecies.ECIES_OVERHEAD
    assert ecies.decrypt(secret, blob, INFO) == PLAINTEXT
    with pytest.raises(DecryptionFailed):
        ecies.decrypt(secret, blob, INFO + b"!")  # another context
    with pytest.raises(DecryptionFailed):
        ecies.decrypt(bytes(31) + b"\x01", blob, INFO)  # another recipient
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(DecryptionFailed):
        ecies.decrypt(secret, tampered, INFO)
    with pytest.raises(MalformedObject):
        ecies.decrypt(secret, blob[: ecies.ECIES_OVERHEAD - 1], INFO)
