"""A small kubo-RPC-compatible server (``/api/v0/...``) backed by the embedded store.

It implements only what ``node.storage.kubo.KuboStore`` calls, with kubo's parameter names and
response shapes (errors: HTTP 500 with ``{"Message", "Code", "Type": "error"}``). Serving the
embedded store through it shows the embedded store can stand in for kubo's RPC side.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from urllib.parse import unquote

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from node.errors import NotFoundInStore, StoreError
from node.storage.cids import (
    compute_cid_bytes,
    format_cid,
    format_cid_bytes,
    parse_cid,
)
from node.storage.embedded import EmbeddedStore
from node.storage.errors import InvalidCID, IsADirectory


def _error(message: str) -> JSONResponse:
    return JSONResponse({"Message": message, "Code": 0, "Type": "error"}, status_code=500)


def _kubo_message(exc: StoreError) -> str:
    if isinstance(exc, InvalidCID):
        return f"invalid path: invalid cid: {exc}"
    if isinstance(exc, IsADirectory):
        return "this dag node is a directory"
    if isinstance(exc, NotFoundInStore):
        return f"block was not found locally (offline): ipld: could not find node: {exc}"
    return str(exc)


def _split_ipfs_path(arg: str) -> tuple[str, str]:
    cid, _, path = arg.removeprefix("/ipfs/").partition("/")
    return cid, path


async def _multipart(request: Request) -> list[tuple[str, str, bytes]]:
    """Return ``(filename, content type, body)`` of each part of a multipart body."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + await request.body())
    parts = []
    for part in message.iter_parts():
        filename = unquote(part.get_param("filename", header="content-disposition") or "")
        parts.append((filename, part.get_content_type(), part.get_payload(decode=True) or b""))
    return parts


def make_kubo_app(store: EmbeddedStore) -> FastAPI:
    """Return the FastAPI app serving ``store`` over kubo's RPC API."""
    app = FastAPI()

    @app.exception_handler(StoreError)
    async def _store_error(_: Request, exc: StoreError) -> JSONResponse:
        return _error(_kubo_message(exc))

    @app.post("/api/v0/version")
    def version() -> dict[str, str]:
        return {"Version": "0.29.0", "Commit": "", "Repo": "15", "System": "test", "Golang": ""}

    @app.post("/api/v0/add")
    async def add(request: Request) -> Response:
        q = request.query_params
        version_ = int(q.get("cid-version", "0"))
        raw = q.get("raw-leaves", "false").lower() == "true"
        only_hash = q.get("only-hash", "false").lower() == "true"
        pin = q.get("pin", "true").lower() == "true"
        parts = await _multipart(request)
        lines = []
        with tempfile.TemporaryDirectory() as scratch:
            base = Path(scratch)
            tops: list[str] = []
            for name, ctype, body in parts:
                name = name or "bytes"
                target = base / name
                if ctype == "application/x-directory":
                    target.mkdir(parents=True, exist_ok=True)
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(body)
                top = name.split("/")[0]
                if top not in tops:
                    tops.append(top)
            for top in tops:
                cid = store.add_path(
                    base / top, cid_version=version_, raw_leaves=raw, pin=pin, only_hash=only_hash
                )
                size = str((base / top).stat().st_size)
                lines.append(json.dumps({"Name": top, "Hash": cid, "Size": size}))
        return Response("\n".join(lines) + "\n", media_type="application/json")

    @app.post("/api/v0/cat")
    def cat(arg: str, offset: int = 0, length: int | None = None) -> Response:
        cid, path = _split_ipfs_path(arg)
        data = b"".join(store.iter_cat(cid, path, offset=offset, length=length))
        return Response(data, media_type="text/plain")

    @app.post("/api/v0/block/get")
    def block_get(arg: str) -> Response:
        return Response(store.get_block(arg), media_type="text/plain")

    @app.post("/api/v0/block/put")
    async def block_put(request: Request) -> dict[str, object]:
        codec = request.query_params.get("cid-codec", "raw")
        ((_, _, body),) = await _multipart(request)
        cid = format_cid_bytes(compute_cid_bytes(body, codec=codec, version=1))
        store.put_block(cid, body)
        return {"Key": cid, "Size": len(body)}

    @app.post("/api/v0/pin/add")
    def pin_add(arg: str) -> dict[str, list[str]]:
        store.pin(arg)
        return {"Pins": [arg]}

    @app.post("/api/v0/pin/ls")
    def pin_ls(type: str = "all") -> dict[str, dict[str, dict[str, str]]]:
        return {"Keys": {cid: {"Type": "recursive"} for cid in store.pins()}}

    @app.post("/api/v0/files/stat")
    def files_stat(arg: str) -> dict[str, object]:
        cid, path = _split_ipfs_path(arg)
        stat = store.stat(cid, path)
        kind = {"dir": "directory", "symlink": "symlink"}.get(stat.kind, "file")
        size = 0 if stat.kind == "dir" else stat.size
        return {
            "Hash": stat.cid,
            "Size": size,
            "CumulativeSize": stat.size,
            "Blocks": 0,
            "Type": kind,
        }

    @app.post("/api/v0/ls")
    def ls(arg: str) -> dict[str, object]:
        cid, path = _split_ipfs_path(arg)
        stat = store.stat(cid, path)
        types = {"dir": 1, "file": 2, "raw": 2, "symlink": 4}
        links = [
            {
                "Name": e.name,
                "Hash": e.cid,
                "Size": e.size,
                "Type": types.get(e.kind, 0),
                "Target": "",
            }
            for e in stat.entries
        ]
        return {"Objects": [{"Hash": stat.cid, "Links": links}]}

    return app


@contextmanager
def serve_kubo_rpc(store: EmbeddedStore) -> Iterator[str]:
    """Run the kubo RPC server on a free 127.0.0.1 port in a thread; yield its base URL."""
    config = uvicorn.Config(make_kubo_app(store), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not (server.started and server.servers):
        if time.monotonic() > deadline:  # pragma: no cover
            raise RuntimeError("kubo RPC test server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


__all__ = ["format_cid", "make_kubo_app", "parse_cid", "serve_kubo_rpc"]
