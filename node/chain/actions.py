"""People's on-chain actions as EIP-712 typed data, signed by their wallet, relayed by anyone.

The registry's ``relay(Action, signature)`` performs an action as its signer: a wallet with no
ether signs, any node sends the transaction and pays the gas. The contract checks, in order,
the deadline, that the nonce is the signer's next (``nonces(signer)``), the signature, then the
action exactly as if the signer had called it. So a relayer can neither forge an action nor
replay one. This module builds the typed data, signs it with a local key and recovers a signer,
with no chain access (``docs/client.md``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import is_address, to_checksum_address

from node.eip712 import SECP256K1_HALF_N, Types, domain_json, with_domain
from node.eip712 import typed_data as document
from node.errors import ValidationError

EIP712_NAME: Final = "Collegium Registry"
EIP712_VERSION: Final = "1"
ZERO_ADDRESS: Final = "0x0000000000000000000000000000000000000000"
DEFAULT_DEADLINE_SECONDS: Final = 3600
"""A signed action is valid for an hour unless the signer chooses otherwise."""
MAX_JOIN_MESSAGE_BYTES: Final = 280
MAX_CID_BYTES: Final = 128
MAX_NAME_BYTES: Final = 64

ACTION_TYPES: Final[Types] = with_domain(
    "Action",
    [
        {"name": "action", "type": "string"},
        {"name": "subsystem", "type": "string"},
        {"name": "account", "type": "address"},
        {"name": "data", "type": "string"},
        {"name": "signer", "type": "address"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ],
)

ACTION_FIELDS: Final[Mapping[str, frozenset[str]]] = {
    "createSubsystem": frozenset({"subsystem"}),
    "requestJoin": frozenset({"subsystem", "data"}),
    "cancelJoin": frozenset({"subsystem"}),
    "denyJoin": frozenset({"subsystem", "account"}),
    "addParticipant": frozenset({"subsystem", "account"}),
    "removeParticipant": frozenset({"subsystem", "account"}),
    "addSubsystemAdmin": frozenset({"subsystem", "account"}),
    "removeSubsystemAdmin": frozenset({"subsystem", "account"}),
    "setSubsystemFrontend": frozenset({"subsystem", "data"}),
    "addSystemAdmin": frozenset({"account"}),
    "removeSystemAdmin": frozenset({"account"}),
    "setFrontend": frozenset({"data"}),
}
"""The fields each action uses (``signer``, ``nonce`` and ``deadline`` always); the others
must stay empty ("" or the zero address): the contract refuses them with ``UnknownAction``."""


@dataclass(frozen=True)
class Action:
    """One signed action of the registry (the EIP-712 ``Action`` struct)."""

    action: str
    signer: str
    nonce: int
    deadline: int
    subsystem: str = ""
    account: str = ZERO_ADDRESS
    data: str = ""

    def as_message(self) -> dict[str, Any]:
        """Return the EIP-712 message (addresses checksummed)."""
        return {
            "action": self.action,
            "subsystem": self.subsystem,
            "account": to_checksum_address(self.account),
            "data": self.data,
            "signer": to_checksum_address(self.signer),
            "nonce": int(self.nonce),
            "deadline": int(self.deadline),
        }

    def as_tuple(self) -> tuple[str, str, str, str, str, int, int]:
        """Return the contract's ``Action`` tuple, in field order."""
        m = self.as_message()
        return (m["action"], m["subsystem"], m["account"], m["data"], m["signer"],
                m["nonce"], m["deadline"])  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-ready dict."""
        return asdict(self)


def check_action(action: Action) -> Action:
    """Return ``action`` with checksummed addresses; raise ``ValidationError`` (400) if it
    names an unknown action, fills a field the action does not use, or leaves one it needs."""
    fields = ACTION_FIELDS.get(action.action)
    if fields is None:
        known = ", ".join(sorted(ACTION_FIELDS))
        raise ValidationError(f"unknown action {action.action!r}; one of: {known}")
    for name in ("signer", "account"):
        value = getattr(action, name)
        if not isinstance(value, str) or not is_address(value):
            raise ValidationError(f"{name} is not an address: {value!r}")
    if to_checksum_address(action.signer) == ZERO_ADDRESS:
        raise ValidationError("signer is the zero address")
    if not 0 <= int(action.nonce) < 2**256 or not 0 <= int(action.deadline) < 2**256:
        raise ValidationError("nonce and deadline are unsigned 256-bit integers")
    used = {
        "subsystem": action.subsystem != "",
        "account": to_checksum_address(action.account) != ZERO_ADDRESS,
        "data": action.data != "",
    }
    for name, filled in used.items():
        if filled and name not in fields:
            raise ValidationError(f"{action.action} takes no {name}")
        if not filled and name in fields and name != "data":
            raise ValidationError(f"{action.action} needs a {name}")
    if len(action.subsystem.encode("utf-8")) > MAX_NAME_BYTES:
        raise ValidationError(f"subsystem names are at most {MAX_NAME_BYTES} bytes")
    limit = MAX_JOIN_MESSAGE_BYTES if action.action == "requestJoin" else MAX_CID_BYTES
    if len(action.data.encode("utf-8")) > limit:
        raise ValidationError(f"data of {action.action} is at most {limit} bytes")
    return Action(
        action=action.action,
        signer=to_checksum_address(action.signer),
        nonce=int(action.nonce),
        deadline=int(action.deadline),
        subsystem=action.subsystem,
        account=to_checksum_address(action.account),
        data=action.data,
    )


def default_deadline(now: float | None = None) -> int:
    """Return a deadline ``DEFAULT_DEADLINE_SECONDS`` from ``now`` (unix seconds)."""
    return int(time.time() if now is None else now) + DEFAULT_DEADLINE_SECONDS


def domain(chain_id: int, registry: str) -> dict[str, Any]:
    """Return the EIP-712 domain of ``registry`` on chain ``chain_id``."""
    return domain_json(EIP712_NAME, EIP712_VERSION, chain_id, registry)


def typed_data(action: Action, chain_id: int, registry: str) -> dict[str, Any]:
    """Return the full typed data of ``action`` (what ``eth_signTypedData_v4`` takes)."""
    return document(ACTION_TYPES, "Action", domain(chain_id, registry), action.as_message())


def sign_action(action: Action, chain_id: int, registry: str, account: LocalAccount) -> str:
    """Sign ``action`` with ``account`` (which must be its signer); return ``0x`` + 65 bytes."""
    if to_checksum_address(action.signer) != account.address:
        raise ValidationError(f"the action's signer is {action.signer}, not {account.address}")
    signable = encode_typed_data(full_message=typed_data(action, chain_id, registry))
    return "0x" + bytes(account.sign_message(signable).signature).hex()


def recover_signer(action: Action, chain_id: int, registry: str, signature: str) -> str:
    """Return the address that signed ``action``; raise ``ValidationError`` for a malformed
    signature (length, v, or a high s that the contract refuses: EIP-2)."""
    try:
        raw = bytes.fromhex(signature.removeprefix("0x"))
    except ValueError:
        raise ValidationError("the signature is not hex") from None
    if len(raw) != 65:
        raise ValidationError(f"the signature is {len(raw)} bytes, not 65")
    if raw[64] not in (0, 1, 27, 28) or int.from_bytes(raw[32:64], "big") > SECP256K1_HALF_N:
        raise ValidationError("malformed signature (v must be 27/28 and s at most n/2)")
    signable = encode_typed_data(full_message=typed_data(action, chain_id, registry))
    return str(Account.recover_message(signable, signature=raw))
