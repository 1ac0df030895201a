"""Participant management by subsystem admins: the unsigned registry call for the admin's
wallet, or the relay of the call it signed (checked by ``node.api.relay``)."""

from __future__ import annotations

from typing import Final, Literal

from eth_utils import to_checksum_address
from fastapi import APIRouter
from pydantic import BaseModel, Field

from node.api.deps import CurrentUser, NodeDep
from node.api.relay import (
    check_relay_nonce,
    check_relayed_call,
    decode_signed_transaction,
    send_relayed,
)
from node.api.routes.subsystems import ADDRESS_PATTERN, ERRORS, Name, require_subsystem
from node.api.schemas import Problem
from node.auth.errors import Forbidden

router = APIRouter(tags=["subsystems"])

MAX_RAW_TX_CHARS: Final = 8192


class ParticipantChange(BaseModel):
    """Add or remove ``address`` as a participant (signed by an admin's wallet)."""

    address: str = Field(pattern=ADDRESS_PATTERN)
    action: Literal["add", "remove"] = "add"


class UnsignedTx(BaseModel):
    """A registry call for the admin's wallet to sign and send (``eth_sendTransaction``)."""

    to: str
    data: str
    value: str = "0x0"
    chain_id: int
    from_: str = Field(serialization_alias="from")


class RelayCreate(BaseModel):
    """An admin-signed raw transaction calling add/removeParticipant on the registry."""

    raw_transaction: str = Field(pattern=r"^0x[0-9a-fA-F]+$", max_length=MAX_RAW_TX_CHARS)


class RelayPublic(BaseModel):
    """The relayed transaction once mined."""

    tx_hash: str
    block_number: int
    action: str
    address: str


@router.post("/subsystems/{name}/participants", responses=ERRORS)
def prepare_participant_change(
    name: Name, body: ParticipantChange, node: NodeDep, user: CurrentUser
) -> UnsignedTx:
    """Return the unsigned registry transaction that adds/removes a participant.

    Only an admin of ``name`` gets it; their wallet signs and sends it (or posts the
    signed raw transaction to ``…/participants/relay``).
    """
    require_subsystem(node, name)
    registry = node.registry
    if not registry.is_subsystem_admin(name, user):
        raise Forbidden(f"{user} is not an admin of {name!r}")
    fn = "addParticipant" if body.action == "add" else "removeParticipant"
    data = registry.contract.encode_abi(fn, args=[name, to_checksum_address(body.address)])
    return UnsignedTx(
        to=str(registry.address), data=str(data), chain_id=node.chain.chain_id, from_=user
    )


@router.post(
    "/subsystems/{name}/participants/relay",
    responses={
        **ERRORS,
        400: {"model": Problem, "description": "not a signed registry call for this chain"},
        409: {"model": Problem, "description": "nonce already used (replay) or a nonce gap"},
    },
)
def relay_participant_change(name: Name, body: RelayCreate, node: NodeDep) -> RelayPublic:
    """Relay an admin-signed add/removeParticipant transaction for ``name`` to the chain.

    The node checks the target, function, subsystem and that the signer is an admin
    before sending; the contract checks again.
    """
    require_subsystem(node, name)
    raw = bytes.fromhex(body.raw_transaction[2:]) if len(body.raw_transaction) % 2 == 0 else b""
    signed = decode_signed_transaction(raw)
    action, args = check_relayed_call(node, name, signed)
    w3 = node.chain.w3
    check_relay_nonce(w3, raw, signed.sender, signed.nonce)
    tx_hash, receipt = send_relayed(w3, raw)
    return RelayPublic(
        tx_hash="0x" + bytes(tx_hash).hex(),
        block_number=int(receipt["blockNumber"]),
        action=action,
        address=str(args.get("account", "")),
    )
