"""A user's request signed by their session key (RFC 9421 HTTP Message Signatures).

One profile only (``docs/security.md``): label ``sig1``, the components ``@method @path @query
content-digest collegium-destination collegium-delegation`` in that order, parameters
``created expires nonce keyid alg`` with ``alg="ecdsa-p256-sha256"``; ``Content-Digest`` is
RFC 9530's ``sha-256``. This module builds and reads signature bases and checks the P-256
signature; who the user is, the destination and replays are :mod:`node.auth.requests`'s job.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import http_sfv
from Crypto.Hash import SHA256
from Crypto.PublicKey import ECC
from Crypto.Signature import DSS

from node.auth.errors import NotAuthenticated

SIGNATURE_LABEL: Final = "sig1"
SIGNATURE_ALG: Final = "ecdsa-p256-sha256"
SIGNATURE_HEADER: Final = "signature"
SIGNATURE_INPUT_HEADER: Final = "signature-input"
DIGEST_HEADER: Final = "content-digest"
DESTINATION_HEADER: Final = "collegium-destination"
DELEGATION_HEADER: Final = "collegium-delegation"
COMPONENTS: Final = (
    "@method",
    "@path",
    "@query",
    DIGEST_HEADER,
    DESTINATION_HEADER,
    DELEGATION_HEADER,
)
PARAMETERS: Final = ("created", "expires", "nonce", "keyid", "alg")
NONCE_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{16,64}")
MAX_SIGNATURE_HEADER: Final = 1024
P256_SIGNATURE_BYTES: Final = 64

REASON_BAD_SIGNATURE: Final = "bad-request-signature"


@dataclass(frozen=True)
class SignatureInput:
    """The parameters of a request signature and the serialized ``@signature-params``."""

    created: int
    expires: int
    nonce: str
    keyid: str
    params: str


def compute_content_digest(body: bytes) -> str:
    """Return the RFC 9530 ``Content-Digest`` of ``body`` (sha-256)."""
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii") + ":"


def compute_signature_params(created: int, expires: int, nonce: str, keyid: str) -> str:
    """Return the serialized inner list of this profile's components and parameters."""
    components = " ".join(f'"{name}"' for name in COMPONENTS)
    return (
        f'({components});created={created};expires={expires};nonce="{nonce}";'
        f'keyid="{keyid}";alg="{SIGNATURE_ALG}"'
    )


def compute_signature_base(
    method: str, path: str, query: str, headers: Mapping[str, str], params: str
) -> bytes:
    """Return the RFC 9421 §2.5 signature base of a request (``query`` without its ``?``)."""
    lines = [
        f'"@method": {method.upper()}',
        f'"@path": {path}',
        f'"@query": ?{query}',
        *(f'"{name}": {headers.get(name, "").strip()}' for name in COMPONENTS[3:]),
        f'"@signature-params": {params}',
    ]
    return "\n".join(lines).encode("utf-8")


def compute_nonce() -> str:
    """Return a fresh random nonce (16 bytes, base64url)."""
    return secrets.token_urlsafe(16)


def sign_base(key: ECC.EccKey, base: bytes) -> str:
    """Return the ``Signature`` header value: ``key``'s P-256 signature of ``base``."""
    signature = DSS.new(key, "fips-186-3", encoding="binary").sign(SHA256.new(base))
    return f"{SIGNATURE_LABEL}=:" + base64.b64encode(signature).decode("ascii") + ":"


def decode_signature_input(value: str) -> SignatureInput:
    """Return the parameters of a ``Signature-Input`` header of this profile.

    Raises :class:`NotAuthenticated` if it does not parse or is not this profile.
    """
    member = _member(value, SIGNATURE_INPUT_HEADER)
    if not isinstance(member, http_sfv.InnerList):
        raise NotAuthenticated(REASON_BAD_SIGNATURE, "Signature-Input is not an inner list")
    names = tuple(item.value for item in member)
    if names != COMPONENTS or any(item.params for item in member):
        raise NotAuthenticated(
            REASON_BAD_SIGNATURE, f"the covered components must be exactly {list(COMPONENTS)}"
        )
    params = dict(member.params)
    if tuple(params) != PARAMETERS:
        raise NotAuthenticated(
            REASON_BAD_SIGNATURE, f"the parameters must be exactly {list(PARAMETERS)}"
        )
    created, expires = params["created"], params["expires"]
    nonce, keyid, alg = params["nonce"], params["keyid"], params["alg"]
    if not (isinstance(created, int) and isinstance(expires, int)) or isinstance(created, bool):
        raise NotAuthenticated(REASON_BAD_SIGNATURE, "created and expires must be integers")
    if not isinstance(nonce, str) or not NONCE_PATTERN.fullmatch(nonce):
        raise NotAuthenticated(REASON_BAD_SIGNATURE, "the nonce must be 16-64 of [A-Za-z0-9_-]")
    if not isinstance(keyid, str) or alg != SIGNATURE_ALG:
        raise NotAuthenticated(REASON_BAD_SIGNATURE, f'alg must be "{SIGNATURE_ALG}"')
    return SignatureInput(
        created=created,
        expires=expires,
        nonce=nonce,
        keyid=keyid,
        params=compute_signature_params(created, expires, nonce, keyid),
    )


def verify_signature(value: str, base: bytes, key: ECC.EccKey) -> None:
    """Check the ``Signature`` header ``value`` is ``key``'s signature of ``base``.

    Raises :class:`NotAuthenticated` otherwise.
    """
    member = _member(value, SIGNATURE_HEADER)
    signature = getattr(member, "value", None)
    if not isinstance(signature, bytes) or len(signature) != P256_SIGNATURE_BYTES:
        raise NotAuthenticated(REASON_BAD_SIGNATURE, "the signature is not 64 bytes (r || s)")
    try:
        DSS.new(key, "fips-186-3", encoding="binary").verify(SHA256.new(base), signature)
    except ValueError as exc:
        raise NotAuthenticated(
            REASON_BAD_SIGNATURE, "the session key's signature does not verify"
        ) from exc


def _member(value: str, header: str) -> object:
    if len(value) > MAX_SIGNATURE_HEADER:
        raise NotAuthenticated(REASON_BAD_SIGNATURE, f"{header} is oversized")
    parsed = http_sfv.Dictionary()
    try:
        parsed.parse(value.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise NotAuthenticated(REASON_BAD_SIGNATURE, f"{header} does not parse: {exc}") from exc
    if list(parsed) != [SIGNATURE_LABEL]:
        raise NotAuthenticated(REASON_BAD_SIGNATURE, f"{header} must hold only {SIGNATURE_LABEL}")
    return parsed[SIGNATURE_LABEL]
