"""Subsystems: public registry data, private data (be_subsystem), system data (be_system),
and participant management by subsystem admins.

Private data of S lives in S's own database, reached only through
:class:`node.auth.databases.SubsystemDatabases` with the role context the router granted
this request; only participants of S may read or write it. It is sealed under S's content
key before it reaches the content store (:mod:`node.keys.private`, ``docs/encryption.md``):
the store, the gateway and peers only ever hold ciphertext; rows keep CIDs and commitments.

Public keys of participants (``/keys``) are served by every node: they are public and
self-certifying (an address is the hash of its key).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Final, Literal, NamedTuple

import rlp
from eth_account import Account
from eth_account.typed_transactions import TypedTransaction
from eth_tester.exceptions import ValidationError as TesterValidationError
from eth_utils import is_address, keccak, to_checksum_address
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from hexbytes import HexBytes
from pydantic import BaseModel, Field
from rlp.sedes import Binary, big_endian_int, binary
from web3.exceptions import TimeExhausted, Web3RPCError

from node.api.deps import CurrentUser, NodeDep
from node.api.schemas import Problem
from node.assignment import ROLE_BE_SUBSYSTEM, ROLE_BE_SYSTEM
from node.auth.databases import RoleContext, SubsystemDatabases
from node.auth.errors import Forbidden
from node.crypto.errors import CryptoError, InvalidSignature, MalformedObject, NotARecipient
from node.crypto.keys import compute_public_key
from node.errors import ChainError, InvalidCID, NotFoundInStore, ValidationError
from node.keys.directory import SOURCE_SELF, KeyDirectory
from node.keys.private import OpenedPayload, PrivateData
from node.ledger.service import ReplayedTransaction
from node.replication.replica import get_subsystem_log
from node.router.directory import PeerDirectory
from node.router.proxy import STATE_SLOT

router = APIRouter(tags=["subsystems"])

MAX_NAME_BYTES: Final = 64
MAX_KEY_CHARS: Final = 128
MAX_VALUE_CHARS: Final = 16 * 1024
DEFAULT_PAGE: Final = 50
MAX_PAGE: Final = 500
MAX_RAW_TX_CHARS: Final = 8192
MAX_PAYLOAD_CHARS: Final = 64 * 1024
MAX_CID_CHARS: Final = 128
SIGNATURE_PATTERN: Final = r"^0x[0-9a-fA-F]{130}$"
RELAY_FUNCTIONS: Final = {"addParticipant": "add", "removeParticipant": "remove"}
ADDRESS_PATTERN: Final = r"^0x[0-9a-fA-F]{40}$"
EIP155_V_OFFSET: Final = 35
RELAY_RECEIPT_TIMEOUT: Final = 120.0  # web3's default wait for a receipt, made explicit


class LegacyTransaction(rlp.Serializable):
    """A signed pre-EIP-2718 transaction, as RLP (the fields of eth-account's private
    ``_utils.legacy_transactions.Transaction``, declared here rather than imported from it)."""

    fields = [
        ("nonce", big_endian_int),
        ("gasPrice", big_endian_int),
        ("gas", big_endian_int),
        ("to", Binary.fixed_length(20, allow_empty=True)),
        ("value", big_endian_int),
        ("data", binary),
        ("v", big_endian_int),
        ("r", big_endian_int),
        ("s", big_endian_int),
    ]


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
    """A private record of a subsystem (sealed before it is stored)."""

    key: str = Field(min_length=1, max_length=MAX_KEY_CHARS)
    value: str = Field(max_length=MAX_VALUE_CHARS)


class RecordPublic(BaseModel):
    """A private record, opened for a participant; ``cid`` and ``commitment`` are all that
    is public about it (the sealed object in the content store).

    ``status``: ``draft`` (sealed on this host; the author signs a ``PrivateBusinessTransaction``
    of kind ``record`` with ``payload`` = ``cid`` and ``payloadHash`` = ``payload_hash`` to put it
    in S's replicated log), ``pending`` / ``anchored`` (in S's log, ``tx_id``), or ``missing``
    (in S's log, its sealed object not on this host yet: ``key`` and ``value`` are null)."""

    id: int
    key: str | None
    value: str | None
    author: str
    cid: str
    commitment: str
    key_version: int
    status: str = "draft"
    tx_id: str | None = None
    payload_hash: str | None = None
    salt: str | None = None


class RecordPage(BaseModel):
    """Newest private records of a subsystem."""

    subsystem: str
    records: list[RecordPublic]


class PayloadCreate(BaseModel):
    """Plaintext of a private business transaction's payload (UTF-8 text, e.g. JSON)."""

    content: str = Field(min_length=1, max_length=MAX_PAYLOAD_CHARS)


class PayloadPublic(BaseModel):
    """A sealed payload: sign ``cid`` as ``payload`` and ``payload_hash`` as ``payloadHash``
    of a ``PrivateBusinessTransaction``; ``salt`` lets a participant re-check the hash."""

    subsystem: str
    cid: str
    payload_hash: str
    salt: str
    key_version: int
    content: str | None = None


class EnvelopePublic(BaseModel):
    """S's current key envelope: version, CID (in the content store) and recipients."""

    subsystem: str
    key_version: int
    envelope: str
    recipients: list[str]


class KeyAnnouncement(BaseModel):
    """A signed ``KEY_ANNOUNCEMENT_TEMPLATE`` (personal_sign) publishing a wallet's key."""

    address: str = Field(pattern=ADDRESS_PATTERN)
    subsystem: str = Field(min_length=1, max_length=MAX_NAME_BYTES)
    signature: str = Field(pattern=SIGNATURE_PATTERN)


class PublicKeyPublic(BaseModel):
    """A participant's secp256k1 public key (SEC1 compressed, hex)."""

    address: str
    public_key: str


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
_STATE_LOCK = threading.Lock()


def get_key_directory(request: Request) -> KeyDirectory:
    """Return the node's directory of participants' public keys (made on first use)."""
    state = request.app.state
    with _STATE_LOCK:
        directory: KeyDirectory | None = getattr(state, "key_directory", None)
        if directory is None:
            node = state.node
            directory = state.key_directory = KeyDirectory(
                node.sessions,
                peers=PeerDirectory(node.registry, policy=getattr(node, "peer_policy", None)),
                self_address=node.address,
            )
            # this node's own key first: other hosts of its subsystems wrap keys for it
            directory.record(node.address, compute_public_key(bytes(node.account.key)),
                             SOURCE_SELF)  # fmt: skip
    return directory


def get_private_data(request: Request) -> PrivateData:
    """Return the sealing service of this node's ``be_subsystem`` slots (made on first use)."""
    directory = get_key_directory(request)
    state = request.app.state
    with _STATE_LOCK:
        private: PrivateData | None = getattr(state, "private_data", None)
        if private is None:
            node = state.node
            private = state.private_data = PrivateData(
                get_databases(request),
                node.store,
                node.registry,
                directory,
                node.account,
                log=get_subsystem_log(node),
            )
    return private


KeysDep = Annotated[KeyDirectory, Depends(get_key_directory)]
PrivateDep = Annotated[PrivateData, Depends(get_private_data)]


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
    private: PrivateDep,
    limit: int = Query(default=DEFAULT_PAGE, ge=1, le=MAX_PAGE),
) -> RecordPage:
    """Return the newest private records of ``name``, opened (participants only; be_subsystem)."""
    _require_subsystem(node, name)
    _require_participant(node, name, user)
    context = _require_role(role, ROLE_BE_SUBSYSTEM, name)
    with _crypto_errors():
        rows = private.records(context, name, limit=limit)
    return RecordPage(subsystem=name, records=[RecordPublic(**row) for row in rows])


@router.post("/subsystems/{name}/data/records", status_code=201, responses=ERRORS)
def add_record(
    name: Name,
    body: RecordCreate,
    node: NodeDep,
    user: CurrentUser,
    role: RoleDep,
    private: PrivateDep,
) -> RecordPublic:
    """Seal a private record under ``name``'s current key, add the ciphertext to the content
    store and keep its CID and commitment in ``name``'s database (participants; be_subsystem)."""
    _require_subsystem(node, name)
    _require_participant(node, name, user)
    context = _require_role(role, ROLE_BE_SUBSYSTEM, name)
    with _crypto_errors():
        row = private.add_record(context, name, key=body.key, value=body.value, author=user)
    return RecordPublic(**row)


@router.get("/subsystems/{name}/data/key", responses=ERRORS)
def get_current_envelope(
    name: Name, node: NodeDep, user: CurrentUser, role: RoleDep, private: PrivateDep
) -> EnvelopePublic:
    """Return ``name``'s current key envelope (rotated first if a participant was removed)."""
    _require_subsystem(node, name)
    _require_participant(node, name, user)
    context = _require_role(role, ROLE_BE_SUBSYSTEM, name)
    with _crypto_errors():
        current = private.current_key(context, name)
    return EnvelopePublic(subsystem=name, key_version=current.key_version,
                          envelope=current.envelope_cid,
                          recipients=list(current.envelope.addresses))  # fmt: skip


@router.post("/subsystems/{name}/data/payloads", status_code=201, responses=ERRORS)
def seal_payload(
    name: Name,
    body: PayloadCreate,
    node: NodeDep,
    user: CurrentUser,
    role: RoleDep,
    private: PrivateDep,
) -> PayloadPublic:
    """Seal the payload of a private business transaction for ``name`` and return its CID and
    ``payloadHash = keccak256(salt || content)``, to be signed by the participant's wallet."""
    _require_subsystem(node, name)
    _require_participant(node, name, user)
    context = _require_role(role, ROLE_BE_SUBSYSTEM, name)
    with _crypto_errors():
        cid, opened, _ = private.seal_payload(context, name, body.content.encode("utf-8"))
    return _payload_public(name, opened, with_content=False)


@router.get("/subsystems/{name}/data/payloads/{cid}", responses=ERRORS)
def open_payload(
    name: Name,
    cid: Annotated[str, Path(min_length=1, max_length=MAX_CID_CHARS)],
    node: NodeDep,
    user: CurrentUser,
    role: RoleDep,
    private: PrivateDep,
) -> PayloadPublic:
    """Return the plaintext of a sealed payload of ``name`` (participants only; be_subsystem)."""
    _require_subsystem(node, name)
    _require_participant(node, name, user)
    context = _require_role(role, ROLE_BE_SUBSYSTEM, name)
    with _crypto_errors():
        opened = private.open_payload(context, name, cid)
    return _payload_public(name, opened, with_content=True)


def _payload_public(name: str, opened: OpenedPayload, *, with_content: bool) -> PayloadPublic:
    content = None
    if with_content:
        try:
            content = opened.payload.decode("utf-8")
        except UnicodeDecodeError:
            raise HTTPException(422, "the payload is not UTF-8 text") from None
    return PayloadPublic(subsystem=name, cid=opened.cid, payload_hash=opened.payload_hash,
                         salt="0x" + opened.salt.hex(), key_version=opened.key_version,
                         content=content)  # fmt: skip


@contextlib.contextmanager
def _crypto_errors() -> Iterator[None]:
    """Map sealing errors: a wrong or unknown CID is 404, no slot for this host 403."""
    try:
        yield
    except (MalformedObject, NotFoundInStore, InvalidCID) as exc:
        raise HTTPException(404, f"no sealed object of this subsystem there: {exc}") from exc
    except NotARecipient as exc:
        raise Forbidden(f"this host holds no key for that data: {exc}") from exc
    except CryptoError as exc:
        raise HTTPException(502, f"sealed object failed to open: {exc}") from exc


@router.post("/keys", status_code=201, responses={400: {"model": Problem}})
def announce_key(body: KeyAnnouncement, keys: KeysDep) -> PublicKeyPublic:
    """Publish a wallet's public key: the signature of the key announcement recovers it."""
    try:
        key = keys.record_announcement(body.address, body.subsystem, body.signature)
    except InvalidSignature as exc:
        raise ValidationError(str(exc)) from exc
    return PublicKeyPublic(address=to_checksum_address(body.address), public_key=key.hex())


@router.get("/keys/{address}", responses={404: {"model": Problem}})
def get_key(
    address: Annotated[str, Path(pattern=ADDRESS_PATTERN)], keys: KeysDep
) -> PublicKeyPublic:
    """Return the public key this node knows for ``address`` (404 if none)."""
    key = keys.get(address)
    if key is None:
        raise HTTPException(404, f"no public key known for {address}")
    return PublicKeyPublic(address=to_checksum_address(address), public_key=key.hex())


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
    _require_subsystem(node, name)
    raw = bytes.fromhex(body.raw_transaction[2:]) if len(body.raw_transaction) % 2 == 0 else b""
    signed = _decode_signed_transaction(raw)
    action, args = _check_relayed_call(node, name, signed)
    w3 = node.chain.w3
    _check_relay_nonce(w3, raw, signed.sender, signed.nonce)
    tx_hash, receipt = _send_relayed(w3, raw)
    return RelayPublic(
        tx_hash="0x" + bytes(tx_hash).hex(),
        block_number=int(receipt["blockNumber"]),
        action=action,
        address=str(args.get("account", "")),
    )


class _SignedTransaction(NamedTuple):
    """What the relay reads of a signed transaction."""

    to: Any
    data: Any
    chain_id: int | None
    nonce: int
    sender: str


def _decode_signed_transaction(raw: bytes) -> _SignedTransaction:
    """Return the target, call data, chain id, nonce and signer of a signed transaction
    (typed, EIP-2718, or legacy). Raises ``ValidationError`` if it is none."""
    try:
        if raw and raw[0] <= 0x7F:
            fields = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
            to, data = fields.get("to"), fields.get("data", b"")
            chain_id: int | None = int(fields["chainId"])
            nonce = int(fields["nonce"])
        else:
            legacy = rlp.decode(raw, LegacyTransaction)
            to, data, nonce = legacy.to, legacy.data, int(legacy.nonce)
            chain_id = legacy_chain_id(int(legacy.v))
        sender = str(Account.recover_transaction(raw))
    except Exception as exc:
        raise ValidationError(f"not a signed transaction: {exc}") from exc
    return _SignedTransaction(to, data, chain_id, nonce, sender)


def _check_relayed_call(
    node: Any, name: str, signed: _SignedTransaction
) -> tuple[str, Mapping[str, Any]]:
    """Return the relayed action and the call's arguments.

    Raises ``ValidationError`` unless ``signed`` is for this chain and calls this node's
    registry's add/removeParticipant of ``name``; ``Forbidden`` unless its signer is an
    admin of ``name``.
    """
    registry = node.registry
    chain_id = signed.chain_id
    if chain_id != node.chain.chain_id:
        signed_for = "no chain id (pre-EIP-155)" if chain_id is None else f"chain id {chain_id}"
        raise ValidationError(
            f"the transaction is signed for {signed_for}, not this node's chain "
            f"{node.chain.chain_id}: sign it with chainId {node.chain.chain_id}"
        )
    to = signed.to
    if not to or not is_address(to) or to_checksum_address(to) != registry.address:
        raise ValidationError("the transaction does not call this node's registry")
    try:
        fn, args = registry.contract.decode_function_input(signed.data)
    except Exception as exc:
        raise ValidationError("the transaction does not call a registry function") from exc
    action = RELAY_FUNCTIONS.get(fn.fn_name)
    if action is None or args.get("name") != name:
        raise ValidationError(f"only add/removeParticipant of {name!r} are relayed")
    if not registry.is_subsystem_admin(name, signed.sender):
        raise Forbidden(f"{signed.sender} is not an admin of {name!r}")
    return action, args


def _send_relayed(w3: Any, raw: bytes) -> tuple[Any, Any]:
    """Send ``raw`` and return its hash and receipt once mined.

    Raises 409 if the chain refuses its nonce, ``ValidationError`` if it refuses it
    otherwise or the registry reverts it, ``ChainError`` if it is not mined in time.
    """
    try:
        tx_hash = w3.eth.send_raw_transaction(raw)
    except (Web3RPCError, TesterValidationError, ValueError) as exc:  # the chain refused it
        if "nonce" in str(exc).lower() or "known" in str(exc).lower():
            raise HTTPException(409, f"the chain refused the transaction: {exc}") from exc
        raise ValidationError(f"the chain refused the transaction: {exc}") from exc
    try:
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RELAY_RECEIPT_TIMEOUT)
    except TimeExhausted as exc:
        raise ChainError(
            f"the relayed transaction 0x{bytes(tx_hash).hex()} was not mined within "
            f"{RELAY_RECEIPT_TIMEOUT:.0f} s"
        ) from exc
    if int(receipt["status"]) != 1:
        raise ValidationError("the registry rejected the transaction")
    return tx_hash, receipt


def legacy_chain_id(v: int) -> int | None:
    """Return the chain id a legacy transaction's ``v`` commits to (EIP-155: ``v = 35 +
    2 * chainId + parity``), or None if it commits to none (``v`` 27/28, replayable on any
    chain)."""
    return (v - EIP155_V_OFFSET) // 2 if v >= EIP155_V_OFFSET else None


def _check_relay_nonce(w3: Any, raw: bytes, sender: str, nonce: int) -> None:
    """Raise 409 unless ``nonce`` is the next one of ``sender``: a used nonce is a replay
    (the same transaction again, or another one in its place), a later one would wait in the
    pool (or be refused by the chain) and leave the request hanging."""
    expected = int(w3.eth.get_transaction_count(sender, "pending"))
    if nonce < expected:
        tx_hash = keccak(raw)
        try:
            w3.eth.get_transaction(tx_hash)
            known = True
        except Exception:  # TransactionNotFound (the exception type varies by provider)
            known = False
        if known:
            raise ReplayedTransaction(
                f"this transaction (0x{tx_hash.hex()}) was already relayed: it is on the chain"
            )
        raise ReplayedTransaction(
            f"nonce {nonce} of {sender} was already used (the next one is {expected})"
        )
    if nonce > expected:
        raise HTTPException(
            409,
            f"nonce gap: the transaction has nonce {nonce} but the next nonce of {sender} is "
            f"{expected}; sign it with nonce {expected}",
        )
