"""System-wide data about a user (be_system): the subsystems it belongs to."""

from __future__ import annotations

from typing import Annotated

from eth_utils import to_checksum_address
from fastapi import APIRouter, Path
from pydantic import BaseModel

from node.api.deps import CurrentUser, NodeDep, RoleDep
from node.api.routes.subsystems import ADDRESS_PATTERN, ERRORS, require_role
from node.assignment import ROLE_BE_SYSTEM
from node.auth.errors import Forbidden

router = APIRouter(tags=["subsystems"])


class UserPublic(BaseModel):
    """System-wide data about a user: the subsystems it belongs to."""

    address: str
    subsystems: list[str]


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
    require_role(role, ROLE_BE_SYSTEM, None)
    registry = node.registry
    if address.lower() != user.lower() and not registry.is_system_admin(user):
        raise Forbidden("only system admins see other users' memberships")
    subsystems = [s for s in registry.subsystems() if registry.is_participant(s, address)]
    return UserPublic(address=to_checksum_address(address), subsystems=subsystems)
