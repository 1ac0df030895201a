"""Signed on-chain actions of people, relayed by this node (which pays the gas), and the
join requests of subsystems.

A person signs an ``Action`` (EIP-712, ``node.chain.actions``) with their own wallet; no
session is needed: the signature is the credential, and the registry checks it again with the
signer's nonce and the deadline. Before spending gas the node checks the same things itself so
that a bad action gets a clear 4xx: an unknown action or misused field (400), an expired
deadline (400 ``signature-expired``), a signature that does not recover to the signer (400
``bad-signature``), a nonce that is not the signer's next (409 ``replayed``), and the contract's
own refusal, found by estimating the transaction (403 for a non-admin, 404 unknown subsystem,
409 for a state conflict such as ``AlreadyParticipant``, 400 otherwise). Relaying goes through
the node's own account and its one nonce lock (``node.chain.sending.account_lock``), shared
with anchoring and attesting.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Annotated, Any, Final

from eth_utils import to_checksum_address
from fastapi import APIRouter, HTTPException, Path, Request
from pydantic import BaseModel, Field

from node.api.deps import NodeDep
from node.api.problems import problem
from node.api.ratelimit import TokenBuckets
from node.api.schemas import Problem
from node.chain.actions import (
    ACTION_FIELDS,
    ZERO_ADDRESS,
    Action,
    check_action,
    default_deadline,
    recover_signer,
    typed_data,
)
from node.chain.registry import RegistryRejected
from node.errors import ChainError

router = APIRouter(tags=["actions"])

ADDRESS_PATTERN: Final = r"^0x[0-9a-fA-F]{40}$"
SIGNATURE_PATTERN: Final = r"^0x[0-9a-fA-F]{130}$"
RELAYS_PER_SIGNER_PER_SECOND: Final = 0.2
"""Relayed actions per signer: one every 5 s on average, bursts of ``RELAY_BURST``."""
RELAY_BURST: Final = 10
MEMBERSHIP_ACTIONS: Final = frozenset({"createSubsystem", "addParticipant", "removeParticipant"})
MAX_DEV_FUND_WEI: Final = 100 * 10**18
MAX_DEADLINE_AHEAD: Final = 7 * 24 * 3600
"""A deadline more than a week ahead is refused: a signature should not live for ever."""

STATUS_BY_REVERT: Final[dict[str, tuple[int, str]]] = {
    "SignatureExpired": (400, "signature-expired"),
    "InvalidActionSignature": (400, "bad-signature"),
    "InvalidNonce": (409, "replayed"),
    "NotSubsystemAdmin": (403, "not-an-admin"),
    "NotSystemAdmin": (403, "not-an-admin"),
    "UnknownSubsystem": (404, "unknown-subsystem"),
    "SubsystemAlreadyExists": (409, "conflict"),
    "AlreadyParticipant": (409, "conflict"),
    "AlreadySubsystemAdmin": (409, "conflict"),
    "AlreadySystemAdmin": (409, "conflict"),
    "JoinAlreadyPending": (409, "conflict"),
    "NoJoinRequest": (404, "no-join-request"),
    "ParticipantNotFound": (404, "not-found"),
    "SubsystemAdminNotFound": (404, "not-found"),
    "SystemAdminNotFound": (404, "not-found"),
    "LastSubsystemAdmin": (409, "conflict"),
    "LastSystemAdmin": (409, "conflict"),
    "TooManyJoinRequests": (429, "too-many-join-requests"),
}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "malformed, expired or badly signed action"},
    403: {"model": Problem, "description": "the signer may not do this (not an admin)"},
    404: {"model": Problem, "description": "unknown subsystem, request or member"},
    409: {"model": Problem, "description": "nonce already used (replay) or state conflict"},
    429: {"model": Problem, "description": "too many actions of this signer"},
    502: {"model": Problem, "description": "the chain failed"},
}


class ActionFields(BaseModel):
    """The fields of an action a person signs (``docs/client.md``); unused ones stay empty."""

    action: str = Field(max_length=64, description="one of " + ", ".join(sorted(ACTION_FIELDS)))
    signer: str = Field(pattern=ADDRESS_PATTERN)
    subsystem: str = Field(default="", max_length=64)
    account: str = Field(default=ZERO_ADDRESS, pattern=ADDRESS_PATTERN)
    data: str = Field(default="", max_length=280)


class ActionPrepare(ActionFields):
    """An action to prepare: the node fills in the signer's next nonce and, if absent, a
    deadline an hour from now."""

    deadline: int | None = Field(default=None, ge=0, lt=2**63)


class SignedActionCreate(ActionFields):
    """An action with its nonce, deadline and the signer's EIP-712 signature."""

    nonce: int = Field(ge=0, lt=2**63)
    deadline: int = Field(ge=0, lt=2**63)
    signature: str = Field(pattern=SIGNATURE_PATTERN)


class TypedDataPublic(BaseModel):
    """What to sign: ``typed_data`` is the ``eth_signTypedData_v4`` argument."""

    action: dict[str, Any]
    typed_data: dict[str, Any]


class RelayedAction(BaseModel):
    """The relayed action once mined."""

    action: str
    signer: str
    nonce: int
    tx_hash: str
    block_number: int


class NoncePublic(BaseModel):
    """The next nonce ``address`` signs an action with."""

    address: str
    nonce: int


class JoinRequestPublic(BaseModel):
    """One account's standing with a subsystem."""

    subsystem: str
    address: str
    pending: bool
    message: str
    participant: bool


class JoinRequestList(BaseModel):
    """The pending join requests of a subsystem (public: they are on-chain)."""

    subsystem: str
    requests: list[JoinRequestPublic]


class ActionRefused(HTTPException):
    """A refusal with a problem kind."""

    def __init__(self, status: int, kind: str, detail: str, retry_after: float = 0.0) -> None:
        super().__init__(status, detail)
        self.kind = kind
        self.retry_after = retry_after


_BUCKETS_LOCK = threading.Lock()


def _signer_buckets(request: Request) -> TokenBuckets:
    with _BUCKETS_LOCK:
        buckets: TokenBuckets | None = getattr(request.app.state, "action_buckets", None)
        if buckets is None:
            buckets = TokenBuckets(RELAYS_PER_SIGNER_PER_SECOND, RELAY_BURST)
            request.app.state.action_buckets = buckets
    return buckets


def _action_of(body: ActionFields, nonce: int, deadline: int) -> Action:
    return check_action(
        Action(
            action=body.action,
            signer=body.signer,
            nonce=nonce,
            deadline=deadline,
            subsystem=body.subsystem,
            account=body.account,
            data=body.data,
        )  # fmt: skip
    )


def _refusal(exc: RegistryRejected) -> ActionRefused:
    status, kind = STATUS_BY_REVERT.get(exc.error_name or "", (400, "refused-by-registry"))
    return ActionRefused(status, kind, str(exc))


def _problem(exc: ActionRefused) -> Any:
    return problem(exc.status_code, exc.kind.replace("-", " "), str(exc.detail), exc.kind)


@router.get("/actions/nonce/{address}", responses=ERRORS)
def get_nonce(address: Annotated[str, Path(pattern=ADDRESS_PATTERN)], node: NodeDep) -> NoncePublic:
    """Return the next nonce ``address`` must sign an action with (read from the registry)."""
    return NoncePublic(address=address, nonce=node.registry.nonce_of(address))


@router.post("/actions/typed-data", responses=ERRORS)
def prepare_action(body: ActionPrepare, node: NodeDep) -> TypedDataPublic:
    """Return the EIP-712 typed data of an action, with the signer's next nonce (from the
    registry) and a deadline (an hour from now unless given): sign it with
    ``eth_signTypedData_v4`` and post it to ``/actions``."""
    registry = node.registry
    deadline = body.deadline if body.deadline is not None else default_deadline()
    action = _action_of(body, registry.nonce_of(body.signer), deadline)
    return TypedDataPublic(
        action=action.as_dict(),
        typed_data=typed_data(action, node.chain.chain_id, str(registry.address)),
    )


@router.post("/actions", responses=ERRORS)
def relay_action(body: SignedActionCreate, request: Request, node: NodeDep) -> Any:
    """Relay a signed action to the registry; this node pays the gas. Checked here first
    (shape, deadline, signature, nonce, the contract's verdict by estimation), then by the
    registry itself when mined."""
    try:
        return _relay(body, request, node)
    except ActionRefused as exc:
        response = _problem(exc)
        if exc.retry_after > 0:
            response.headers["retry-after"] = str(max(1, math.ceil(exc.retry_after)))
        return response


def _relay(body: SignedActionCreate, request: Request, node: Any) -> RelayedAction:
    registry = node.registry
    action = _action_of(body, body.nonce, body.deadline)
    now = int(time.time())
    if action.deadline < now:
        raise ActionRefused(
            400, "signature-expired",
            f"the action's deadline {action.deadline} has passed (now {now}): sign it again",
        )  # fmt: skip
    if action.deadline > now + MAX_DEADLINE_AHEAD:
        raise ActionRefused(400, "deadline-too-far",
                            f"the deadline is more than {MAX_DEADLINE_AHEAD} s ahead")  # fmt: skip
    recovered = recover_signer(action, node.chain.chain_id, str(registry.address), body.signature)
    if recovered != action.signer:
        raise ActionRefused(
            400, "bad-signature",
            f"the signature recovers to {recovered}, not the signer {action.signer} (was it "
            f"signed for chain {node.chain.chain_id} and registry {registry.address}?)",
        )  # fmt: skip
    expected = registry.nonce_of(action.signer)
    if action.nonce != expected:
        word = "already used (a replay)" if action.nonce < expected else "ahead of the next one"
        raise ActionRefused(
            409, "replayed",
            f"nonce {action.nonce} of {action.signer} is {word}; the next nonce is {expected}",
        )  # fmt: skip
    wait = _signer_buckets(request).take(action.signer)
    if wait > 0:
        raise ActionRefused(
            429, "too-many-actions",
            f"{action.signer} may have {RELAY_BURST} actions relayed at once, then one every "
            f"{1 / RELAYS_PER_SIGNER_PER_SECOND:g} s; retry in {wait:.1f} s", retry_after=wait,
        )  # fmt: skip
    try:
        result = registry.relay(action, body.signature)
    except RegistryRejected as exc:
        raise _refusal(exc) from exc
    if action.action in MEMBERSHIP_ACTIONS:  # this node saw it mined: no need to wait the TTL
        member = action.signer if action.action == "createSubsystem" else action.account
        node.ledger.participants.invalidate(action.subsystem, member)
    frontends = getattr(request.app.state, "subsystem_frontends", None)
    if action.action == "setSubsystemFrontend" and frontends is not None:
        frontends.forget(action.subsystem)  # /s/<name>/ serves the new bundle at once here
    return RelayedAction(
        action=action.action,
        signer=action.signer,
        nonce=action.nonce,
        tx_hash="0x" + bytes(result.tx_hash).hex(),
        block_number=int(result.block_number),
    )


@router.get("/subsystems/{name}/join-requests", responses=ERRORS)
def list_join_requests(name: Annotated[str, Path(min_length=1, max_length=64)],
                       node: NodeDep) -> JoinRequestList:  # fmt: skip
    """Return the pending join requests of ``name`` with their messages (public, on-chain)."""
    registry = node.registry
    _require(registry, name)
    requests = []
    for address in registry.join_requests(name):
        _, message = registry.join_request(name, address)
        requests.append(JoinRequestPublic(subsystem=name, address=address, pending=True,
                                          message=message, participant=False))  # fmt: skip
    return JoinRequestList(subsystem=name, requests=requests)


@router.get("/subsystems/{name}/join-requests/{address}", responses=ERRORS)
def get_join_request(
    name: Annotated[str, Path(min_length=1, max_length=64)],
    address: Annotated[str, Path(pattern=ADDRESS_PATTERN)],
    node: NodeDep,
) -> JoinRequestPublic:
    """Return ``address``'s standing with ``name``: pending request (and message), participant."""
    registry = node.registry
    _require(registry, name)
    pending, message = registry.join_request(name, address)
    return JoinRequestPublic(subsystem=name, address=address, pending=pending, message=message,
                             participant=registry.is_participant(name, address))  # fmt: skip


class AdminList(BaseModel):
    """The admins of a subsystem, or the system admins when ``subsystem`` is null."""

    subsystem: str | None
    admins: list[str]


class FundCreate(BaseModel):
    """Ether for ``address`` on a dev chain (at most 100 ETH a call)."""

    address: str = Field(pattern=ADDRESS_PATTERN)
    wei: int = Field(gt=0, le=MAX_DEV_FUND_WEI)


class FundPublic(BaseModel):
    """The balance of ``address`` after funding."""

    address: str
    balance: int


@router.get("/subsystems/{name}/admins", responses=ERRORS)
def list_subsystem_admins(
    name: Annotated[str, Path(min_length=1, max_length=64)], node: NodeDep
) -> AdminList:
    """Return the admins of ``name`` (public registry data)."""
    _require(node.registry, name)
    return AdminList(subsystem=name, admins=node.registry.subsystem_admins(name))


@router.get("/admins", responses=ERRORS)
def list_system_admins(node: NodeDep) -> AdminList:
    """Return the system admins (public registry data)."""
    return AdminList(subsystem=None, admins=node.registry.system_admins())


@router.post("/dev/fund", responses={**ERRORS, 403: {"model": Problem}})
def fund(body: FundCreate, node: NodeDep) -> FundPublic:
    """Give ``address`` ether on a dev chain (embedded, or anvil/hardhat); 403 on any other.
    Nobody needs ether to act (actions are relayed); this serves wallets that pay their own."""
    address = to_checksum_address(body.address)
    try:
        node.chain.fund(address, body.wei)
    except ChainError as exc:
        raise ActionRefused(
            403, "not-a-dev-chain", f"this node's chain has no faucet: {exc}"
        ) from exc
    return FundPublic(address=address, balance=int(node.chain.w3.eth.get_balance(address)))


def _require(registry: Any, name: str) -> None:
    if not registry.subsystem_exists(name):
        raise HTTPException(404, f"unknown subsystem {name!r}")
