"""Subsystems: a subsystem's public registry record, and what every subsystem route shares
(the error responses, the ``{name}`` parameter, the checks that ``name`` exists, that the
user participates in it and that the router granted this node the role the route needs).

Its data has routers of their own: private data (``private_data.py``, be_subsystem),
participants' public keys (``keys.py``), system users (``users.py``, be_system) and
participant management by subsystem admins (``participants.py``).
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel

from node.api.deps import NodeDep
from node.api.schemas import Problem
from node.auth.databases import RoleContext
from node.auth.errors import Forbidden

router = APIRouter(tags=["subsystems"])

MAX_NAME_BYTES: Final = 64
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


def require_subsystem(node: Any, name: str) -> None:
    """Raise 404 unless the registry knows subsystem ``name``."""
    if len(name.encode("utf-8")) > MAX_NAME_BYTES or not node.registry.subsystem_exists(name):
        raise HTTPException(404, f"unknown subsystem {name!r}")


def require_participant(node: Any, name: str, user: str) -> None:
    """Raise ``Forbidden`` (403) unless ``user`` is a participant of ``name``."""
    if not node.registry.is_participant(name, user):
        raise Forbidden(f"{user} is not a participant of {name!r}")


def require_role(role: RoleContext | None, expected: str, subsystem: str | None) -> RoleContext:
    """Return ``role`` if the router granted this node ``expected`` for ``subsystem``; else
    raise 404."""
    if role is None or role.role != expected or role.subsystem != subsystem:
        raise HTTPException(404, f"this node serves no {expected} slot for {subsystem!r}")
    return role


@router.get("/subsystems/{name}", responses=ERRORS)
def get_subsystem(name: Name, node: NodeDep) -> SubsystemPublic:
    """Return a subsystem's public record (participants, front-end CID)."""
    require_subsystem(node, name)
    registry = node.registry
    return SubsystemPublic(
        name=name,
        participants=[str(a) for a in registry.participants(name)],
        frontend_cid=registry.subsystem_frontend(name),
    )
