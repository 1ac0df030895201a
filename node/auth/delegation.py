"""Session keys: a wallet's SIWE message delegating to a P-256 key (EIP-4361 + EIP-5573).

The delegation is the pair (SIWE message, wallet signature) whose ``URI`` is the session key's
``did:key`` and whose ReCap resource grants ``request/read`` and/or ``request/write`` on the
system ``collegium://<chain id>/<registry>``. It travels as the ``Collegium-Delegation`` header:
base64url (no padding) of the UTF-8 JSON ``{"message": ..., "signature": ...}``. Checking the
wallet's signature and the message's clock rules is :class:`node.auth.service.AuthService`'s
job; this module only encodes, decodes and reads the parts (``docs/security.md``).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from Crypto.PublicKey import ECC
from multiformats import multibase, multicodec

from node.auth.errors import NotAuthenticated

DID_KEY_PREFIX: Final = "did:key:"
P256_CODEC: Final = "p256-pub"
P256_CURVE: Final = "P-256"
RECAP_PREFIX: Final = "urn:recap:"
SYSTEM_URI_SCHEME: Final = "collegium"
ABILITY_READ: Final = "request/read"
ABILITY_WRITE: Final = "request/write"
READ_METHODS: Final = frozenset({"GET", "HEAD"})
RECAP_STATEMENT_PREFIX: Final = (
    "I further authorize the stated URI to perform the following actions on my behalf: "
)
STATEMENT_INTRO: Final = "Sign in to Collegium."
MAX_DELEGATION_HEADER: Final = 4096
MAX_DID_KEY_CHARS: Final = 128

REASON_BAD_DELEGATION: Final = "bad-delegation"


@dataclass(frozen=True)
class DelegationParts:
    """The two halves of a delegation header."""

    message: str
    signature: str


def compute_system_uri(chain_id: int, registry: str) -> str:
    """Return the ReCap resource naming a Collegium system: its chain id and registry."""
    return f"{SYSTEM_URI_SCHEME}://{chain_id}/{registry.lower()}"


def compute_ability(method: str) -> str:
    """Return the ability a request with ``method`` needs."""
    return ABILITY_READ if method.upper() in READ_METHODS else ABILITY_WRITE


def compute_did_key(public_key: ECC.EccKey) -> str:
    """Return the ``did:key`` of a P-256 public key (compressed SEC1 point, base58btc)."""
    point = public_key.export_key(format="SEC1", compress=True)
    return DID_KEY_PREFIX + multibase.encode(multicodec.wrap(P256_CODEC, point), "base58btc")


def compute_public_key(did_key: str) -> ECC.EccKey:
    """Return the P-256 public key a ``did:key`` names.

    Raises :class:`NotAuthenticated` if it is not a P-256 ``did:key``.
    """
    if len(did_key) > MAX_DID_KEY_CHARS or not did_key.startswith(DID_KEY_PREFIX + "z"):
        raise NotAuthenticated(REASON_BAD_DELEGATION, "the session key is not a did:key")
    try:
        codec, point = multicodec.unwrap(multibase.decode(did_key[len(DID_KEY_PREFIX) :]))
        if codec.name != P256_CODEC:
            raise ValueError(f"a {codec.name} key, not {P256_CODEC}")
        return ECC.import_key(point, curve_name=P256_CURVE)
    except (ValueError, KeyError, IndexError) as exc:
        raise NotAuthenticated(REASON_BAD_DELEGATION, f"bad did:key: {exc}") from exc


def compute_recap_resource(attenuations: Mapping[str, Mapping[str, list[object]]]) -> str:
    """Return the ``urn:recap:`` resource of ``attenuations`` (EIP-5573, no proofs)."""
    document = {"att": {uri: dict(abilities) for uri, abilities in attenuations.items()}, "prf": []}
    encoded = json.dumps(document, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return RECAP_PREFIX + base64.urlsafe_b64encode(encoded).rstrip(b"=").decode("ascii")


def compute_recap_statement(attenuations: Mapping[str, Mapping[str, object]]) -> str:
    """Return the sentence EIP-5573 derives from ``attenuations`` (resources and abilities
    sorted, grouped by namespace)."""
    parts: list[str] = []
    for uri in sorted(attenuations):
        by_namespace: dict[str, list[str]] = {}
        for ability in sorted(attenuations[uri]):
            namespace, _, name = ability.partition("/")
            by_namespace.setdefault(namespace, []).append(name)
        for namespace in sorted(by_namespace):
            names = ", ".join(f"'{name}'" for name in by_namespace[namespace])
            parts.append(f"({len(parts) + 1}) '{namespace}': {names} for '{uri}'.")
    return RECAP_STATEMENT_PREFIX + " ".join(parts)


def compute_delegation_statement(system_uri: str, abilities: tuple[str, ...]) -> str:
    """Return the SIWE statement of a Collegium delegation of ``abilities``."""
    return f"{STATEMENT_INTRO} " + compute_recap_statement({system_uri: dict.fromkeys(abilities)})


def decode_recap(resource: str) -> dict[str, dict[str, object]]:
    """Return the attenuations (``att``) of a ``urn:recap:`` resource.

    Raises :class:`NotAuthenticated` if it does not decode to an EIP-5573 object.
    """
    body = resource[len(RECAP_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        document = json.loads(raw)
        att = document["att"]
        if not isinstance(att, dict) or not all(
            isinstance(abilities, dict) for abilities in att.values()
        ):
            raise TypeError("att is not a map of maps")
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise NotAuthenticated(REASON_BAD_DELEGATION, f"bad ReCap resource: {exc}") from exc
    return att


def encode_delegation_header(message: str, signature: str) -> str:
    """Return the ``Collegium-Delegation`` header value of a signed SIWE message."""
    encoded = json.dumps({"message": message, "signature": signature}, separators=(",", ":"))
    return base64.urlsafe_b64encode(encoded.encode("utf-8")).rstrip(b"=").decode("ascii")


def decode_delegation_header(value: str) -> DelegationParts:
    """Return the message and signature in a ``Collegium-Delegation`` header value.

    Raises :class:`NotAuthenticated` if it is oversized or does not decode.
    """
    if len(value) > MAX_DELEGATION_HEADER:
        raise NotAuthenticated(
            REASON_BAD_DELEGATION, f"the delegation exceeds {MAX_DELEGATION_HEADER} characters"
        )
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        document = json.loads(raw.decode("utf-8"))
        message, signature = document["message"], document["signature"]
        if not isinstance(message, str) or not isinstance(signature, str):
            raise TypeError("message and signature must be strings")
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise NotAuthenticated(REASON_BAD_DELEGATION, f"undecodable delegation: {exc}") from exc
    return DelegationParts(message=message, signature=signature)


def compute_granted_abilities(
    resources: list[str] | None, system_uri: str, statement: str | None
) -> frozenset[str]:
    """Return the abilities a delegation's ReCap grants on ``system_uri``.

    Only the last resource may be a ReCap (EIP-5573), and the statement must end with the
    sentence derived from it. Raises :class:`NotAuthenticated` otherwise.
    """
    recaps = [r for r in resources or [] if r.startswith(RECAP_PREFIX)]
    if len(recaps) != 1 or (resources or [])[-1] != recaps[0]:
        raise NotAuthenticated(REASON_BAD_DELEGATION, "expected one ReCap, the last resource")
    att = decode_recap(recaps[0])
    expected = compute_recap_statement(att)
    if not (statement or "").endswith(expected):
        raise NotAuthenticated(
            REASON_BAD_DELEGATION, "the statement does not end with the ReCap's sentence"
        )
    abilities = att.get(system_uri)
    if not abilities:
        raise NotAuthenticated(REASON_BAD_DELEGATION, f"the ReCap grants nothing on {system_uri}")
    return frozenset(a for a in abilities if a in (ABILITY_READ, ABILITY_WRITE))
