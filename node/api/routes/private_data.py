"""Private data of a subsystem (be_subsystem): records, the current key envelope, sealed
payloads of private business transactions.

Private data of S lives in S's own database, reached only through
:class:`node.auth.databases.SubsystemDatabases` with the role context the router granted
this request; only participants of S may read or write it. It is sealed under S's content
key before it reaches the content store (:mod:`node.keys.private`, ``docs/encryption.md``):
the store, the gateway and peers only ever hold ciphertext; rows keep CIDs and commitments.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated, Final

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, Field

from node.api.deps import CurrentUser, NodeDep, PrivateDep, RoleDep
from node.api.routes.subsystems import (
    ERRORS,
    Name,
    require_participant,
    require_role,
    require_subsystem,
)
from node.assignment import ROLE_BE_SUBSYSTEM
from node.auth.errors import Forbidden
from node.crypto.errors import CryptoError, MalformedObject, NotARecipient
from node.errors import InvalidCID, NotFoundInStore
from node.keys.private import OpenedPayload

router = APIRouter(tags=["subsystems"])

MAX_KEY_CHARS: Final = 128
MAX_VALUE_CHARS: Final = 16 * 1024
DEFAULT_PAGE: Final = 50
MAX_PAGE: Final = 500
MAX_PAYLOAD_CHARS: Final = 64 * 1024
MAX_CID_CHARS: Final = 128


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
    require_subsystem(node, name)
    require_participant(node, name, user)
    context = require_role(role, ROLE_BE_SUBSYSTEM, name)
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
    require_subsystem(node, name)
    require_participant(node, name, user)
    context = require_role(role, ROLE_BE_SUBSYSTEM, name)
    with _crypto_errors():
        row = private.add_record(context, name, key=body.key, value=body.value, author=user)
    return RecordPublic(**row)


@router.get("/subsystems/{name}/data/key", responses=ERRORS)
def get_current_envelope(
    name: Name, node: NodeDep, user: CurrentUser, role: RoleDep, private: PrivateDep
) -> EnvelopePublic:
    """Return ``name``'s current key envelope (rotated first if a participant was removed)."""
    require_subsystem(node, name)
    require_participant(node, name, user)
    context = require_role(role, ROLE_BE_SUBSYSTEM, name)
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
    require_subsystem(node, name)
    require_participant(node, name, user)
    context = require_role(role, ROLE_BE_SUBSYSTEM, name)
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
    require_subsystem(node, name)
    require_participant(node, name, user)
    context = require_role(role, ROLE_BE_SUBSYSTEM, name)
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
