"""Which role a request path belongs to (the black-zone map of the API)."""

from __future__ import annotations

from typing import Final
from urllib.parse import unquote

from node.assignment import ROLE_BE_SUBSYSTEM, ROLE_BE_SYSTEM, ROLE_FE_SUBSYSTEM

SUBSYSTEM_DATA_PREFIX: Final = "/api/v1/subsystems/"
SUBSYSTEM_DATA_SEGMENT: Final = "data"
SYSTEM_DATA_PREFIX: Final = "/api/v1/system/"
SUBSYSTEM_FRONTEND_PREFIX: Final = "/s/"


def compute_request_slot(path: str) -> tuple[str, str | None] | None:
    """Return the slot (role, subsystem) serving ``path``, or ``None`` if any node serves it.

    ``/api/v1/subsystems/{S}/data…`` is ``be_subsystem`` of S; ``/api/v1/system/…`` is
    ``be_system``; ``/s/{S}`` and ``/s/{S}/…`` (S's own front-end) are ``fe_subsystem`` of S;
    everything else (login, public registry data, ledger, gateway) is
    served by every node.
    """
    if path.startswith(SUBSYSTEM_DATA_PREFIX):
        parts = path[len(SUBSYSTEM_DATA_PREFIX) :].split("/")
        if len(parts) >= 2 and parts[0] and parts[1] == SUBSYSTEM_DATA_SEGMENT:
            return ROLE_BE_SUBSYSTEM, unquote(parts[0])
        return None
    if path.startswith(SUBSYSTEM_FRONTEND_PREFIX):
        name = path[len(SUBSYSTEM_FRONTEND_PREFIX) :].split("/", 1)[0]
        return (ROLE_FE_SUBSYSTEM, unquote(name)) if name else None
    if path.startswith(SYSTEM_DATA_PREFIX):
        return ROLE_BE_SYSTEM, None
    return None
