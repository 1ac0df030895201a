"""The IPFS path gateway's responses, shared by ``node/api`` (``/ipfs/{cid}``) and
``node/frontend`` (``/`` from the registry's front-end CID).

Serves UnixFS files (content type by extension, else sniffed), directories (their
``index.html``, else an HTML listing), single byte ``Range`` requests (206/416), and the two
trustless forms peers fetch and re-hash: the raw block (``?format=raw`` or ``Accept:
application/vnd.ipld.raw``) and the CAR of a whole DAG (``?format=car`` or ``Accept:
application/vnd.ipld.car``, made by :mod:`node.storage.cargateway`). Responses carry
``ETag: "<cid>"`` (``"<cid>.raw"`` for raw blocks, as the trustless gateway spec) and
immutable cache headers. Errors are RFC 9457 problem+json: invalid CID, path or CAR
parameter → 400, unknown CID or path → 404. The store does the work.
"""

from __future__ import annotations

import mimetypes
import re
from html import escape
from typing import Final
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from node.errors import InvalidCID, NotFoundInStore, StoreError
from node.storage.base import BlockStore, NodeStat
from node.storage.car import CAR_MEDIA_TYPE
from node.storage.cargateway import (
    CAR_CONTENT_TYPE,
    CarRequestError,
    check_car_size,
    iter_car_stream,
    parse_car_request,
)
from node.storage.cids import format_cid, parse_cid
from node.storage.errors import (
    BlockCorrupted,
    InvalidPath,
    IsADirectory,
    NotADirectory,
    UnsupportedNode,
)
from node.storage.reader import compute_path_segments

RAW_MEDIA_TYPE: Final = "application/vnd.ipld.raw"
PROBLEM_MEDIA_TYPE: Final = "application/problem+json"
PROBLEM_TYPE_BASE: Final = "https://collegium.invalid/problems/"
IMMUTABLE_CACHE: Final = "public, max-age=29030400, immutable"
INDEX_FILE: Final = "index.html"
SNIFF_BYTES: Final = 512

#: Magic numbers checked when the extension says nothing (subset of WHATWG mime sniffing).
_MAGIC: Final[tuple[tuple[bytes, str], ...]] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
    (b"\x1f\x8b\x08", "application/gzip"),
    (b"\x00asm", "application/wasm"),
)
#: a single ``bytes=first-last`` range (fullmatch), ASCII digits, at most 19 (more than any
#: size): a longer number (``int()`` refuses 4,301 digits and more) does not match and the
#: header is ignored, as RFC 9110 allows
_RANGE_RE: Final = re.compile(r"bytes=([0-9]{0,19})-([0-9]{0,19})")


def problem(status: int, kind: str, detail: str) -> JSONResponse:
    """Return an RFC 9457 problem+json response."""
    return JSONResponse(
        {
            "type": PROBLEM_TYPE_BASE + kind,
            "title": kind.replace("-", " "),
            "status": status,
            "detail": detail,
        },
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
    )


def compute_content_type(name: str, head: bytes) -> str:
    """Return the media type of a file: by the extension of ``name``, else sniffed from ``head``."""
    guessed, _ = mimetypes.guess_type(name)
    if guessed:
        return guessed + ("; charset=utf-8" if guessed.startswith("text/") else "")
    for magic, media_type in _MAGIC:
        if head.startswith(magic):
            return media_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    lowered = head.lstrip().lower()
    if lowered.startswith((b"<!doctype html", b"<html")):
        return "text/html; charset=utf-8"
    if lowered.startswith(b"<svg"):
        return "image/svg+xml"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # a multi-byte character may be cut at the sniff boundary
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return "application/octet-stream"
    if any(ch < " " and ch not in "\t\n\r\f" for ch in text):
        return "application/octet-stream"
    return "text/plain; charset=utf-8"


def compute_range(header: str | None, size: int) -> tuple[int, int] | None | str:
    """Return the ``[start, end)`` asked by a ``Range`` header, ``None`` to serve everything, or
    ``"unsatisfiable"``.

    Only single ``bytes=`` ranges are honoured; anything else is ignored (RFC 9110 allows that).
    """
    if not header:
        return None
    match = _RANGE_RE.fullmatch(header.strip())
    if not match or match.group(1) == match.group(2) == "":
        return None
    first, last = match.group(1), match.group(2)
    if first == "":  # suffix range: the last N bytes
        count = int(last)
        if count == 0:
            return "unsatisfiable"
        return max(size - count, 0), size
    start = int(first)
    end = size if last == "" else min(int(last) + 1, size)
    if start >= size or start >= end:
        return "unsatisfiable"
    return start, end


def _error_response(exc: StoreError) -> JSONResponse:
    if isinstance(exc, InvalidCID):
        return problem(400, "invalid-cid", str(exc))
    if isinstance(exc, InvalidPath):
        return problem(400, "invalid-path", str(exc))
    if isinstance(exc, NotFoundInStore | NotADirectory):
        return problem(404, "not-found", str(exc))
    if isinstance(exc, UnsupportedNode):
        return problem(501, "unsupported", str(exc))
    if isinstance(exc, BlockCorrupted):
        return problem(500, "block-corrupted", str(exc))
    return problem(502, "store-error", str(exc))


def _wanted_format(request: Request) -> str | None:
    """Return ``"raw"``, ``"car"``, ``None`` (deserialized) or another asked ``format``; the
    query parameter wins over ``Accept``, as the trustless gateway spec says."""
    fmt = request.query_params.get("format")
    if fmt is not None:
        return fmt
    accept = request.headers.get("accept", "")
    if CAR_MEDIA_TYPE in accept:
        return "car"
    return "raw" if RAW_MEDIA_TYPE in accept else None


def _immutable_headers(etag: str, ipfs_path: str) -> dict[str, str]:
    return {"ETag": etag, "Cache-Control": IMMUTABLE_CACHE, "X-Ipfs-Path": ipfs_path}


def _listing(ipfs_path: str, stat: NodeStat) -> str:
    base = ipfs_path.rstrip("/")
    rows = []
    if base.count("/") > 2:
        parent = base.rsplit("/", 1)[0]
        rows.append(f"<tr><td><a href='{quote(parent)}/'>..</a></td><td></td><td></td></tr>")
    for entry in stat.entries:
        href = quote(f"{base}/{entry.name}") + ("/" if entry.kind == "dir" else "")
        rows.append(
            f"<tr><td><a href='{href}'>{escape(entry.name)}</a></td>"
            f"<td>{entry.size}</td><td><code>{escape(entry.cid)}</code></td></tr>"
        )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{escape(ipfs_path)}</title></head><body>"
        f"<h1>Index of {escape(ipfs_path)}</h1><table>"
        "<tr><th>name</th><th>size</th><th>cid</th></tr>" + "".join(rows) + "</table></body></html>"
    )


def serve(store: BlockStore, cid: str, path: str, request: Request) -> Response:
    """Return the gateway response for ``/ipfs/{cid}/{path}``."""
    head_only = request.method == "HEAD"
    try:
        root = format_cid(parse_cid(cid))
        segments = compute_path_segments(path)
        ipfs_path = "/ipfs/" + "/".join([root, *segments])
        fmt = _wanted_format(request)
        if fmt == "car":
            return _serve_car(store, root, segments, request)
        if fmt not in (None, "raw"):
            return problem(400, "unsupported-format", f"format {fmt!r} is not supported")
        if fmt == "raw":
            # a bare CID is served straight from the block store (any codec, no decoding): this
            # is what peers fetch when they sync; a path is resolved first
            target = store.stat(root, "/".join(segments)).cid if segments else root
            block = store.get_block(target)
            headers = _immutable_headers(f'"{target}.raw"', ipfs_path)
            headers["Content-Disposition"] = f'attachment; filename="{target}.bin"'
            headers["X-Content-Type-Options"] = "nosniff"
            body = b"" if head_only else block
            headers["Content-Length"] = str(len(block))
            return Response(body, media_type=RAW_MEDIA_TYPE, headers=headers)
        stat = store.stat(root, "/".join(segments))
        etag = f'"{stat.cid}"'
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=_immutable_headers(etag, ipfs_path))
        name = segments[-1] if segments else ""
        if stat.kind == "dir":
            index = next((e for e in stat.entries if e.name == INDEX_FILE), None)
            if index is None:
                page = _listing(ipfs_path, stat).encode()
                headers = _immutable_headers(etag, ipfs_path)
                headers["Content-Length"] = str(len(page))
                return Response(
                    b"" if head_only else page, 200, headers, "text/html; charset=utf-8"
                )
            stat = store.stat(stat.cid, INDEX_FILE)
            name = INDEX_FILE
        return _serve_file(store, stat, name, ipfs_path, request, head_only)
    except BlockCorrupted as exc:
        _request_repair(request, exc.cid)
        return _error_response(exc)
    except StoreError as exc:
        return _error_response(exc)


def _serve_car(store: BlockStore, root: str, segments: list[str], request: Request) -> Response:
    """Return the CAR of the DAG under ``root`` (:mod:`node.storage.cargateway`): 400 for a
    request it does not serve, 404 if the root block is not here."""
    try:
        car = parse_car_request(parse_cid(root), segments, request.query_params)
        block = store.get_block(root)
        check_car_size(car, block)
    except CarRequestError as exc:
        return problem(400, exc.kind, exc.detail)
    headers = _immutable_headers(car.etag, f"/ipfs/{root}")
    # not immutable: a stream ends early at a block this node lacks, and a cache must not keep
    # that incomplete CAR as the answer for good
    headers["Cache-Control"] = "no-cache"
    headers["Content-Disposition"] = f'attachment; filename="{root}.car"'
    headers["X-Content-Type-Options"] = "nosniff"
    if request.method == "HEAD":
        return Response(b"", media_type=CAR_CONTENT_TYPE, headers=headers)
    body = iter_car_stream(store, car, block, lambda cid: _request_repair(request, cid))
    return StreamingResponse(body, media_type=CAR_CONTENT_TYPE, headers=headers)


def _request_repair(request: Request, cid: str) -> None:
    """Ask the node's sync loop (if it runs one) to re-fetch a corrupted block from a peer."""
    syncer = getattr(getattr(request.app.state, "node", None), "syncer", None)
    if syncer is not None:
        syncer.request_repair(cid)


def _serve_file(
    store: BlockStore, stat: NodeStat, name: str, ipfs_path: str, request: Request, head_only: bool
) -> Response:
    if stat.kind == "dir":  # pragma: no cover - index.html that is a directory
        raise IsADirectory(f"{stat.cid} is a directory")
    size = stat.size
    headers = _immutable_headers(f'"{stat.cid}"', ipfs_path)
    headers["Accept-Ranges"] = "bytes"
    head = b"".join(store.iter_cat(stat.cid, offset=0, length=SNIFF_BYTES))
    media_type = compute_content_type(name, head)
    wanted = compute_range(request.headers.get("range"), size)
    if wanted == "unsatisfiable":
        headers["Content-Range"] = f"bytes */{size}"
        return problem_with_headers(416, f"range not satisfiable for {size} bytes", headers)
    status = 200
    start, end = 0, size
    if isinstance(wanted, tuple):
        start, end = wanted
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    headers["Content-Length"] = str(end - start)
    if head_only or end == start:
        return Response(b"", status, headers, media_type)
    body = store.iter_cat(stat.cid, offset=start, length=end - start)
    return StreamingResponse(body, status, headers, media_type)


def problem_with_headers(status: int, detail: str, headers: dict[str, str]) -> JSONResponse:
    """Return a problem+json response that keeps extra ``headers`` (e.g. ``Content-Range``)."""
    response = problem(status, "range-not-satisfiable", detail)
    for key in ("Content-Range", "X-Ipfs-Path"):
        if key in headers:
            response.headers[key] = headers[key]
    return response
