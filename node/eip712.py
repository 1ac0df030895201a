"""EIP-712 pieces shared by both kinds of typed data the node signs and checks.

A business transaction (domain "Collegium", ``node/ledger/transaction/typeddata.py``) and a
person's registry action (domain "Collegium Registry", ``node/chain/actions.py``) are two
domains with their own structs; what they share is here: the ``EIP712Domain`` struct, the
domain JSON, the typed-data document a wallet signs (``eth_signTypedData_v4``) and the
canonical-signature bound (EIP-2 low ``s``).
"""

from __future__ import annotations

from typing import Any, Final

from eth_utils import to_checksum_address

Field = dict[str, str]
Types = dict[str, list[Field]]

DOMAIN_FIELDS: Final[list[Field]] = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
"""The ``EIP712Domain`` struct both domains use (no salt)."""

SECP256K1_N: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SECP256K1_HALF_N: Final = SECP256K1_N // 2
"""EIP-2: of the two valid ``s`` of a signature only the low one (``s <= n/2``) is accepted
(the contract's ECDSA and the ledger refuse the other)."""


def with_domain(struct: str, fields: list[Field]) -> Types:
    """Return the ``types`` of a document whose primary type is ``struct``."""
    return {"EIP712Domain": DOMAIN_FIELDS, struct: fields}


def domain_json(name: str, version: str, chain_id: int, verifying_contract: str) -> dict[str, Any]:
    """Return the EIP-712 ``domain`` JSON (address checksummed)."""
    return {
        "name": name,
        "version": version,
        "chainId": int(chain_id),
        "verifyingContract": to_checksum_address(verifying_contract),
    }


def typed_data(
    types: Types, primary_type: str, domain: dict[str, Any], message: dict[str, Any]
) -> dict[str, Any]:
    """Return the full typed-data document (what ``eth_signTypedData_v4`` takes)."""
    return {"types": types, "primaryType": primary_type, "domain": domain, "message": message}
