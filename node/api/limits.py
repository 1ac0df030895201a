"""Request body limits: size while the body streams in (413), JSON nesting depth before
parsing (400); both answer problem+json."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import numpy as np
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from node.asgi import send_problem
from node.config import DEFAULT_JSON_MAX_DEPTH, DEFAULT_MAX_BODY_BYTES

DEFAULT_BODY_LIMIT = DEFAULT_MAX_BODY_BYTES


class BodyLimitMiddleware:
    """Reject request bodies larger than ``limit_for(path)`` bytes with 413."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _reply(send, 400, "invalid Content-Length header")
                    return
                if declared > limit:
                    await _reply(send, 413, f"request body is {declared} bytes; limit {limit}")
                    return
        received = 0
        rejected = False

        async def limited_receive() -> Message:
            nonlocal received, rejected
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit and not rejected:
                    # Answer now; the application then sees the client as gone and any
                    # response it still tries to send is dropped below.
                    rejected = True
                    await _reply(send, 413, f"request body exceeds the limit of {limit} bytes")
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not rejected:
                await send(message)

        await self.app(scope, limited_receive, guarded_send)


async def _reply(send: Send, status: int, detail: str) -> None:
    title = "payload too large" if status == 413 else "bad request"
    await send_problem(send, status, title, detail)


# --- JSON nesting depth, checked before any parser sees the body -----------------------------

_KEEP = b'"[]{}'
_DROP = bytes(b for b in range(256) if b not in _KEEP)
_STEP = np.zeros(256, dtype=np.int8)
_STEP[[ord("["), ord("{")]] = 1
_STEP[[ord("]"), ord("}")]] = -1
_QUOTE = ord('"')
_NEUTRAL = ord(" ")


def compute_json_depth(body: bytes, stop_above: int) -> int:
    """Return the nesting depth of arrays and objects in the JSON text ``body``.

    Brackets inside strings do not count. Meant to run *before* parsing, so it never
    recurses and reads bytes only: a ``"`` escaped by an odd run of backslashes is blanked
    out, which leaves every remaining ``"`` a string delimiter (RFC 8259 JSON is UTF-8,
    where ``"`` and ``\\`` bytes never occur inside a multi-byte character); then only
    ``"[]{}`` are kept, brackets between an odd and an even quote dropped, and the depth
    is the largest prefix sum of +1 per opener and -1 per closer. Everything runs in C
    (``bytes.translate`` and numpy): ≈ 2-3 ms for a 1 MB batch of transactions. With no
    more than ``stop_above`` openers the depth cannot exceed it, and that count is returned.
    """
    data: bytes | bytearray = body
    if b"\\" in body:
        data = _blank_escaped_quotes(body)
    text = data.translate(None, _DROP)
    openers = text.count(b"[") + text.count(b"{")
    if openers <= stop_above:
        return openers
    chars = np.frombuffer(text, dtype=np.uint8)
    steps = _STEP[chars].astype(np.int32)
    if b'"' in text:
        steps[np.cumsum(chars == _QUOTE, dtype=np.int32) & 1 == 1] = 0  # inside a string
    return int(np.cumsum(steps, out=steps).max(initial=0))


def _blank_escaped_quotes(body: bytes) -> bytearray:
    """Return a copy of ``body`` with each ``"`` that ends an odd run of backslashes blanked."""
    out = bytearray(body)
    chars = np.frombuffer(out, dtype=np.uint8)
    slashes = np.flatnonzero(chars == ord("\\"))
    breaks = np.flatnonzero(np.diff(slashes) != 1)
    run_ends = np.append(slashes[breaks], slashes[-1])  # last backslash of each run
    run_starts = np.insert(slashes[breaks + 1], 0, slashes[0])
    odd = (run_ends - run_starts) % 2 == 0  # an odd number of backslashes escapes the next
    escaped = run_ends[odd] + 1
    escaped = escaped[escaped < len(chars)]
    escaped = escaped[chars[escaped] == _QUOTE]
    chars[escaped] = _NEUTRAL
    return out


def is_utf8_json(body: bytes) -> bool:
    """Return whether ``body`` is JSON text in UTF-8 as ``json.loads`` would detect it.

    ``json.loads(bytes)`` also accepts UTF-16 and UTF-32, whose code units can hold a
    ``"`` byte inside a character and so would fool :func:`compute_json_depth`.
    """
    return json.detect_encoding(body) in ("utf-8", "utf-8-sig")


class JsonDepthMiddleware:
    """Refuse a request body nested deeper than ``max_depth`` (or not UTF-8) with 400.

    The body (already bounded by :class:`BodyLimitMiddleware`, which sits outside) is read
    in full, checked by :func:`compute_json_depth` and handed on unchanged. Every route that
    takes a body takes JSON (some parse it whatever the Content-Type says, ``/rpc`` for
    one), so every body is checked. A deeply nested body would otherwise make the JSON
    decoder recurse once per level: with a dependency's recursion limit of 100,000 that
    overflows the C stack and kills the process (SIGSEGV).
    """

    def __init__(
        self,
        app: ASGIApp,
        max_depth: int = DEFAULT_JSON_MAX_DEPTH,
        binary_path: Callable[[str], bool] = lambda _: False,
    ) -> None:
        self.app = app
        self.max_depth = max_depth
        self.binary_path = binary_path  # routes whose body is not JSON (an archive)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope.get("method") in ("GET", "HEAD", "OPTIONS")
            or self.binary_path(scope["path"])
        ):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left, or a limit answered
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and not is_utf8_json(body):
            await send_problem(
                send, 400, "bad request", "a JSON request body must be UTF-8 (RFC 8259 §8.1)"
            )
            return
        depth = compute_json_depth(body, self.max_depth)
        if depth > self.max_depth:
            await send_problem(
                send,
                400,
                "JSON nested too deeply",
                f"the request body nests arrays/objects {depth} levels deep; "
                f"the limit is {self.max_depth} (json_max_depth)",
            )
            return
        await self.app(scope, replay_body(body, receive), send)


# --- The process recursion limit ------------------------------------------------------------

RECURSION_LIMIT = 12_288
"""What py-evm asks for (``eth.EVM_RECURSION_LIMIT``: 1024 EVM call frames × 12 Python frames).

``py_ecc`` (imported with py-evm, for the pairing precompiles) raises the limit to 100,000 at
import. A recursion that deep overflows the 8 MB C stack before Python's guard trips, so one
recursive parse of a 200 KB body (``[`` × 100,000) killed the node with SIGSEGV; at 12,288 the
same recursion ends in a ``RecursionError`` instead (``json`` survives 20,000 levels).
"""


def restore_recursion_limit(limit: int = RECURSION_LIMIT) -> int:
    """Set the process recursion limit back to ``limit`` after the dependencies that raise it
    at import (``py_ecc``) are imported; return the limit found before."""
    import py_ecc  # noqa: F401 -- its import raises the limit; it must happen before ours

    before = sys.getrecursionlimit()
    sys.setrecursionlimit(limit)
    return before


def replay_body(body: bytes, receive: Receive) -> Receive:
    """Return a ``receive`` that yields the already read ``body`` once, then defers to
    ``receive`` (a middleware that read the body hands it on)."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
