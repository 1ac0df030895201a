"""Subsystems: public registry data, private data (be_subsystem), system data (be_system),
and participant management by subsystem admins.

Private data of S lives in S's own database, reached only through
:class:`node.auth.databases.SubsystemDatabases` with the role context the router granted
this request; only participants of S may read or write it.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from eth_account import Account
from eth_account._utils.legacy_transactions import Transaction
from eth_account.typed_transactions import TypedTransaction
from eth_utils import is_address, to_checksum_address
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from hexbytes import HexBytes
from pydantic import BaseModel, Field

from node.api.deps import CurrentUser, NodeDep
from node.api.schemas import Problem
from node.assignment import ROLE_BE_SUBSYSTEM, ROLE_BE_SYSTEM
from node.auth.databases import RoleContext, SubsystemDatabases
from node.auth.errors import Forbidden
from node.errors import ValidationError
from node.router.proxy import STATE_SLOT

router = APIRouter(tags=["subsystems"])

MAX_NAME_BYTES: Final = 64
MAX_KEY_CHARS: Final = 128
MAX_VALUE_CHARS: Final = 16 * 1024
DEFAULT_PAGE: Final = 50
MAX_PAGE: Final = 500
MAX_RAW_TX_CHARS: Final = 8192
RELAY_FUNCTIONS: Final = {"addParticipant": "add", "removeParticipant": "remove"}
ADDRESS_PATTERN: Final = r"^0x[0-9a-fA-F]{40}$"
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "not logged in"},
    403: {"model": Problem, "description": "not a participant / admin of the subsystem"},
    404: {"model": Problem, "description": "unknown subsystem"},
}

Name = Annotated[str, Path(min_length=1, max_length=MAX_NAME_BYTES)]


class SubsystemPublic(BaseModel):
    """A subsystem's public registry record."""

    name: str
    participants: list[str]
    frontend_cid: str


class RecordCreate(BaseModel):
    """A private record of a subsystem."""

    key: str = Field(min_length=1, max_length=MAX_KEY_CHARS)
    value: str = Field(max_length=MAX_VALUE_CHARS)


class RecordPublic(BaseModel):
    """A stored private record."""

    id: int
    key: str
    value: str
    author: str


class RecordPage(BaseModel):
    """Newest private records of a subsystem."""

    subsystem: str
    records: list[RecordPublic]


class UserPublic(BaseModel):
    """System-wide data about a user: the subsystems it belongs to."""

    address: str
    subsystems: list[str]


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


def get_databases(request: Request) -> SubsystemDatabases:
    """Return the node's subsystem database registry."""
    databases: SubsystemDatabases = request.app.state.subsystem_databases
    return databases


DatabasesDep = Annotated[SubsystemDatabases, Depends(get_databases)]


def get_role_context(request: Request) -> RoleContext | None:
    """Return the role the router decided this node serves the request as, if any."""
    slot = getattr(request.state, STATE_SLOT, None)
    return RoleContext(slot[0], slot[1]) if slot is not None else None


RoleDep = Annotated[RoleContext | None, Depends(get_role_context)]


def _require_subsystem(node: Any, name: str) -> None:
    if len(name.encode("utf-8")) > MAX_NAME_BYTES or not node.registry.subsystem_exists(name):
        raise HTTPException(404, f"unknown subsystem {name!r}")


def _require_participant(node: Any, name: str, user: str) -> None:
    if not node.registry.is_participant(name, user):
        raise Forbidden(f"{user} is not a participant of {name!r}")


def _require_role(role: RoleContext | None, expected: str, subsystem: str | None) -> RoleContext:
    if role is None or role.role != expected or role.subsystem != subsystem:
        raise HTTPException(404, f"this node serves no {expected} slot for {subsystem!r}")
    return role


@router.get("/subsystems/{name}", responses=ERRORS)
def get_subsystem(name: Name, node: NodeDep) -> SubsystemPublic:
    """Return a subsystem's public record (participants, front-end CID)."""
    _require_subsystem(node, name)
    registry = node.registry
    return SubsystemPublic(
        name=name,
        participants=[str(a) for a in registry.participants(name)],
        frontend_cid=registry.subsystem_frontend(name),
    )


@router.get("/subsystems/{name}/data/records", responses=ERRORS)
def list_records(
    name: Name,
    node: NodeDep,
    user: CurrentUser,
    role: RoleDep,
    databases: DatabasesDep,
    limit: int = Query(default=DEFAULT_PAGE, ge=1, le=MAX_PAGE),
) -> RecordPage:
    """Return the newest private records of ``name`` (participants only; be_subsystem)."""
    _require_subsystem(node, name)
    _require_participant(node, name, user)
    db = databases.open(_require_role(role, ROLE_BE_SUBSYSTEM, name), name)
    rows = db.records(limit=limit)
    return RecordPage(subsystem=name, records=[RecordPublic(**row) for row in rows])


@router.post("/subsystems/{name}/data/records", status_code=201, responses=ERRORS)
def add_record(
    name: Name,
    body: RecordCreate,
    node: NodeDep,
    user: CurrentUser,
    role: RoleDep,
    databases: DatabasesDep,
) -> RecordPublic:
    """Store a private record in ``name``'s own database (participants only; be_subsystem)."""
    _require_subsystem(node, name)
    _require_participant(node, name, user)
    db = databases.open(_require_role(role, ROLE_BE_SUBSYSTEM, name), name)
    return RecordPublic(**db.add_record(key=body.key, value=body.value, author=user))


@router.get("/system/users/{address}", responses=ERRORS)
def get_user(
    address: Annotated[str, Path(pattern=ADDRESS_PATTERN)],
    node: NodeDep,
    user: CurrentUser,
    role: RoleDep,
) -> UserPublic:
    """Return the subsystems ``address`` belongs to (system-wide data; be_system).

    A user sees their own memberships; a system admin sees anyone's.
    """
    _require_role(role, ROLE_BE_SYSTEM, None)
    registry = node.registry
    if address.lower() != user.lower() and not registry.is_system_admin(user):
        raise Forbidden("only system admins see other users' memberships")
    subsystems = [s for s in registry.subsystems() if registry.is_participant(s, address)]
    return UserPublic(address=to_checksum_address(address), subsystems=subsystems)


@router.post("/subsystems/{name}/participants", responses=ERRORS)
def prepare_participant_change(
    name: Name, body: ParticipantChange, node: NodeDep, user: CurrentUser
) -> UnsignedTx:
    """Return the unsigned registry transaction that adds/removes a participant.

    Only an admin of ``name`` gets it; their wallet signs and sends it (or posts the
    signed raw transaction to ``…/participants/relay``).
    """
    _require_subsystem(node, name)
    registry = node.registry
    if not registry.is_subsystem_admin(name, user):
        raise Forbidden(f"{user} is not an admin of {name!r}")
    fn = "addParticipant" if body.action == "add" else "removeParticipant"
    data = registry.contract.encode_abi(fn, args=[name, to_checksum_address(body.address)])
    return UnsignedTx(
        to=str(registry.address), data=str(data), chain_id=node.chain.chain_id, from_=user
    )


@router.post("/subsystems/{name}/participants/relay", responses=ERRORS)
def relay_participant_change(name: Name, body: RelayCreate, node: NodeDep) -> RelayPublic:
    """Relay an admin-signed add/removeParticipant transaction for ``name`` to the chain.

    The node checks the target, function, subsystem and that the signer is an admin
    before sending; the contract checks again.
    """
    _require_subsystem(node, name)
    registry = node.registry
    raw = bytes.fromhex(body.raw_transaction[2:]) if len(body.raw_transaction) % 2 == 0 else b""
    try:
        if raw and raw[0] <= 0x7F:
            fields = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
            to, data = fields.get("to"), fields.get("data", b"")
        else:
            legacy = Transaction.from_bytes(raw)
            to, data = legacy.to, legacy.data
        sender = str(Account.recover_transaction(raw))
    except Exception as exc:
        raise ValidationError(f"not a signed transaction: {exc}") from exc
    if not to or not is_address(to) or to_checksum_address(to) != registry.address:
        raise ValidationError("the transaction does not call this node's registry")
    try:
        fn, args = registry.contract.decode_function_input(data)
    except Exception as exc:
        raise ValidationError("the transaction does not call a registry function") from exc
    action = RELAY_FUNCTIONS.get(fn.fn_name)
    if action is None or args.get("name") != name:
        raise ValidationError(f"only add/removeParticipant of {name!r} are relayed")
    if not registry.is_subsystem_admin(name, sender):
        raise Forbidden(f"{sender} is not an admin of {name!r}")
    w3 = node.chain.w3
    tx_hash = w3.eth.send_raw_transaction(raw)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
    if int(receipt["status"]) != 1:
        raise ValidationError("the registry rejected the transaction")
    return RelayPublic(
        tx_hash="0x" + bytes(tx_hash).hex(),
        block_number=int(receipt["blockNumber"]),
        action=action,
        address=str(args.get("account", "")),
    )
