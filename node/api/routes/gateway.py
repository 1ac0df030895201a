"""IPFS path gateway on every node: ``GET``/``HEAD /ipfs/{cid}[/{path}]``.

Serves UnixFS files (content type by extension, else sniffed), directories (their
``index.html``, else an HTML listing), single byte ``Range`` requests (206/416) and the trustless
raw block form (``?format=raw`` or ``Accept: application/vnd.ipld.raw``) and the CAR of a
whole DAG (``?format=car`` or ``Accept: application/vnd.ipld.car``) that peers fetch and
re-hash. Responses carry ``ETag: "<cid>"`` (``"<cid>.raw"`` for raw blocks, as the trustless
gateway spec) and immutable cache headers. Errors are RFC 9457 problem+json: invalid CID or
path → 400, unknown CID or path → 404. The route only routes (`node.storage.gateway` answers).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response

from node.errors import InvalidCID
from node.storage.base import BlockStore
from node.storage.cids import format_cid, parse_cid
from node.storage.gateway import serve

router = APIRouter(tags=["ipfs"])


def get_store(request: Request, cid: str) -> BlockStore:
    """Return the node's content store (set by the app as ``app.state.store``), once the body
    ``cid`` names is in it if it was just accepted: a single submission is answered before
    its body is stored (``app.state.wait_body``: :meth:`LedgerService.wait_body_stored`)."""
    wait_body = getattr(request.app.state, "wait_body", None)
    if wait_body is not None:
        wait_body(_canonical(cid))
    store: BlockStore = request.app.state.store
    return store


def _canonical(cid: str) -> str:
    """Return ``cid`` as accepted bodies are named (CIDv1, base32), or as it is if it is not a
    CID (``serve`` answers 400 then)."""
    if cid.startswith("b"):  # base32 already: the form of every accepted body's CID
        return cid
    try:
        return format_cid(parse_cid(cid))
    except InvalidCID:
        return cid


StoreDep = Annotated[BlockStore, Depends(get_store)]

# Documented (in the OpenAPI, so clients and the fuzzer see them); ``serve`` reads them from
# the request itself.
FormatParam = Annotated[
    str | None,
    Query(
        alias="format",
        description="raw: the block itself; car: the DAG as a CARv1 stream (trustless gateway)",
    ),
]
RangeHeader = Annotated[
    str | None, Header(alias="range", description="one byte range: bytes=first-[last] or -count")
]
IfNoneMatchHeader = Annotated[
    str | None, Header(alias="if-none-match", description="an ETag seen before: 304")
]


# GET and HEAD registered apart: one route with both gave two operations one operation id
@router.api_route("/ipfs/{cid}", methods=["HEAD"], response_model=None, operation_id="head_ipfs")
@router.api_route("/ipfs/{cid}", methods=["GET"], response_model=None, operation_id="get_ipfs")
def get_ipfs_root(
    cid: str,
    request: Request,
    store: StoreDep,
    format_: FormatParam = None,
    range_: RangeHeader = None,
    if_none_match: IfNoneMatchHeader = None,
) -> Response:
    """Serve the content behind ``cid`` (file, directory listing/index, or raw block)."""
    return serve(store, cid, "", request)


@router.api_route(
    "/ipfs/{cid}/{path:path}", methods=["HEAD"], response_model=None, operation_id="head_ipfs_path"
)
@router.api_route(
    "/ipfs/{cid}/{path:path}", methods=["GET"], response_model=None, operation_id="get_ipfs_path"
)
def get_ipfs_path(
    cid: str,
    path: str,
    request: Request,
    store: StoreDep,
    format_: FormatParam = None,
    range_: RangeHeader = None,
    if_none_match: IfNoneMatchHeader = None,
) -> Response:
    """Serve ``path`` inside the directory ``cid``."""
    return serve(store, cid, path, request)
