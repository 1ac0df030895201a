"""Where a path is served now (the destination a signed request must name)."""

from __future__ import annotations

from typing import Annotated, Final

import anyio
from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel

from node.router.locate import Locator

router = APIRouter(tags=["routing"])

MAX_PATH_CHARS: Final = 2048


class RoutePublic(BaseModel):
    """The node that should serve ``path`` now (advice: a signed request names it)."""

    path: str
    node: str
    endpoint: str
    epoch: int | None
    role: str | None
    subsystem: str | None


@router.get("/route")
async def get_route(
    request: Request,
    path: Annotated[str, Query(min_length=1, max_length=MAX_PATH_CHARS, pattern=r"^/\S*$")],
) -> RoutePublic:
    """Return the node that serves ``path`` now: sign a request for it with that node as
    ``Collegium-Destination`` (docs/security.md)."""
    locator: Locator | None = getattr(request.app.state, "locator", None)
    if locator is None:
        raise HTTPException(404, "this node routes nothing")
    found = await anyio.to_thread.run_sync(lambda: locator.locate(path.split("?", 1)[0]))
    return RoutePublic(path=path, node=found.node, endpoint=found.endpoint, epoch=found.epoch,
                       role=found.role, subsystem=found.subsystem)  # fmt: skip
