"""``POST /api/v1/subsystems/{name}/frontend``: an admin of a subsystem uploads a build of its
front-end (one ``.tar``, ``.tar.gz`` or ``.zip`` archive as the request body).

The caller is authenticated like every user request (a request signed with the session key,
or this node's session: ``docs/security.md``) and must be an admin of ``name`` (403 otherwise;
404 for an unknown subsystem). The build is unpacked in memory (:mod:`node.frontend.archive`)
and added to this node's content store as a UnixFS directory, pinned: its CID is the one
``ipfs add -r --cid-version 1`` (and ``collegium frontend publish``) gives the same files. The
answer is that CID; nothing changes on-chain yet: the admin then signs the
``setSubsystemFrontend`` action (``POST /api/v1/actions``) and ``/s/<name>/`` serves it.
A body over ``MAX_ARCHIVE_BYTES`` is refused with 413 before it is read.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import anyio
from fastapi import APIRouter, HTTPException, Path, Request
from pydantic import BaseModel

from node.api.deps import CurrentUser, NodeDep
from node.api.schemas import Problem
from node.auth.errors import Forbidden
from node.frontend import CID_VERSION
from node.frontend.archive import MAX_ARCHIVE_BYTES, BadArchive, count_files, unpack_build
from node.storage.errors import DirectoryTooLarge

router = APIRouter(tags=["subsystems"])

MAX_NAME_BYTES: Final = 64
FRONTEND_SEGMENT: Final = "frontend"

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "not a usable .tar, .tar.gz or .zip build"},
    401: {"model": Problem, "description": "not signed in"},
    403: {"model": Problem, "description": "not an admin of the subsystem"},
    404: {"model": Problem, "description": "unknown subsystem"},
    413: {"model": Problem, "description": f"the archive is over {MAX_ARCHIVE_BYTES} bytes"},
}


class UploadedFrontend(BaseModel):
    """A build stored and pinned here, not yet published: sign ``setSubsystemFrontend``."""

    subsystem: str
    cid: str
    files: int
    bytes: int


def is_upload_path(path: str, api_prefix: str) -> bool:
    """Return whether ``path`` is ``{api_prefix}/subsystems/{name}/frontend`` (its body limit
    is ``MAX_ARCHIVE_BYTES``)."""
    parts = path.rstrip("/").split("/")
    return (
        path.startswith(api_prefix + "/subsystems/")
        and len(parts) == api_prefix.count("/") + 4
        and parts[-1] == FRONTEND_SEGMENT
    )


@router.post(
    "/subsystems/{name}/frontend",
    status_code=201,
    responses=ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                media: {"schema": {"type": "string", "format": "binary"}}
                for media in ("application/x-tar", "application/gzip", "application/zip")
            },
        }
    },
)
async def upload_subsystem_frontend(
    name: Annotated[str, Path(min_length=1, max_length=MAX_NAME_BYTES)],
    request: Request,
    node: NodeDep,
    user: CurrentUser,
) -> UploadedFrontend:
    """Store an admin's build of ``name``'s front-end here (pinned); return its CID, to be
    published with the signed ``setSubsystemFrontend`` action."""
    registry = node.registry
    exists = await anyio.to_thread.run_sync(registry.subsystem_exists, name)
    if len(name.encode()) > MAX_NAME_BYTES or not exists:
        raise HTTPException(404, f"unknown subsystem {name!r}")
    if not await anyio.to_thread.run_sync(registry.is_subsystem_admin, name, user):
        raise Forbidden(f"{user} is not an admin of {name!r}: only its admins upload its front-end")
    body = await request.body()
    if not body:
        raise HTTPException(400, "send the build as a .tar, .tar.gz or .zip request body")

    def store() -> UploadedFrontend:
        try:
            tree = unpack_build(body)
            cid = node.store.add_tree(tree, cid_version=CID_VERSION, pin=True)
        except (BadArchive, DirectoryTooLarge) as exc:
            raise HTTPException(400, str(exc)) from exc
        files, size = count_files(tree)
        return UploadedFrontend(subsystem=name, cid=str(cid), files=files, bytes=size)

    return await anyio.to_thread.run_sync(store)
