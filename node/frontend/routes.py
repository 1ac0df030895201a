"""``GET /`` and the app's assets: the system front-end, from the registry's CID when published.

Whichever node a user reaches serves the same files: the directory whose CID the registry
records (``frontendCid``), read from this node's content store (the syncer fetches and pins it
from peers). Until a CID is published, or while this node lacks its blocks, the build directory
shipped with the node (``frontend/dist``) is served instead. ``index.html`` is served with
``no-cache`` (the CID behind ``/`` changes on publish); hashed assets are immutable.

``/s/<subsystem>/…`` serves that subsystem's own bundle (``subsystemFrontend`` in the
registry) the same way. The router sends these paths to the hosts of the subsystem's
``fe_subsystem`` role this epoch (:mod:`node.router.paths`); a host that has no bundle to
serve (none published, or its blocks not here yet) serves the system front-end instead, which
opens on the subsystem's page.
"""

from __future__ import annotations

import html
import logging
import mimetypes
import threading
import time
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)

from node.errors import CollegiumError, InvalidCID, NotFoundInStore
from node.frontend import INDEX_FILE, default_build_dir
from node.storage.gateway import IMMUTABLE_CACHE, problem, serve
from node.storage.reader import compute_path_segments

log = logging.getLogger(__name__)

#: How long the registry's front-end CID is cached before it is read on-chain again.
CID_CACHE_SECONDS: Final = 10.0
INDEX_CACHE: Final = "no-cache"
ASSETS_DIR: Final = "assets"
SOURCE_HEADER: Final = "X-Collegium-Frontend"
SUBSYSTEM_PREFIX: Final = "/s"
MAX_SUBSYSTEM_NAME: Final = 64
#: ``SubsystemFrontends`` answer for a name the registry does not know.
UNKNOWN: Final = None
#: At most this many subsystem names are cached (unknown names too); then the cache restarts.
MAX_CACHED_NAMES: Final = 1024

router = APIRouter(include_in_schema=False, tags=["frontend"])


class FrontendSource:
    """Which front-end to serve: the registry's CID (cached) if the store holds it, else the
    build directory. Thread-safe."""

    def __init__(self, registry: Any, store: Any, build_dir: Path) -> None:
        self.registry = registry
        self.store = store
        self.build_dir = build_dir
        self._lock = threading.Lock()
        self._cid = ""
        self._read_at = float("-inf")
        self._pinned: set[str] = set()

    def current_cid(self) -> str | None:
        """Return the published CID if it can be served from this node's store, else ``None``.

        Only the first call waits for the chain. Later, a CID older than ``CID_CACHE_SECONDS``
        is served while one background read refreshes it: a chain that does not answer (the
        node's provider retries for up to a minute) never holds the page that would say so."""
        with self._lock:
            now = time.monotonic()
            first = self._read_at == float("-inf")
            stale = now - self._read_at >= CID_CACHE_SECONDS
            if stale:
                self._read_at = now  # one read at a time; the next after CID_CACHE_SECONDS
        if first:
            self._refresh()
        elif stale:
            threading.Thread(target=self._refresh, name="frontend-cid", daemon=True).start()
        with self._lock:
            cid = self._cid
        if not cid:
            return None
        return cid if _is_servable(self.store, cid, self._pinned) else None

    def _refresh(self) -> None:
        try:
            cid = self.registry.frontend_cid()
        except CollegiumError as exc:
            log.warning("cannot read the front-end CID from the registry: %s", exc)
            return
        with self._lock:
            self._cid = cid


def _is_servable(store: Any, cid: str, pinned: set[str]) -> bool:
    """Return whether ``store`` holds ``cid`` with its ``index.html`` (pinning it the first
    time; ``pinned`` remembers the CIDs already checked)."""
    if cid in pinned:
        return True
    try:
        if not store.has(cid):
            return False
        store.stat(cid, INDEX_FILE)
        store.pin(cid)
    except (NotFoundInStore, InvalidCID) as exc:
        log.info("front-end %s not (fully) here yet, serving a fallback: %s", cid, exc)
        return False
    except CollegiumError as exc:
        log.warning("front-end %s cannot be served: %s", cid, exc)
        return False
    pinned.add(cid)
    return True


class SubsystemFrontends:
    """Which bundle serves ``/s/<name>/``: the registry's ``subsystemFrontend`` CID (cached per
    subsystem) if the store holds it. Thread-safe."""

    def __init__(self, registry: Any, store: Any) -> None:
        self.registry = registry
        self.store = store
        self._lock = threading.Lock()
        self._cids: dict[str, tuple[float, str | None]] = {}
        self._pinned: set[str] = set()

    def registered_cid(self, name: str) -> str | None:
        """Return the CID the registry records for ``name`` ("" if none), or ``UNKNOWN``
        (``None``) if there is no such subsystem. Raises ``ChainError`` if the registry cannot
        be read and nothing is cached."""
        now = time.monotonic()
        with self._lock:
            cached = self._cids.get(name)
        if cached is not None and now - cached[0] < CID_CACHE_SECONDS:
            return cached[1]
        try:
            cid: str | None = (
                self.registry.subsystem_frontend(name)
                if self.registry.subsystem_exists(name)
                else UNKNOWN
            )
        except CollegiumError as exc:
            if cached is None:
                raise
            log.warning("cannot read the front-end CID of %r from the registry: %s", name, exc)
            cid = cached[1]
        with self._lock:
            if len(self._cids) >= MAX_CACHED_NAMES:
                self._cids.clear()
            self._cids[name] = (now, cid)
        return cid

    def forget(self, name: str) -> None:
        """Drop the cached CID of ``name`` (this node relayed a new one: read it afresh)."""
        with self._lock:
            self._cids.pop(name, None)

    def servable_cid(self, cid: str) -> bool:
        """Return whether this node's store can serve the bundle ``cid`` now."""
        return _is_servable(self.store, cid, self._pinned)


def compute_header_value(text: str) -> str:
    """Return ``text`` as a valid HTTP header value: visible ASCII and inner spaces only
    (anything else percent-encoded), so a name from the URL can never break the response."""
    return quote(text.strip(), safe="".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%"))


def get_source(request: Request) -> FrontendSource:
    """Return the app's front-end source (created on first use from ``app.state.node``)."""
    state = request.app.state
    source: FrontendSource | None = getattr(state, "frontend", None)
    if source is None:
        node = state.node
        source = FrontendSource(
            node.registry, node.store, default_build_dir(node.settings.frontend_dir)
        )
        state.frontend = source
    return source


def get_subsystem_frontends(request: Request) -> SubsystemFrontends:
    """Return the app's subsystem front-end sources (created on first use)."""
    state = request.app.state
    frontends: SubsystemFrontends | None = getattr(state, "subsystem_frontends", None)
    if frontends is None:
        node = state.node
        frontends = SubsystemFrontends(node.registry, node.store)
        state.subsystem_frontends = frontends
    return frontends


def _from_build_dir(build_dir: Path, path: str, head_only: bool) -> Response:
    try:
        segments = compute_path_segments(path)
    except CollegiumError as exc:
        return problem(400, "invalid-path", str(exc))
    target = build_dir.joinpath(*segments) if segments else build_dir / INDEX_FILE
    if not target.is_file():
        if not (build_dir / INDEX_FILE).is_file():
            return problem(
                503,
                "frontend-not-built",
                f"no front-end at {build_dir}: run `npm run build` in frontend/ or "
                "`collegium frontend publish`; the server-rendered explorer is at /explorer",
            )
        return problem(404, "not-found", f"no front-end file {path!r}")
    media_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    headers = {SOURCE_HEADER: "build-dir"}
    if head_only:
        headers["Content-Length"] = str(target.stat().st_size)
        return Response(b"", 200, headers, media_type)
    return FileResponse(target, media_type=media_type, headers=headers)


def serve_frontend(request: Request, path: str) -> Response:
    """Return the front-end file at ``path`` ("" is ``index.html``)."""
    source = get_source(request)
    is_index = path in ("", INDEX_FILE)
    cid = source.current_cid()
    if cid is None:
        response = _from_build_dir(source.build_dir, path, request.method == "HEAD")
    else:
        response = serve(source.store, cid, path, request)
        response.headers[SOURCE_HEADER] = f"ipfs {cid}"
    if response.status_code < 400:
        response.headers["Cache-Control"] = INDEX_CACHE if is_index else IMMUTABLE_CACHE
    return response


@router.api_route("/", methods=["GET", "HEAD"], response_model=None)
def frontend_index(request: Request) -> Response:
    """Serve the front-end's ``index.html``."""
    return serve_frontend(request, "")


@router.api_route("/index.html", methods=["GET", "HEAD"], response_model=None)
def frontend_index_file(request: Request) -> Response:
    """Serve ``index.html`` by its name too."""
    return serve_frontend(request, INDEX_FILE)


@router.api_route("/assets/{path:path}", methods=["GET", "HEAD"], response_model=None)
def frontend_asset(path: str, request: Request) -> Response | JSONResponse:
    """Serve one of the app's (content-hashed) assets."""
    return serve_frontend(request, f"{ASSETS_DIR}/{path}")


NOT_FOUND_PAGE: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>No subsystem {name}</title></head>
<body><main><h1>No subsystem “{name}”</h1>
<p>The registry has no subsystem named “{name}”, so there is no front-end at this address.</p>
<p><a href="/">Open the system app</a> to see every subsystem.</p></main></body></html>
"""


def unknown_subsystem(request: Request, name: str) -> Response:
    """Return the 404 of an unknown subsystem: an HTML page for a browser (it asks for
    ``text/html``), problem+json for any other client."""
    detail = f"no subsystem {name!r} in the registry"
    if "text/html" in request.headers.get("accept", ""):
        page = NOT_FOUND_PAGE.format(name=html.escape(name))
        return HTMLResponse(page, 404, {"Cache-Control": INDEX_CACHE})
    return problem(404, "unknown-subsystem", detail)


def serve_subsystem_frontend(request: Request, name: str, path: str) -> Response:
    """Return the file at ``path`` of subsystem ``name``'s front-end, or of the system
    front-end when the subsystem has no bundle here (404 for an unknown subsystem)."""
    if not name or len(name.encode()) > MAX_SUBSYSTEM_NAME:
        return unknown_subsystem(request, name)
    frontends = get_subsystem_frontends(request)
    try:
        cid = frontends.registered_cid(name)
    except CollegiumError as exc:
        return problem(503, "registry-unavailable", f"cannot read the registry: {exc}")
    if cid is UNKNOWN:
        return unknown_subsystem(request, name)
    is_index = path in ("", INDEX_FILE)
    if cid and frontends.servable_cid(cid):
        response = serve(frontends.store, cid, path, request)
        response.headers[SOURCE_HEADER] = compute_header_value(f"ipfs {cid} subsystem {name}")
        if response.status_code < 400:
            response.headers["Cache-Control"] = INDEX_CACHE if is_index else IMMUTABLE_CACHE
        return response
    response = serve_frontend(request, path)
    reason = "missing" if cid else "none published"
    source = response.headers.get(SOURCE_HEADER, "")  # absent on a problem (e.g. 404)
    fallback = f"system fallback ({reason})" + (f": {source}" if source else "")
    response.headers[SOURCE_HEADER] = compute_header_value(fallback)
    return response


@router.api_route(SUBSYSTEM_PREFIX + "/{name}", methods=["GET", "HEAD"], response_model=None)
def subsystem_frontend_bare(name: str, request: Request) -> Response:
    """Redirect ``/s/<name>`` to ``/s/<name>/`` (the bundle's relative paths need the slash)."""
    target = request.url.path + "/"
    if request.url.query:
        target += "?" + request.url.query
    return RedirectResponse(target, status_code=308)


@router.api_route(
    SUBSYSTEM_PREFIX + "/{name}/{path:path}", methods=["GET", "HEAD"], response_model=None
)
def subsystem_frontend_file(name: str, path: str, request: Request) -> Response:
    """Serve a file of subsystem ``name``'s front-end (``""``: its ``index.html``)."""
    return serve_subsystem_frontend(request, name, path)
