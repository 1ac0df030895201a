"""Forwarding a request to a peer: the body buffered (bounded), the headers a relayed request
carries (one more hop, the epoch, this node's peer signature; never the session), failover
in rank order (connect errors always, timeouts and 5xx only for idempotent methods) and the
response streamed back."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import httpx
from starlette.types import Receive, Scope, Send

from node.auth.peer import PEER_HEADER, sign_peer_request
from node.router.health import PeerHealth
from node.router.protocol import (
    EPOCH_HEADER,
    HOP_BY_HOP,
    HOPS_HEADER,
    IDEMPOTENT_METHODS,
    MAX_PROXY_BODY,
    PRIVATE_HEADERS,
    RouterObserver,
    problem,
    request_target,
)
from node.router.route import Peer


class Forwarding:
    """The forwarding half of :class:`node.router.proxy.RouterMiddleware` (which sets these
    attributes)."""

    client: httpx.AsyncClient
    health: PeerHealth
    account: Any
    observer: RouterObserver | None

    async def _proxy(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        role: str,
        epoch: int | None,
        ordered: list[Peer],
        headers: Mapping[str, str],
        hops: int,
        extra: list[tuple[bytes, bytes]],
        *,
        unreachable: int = 503,
    ) -> None:
        """Relay the request to the first of ``ordered`` that answers.

        When none can be reached, answer ``unreachable``: 503, or 421 for a signed request
        bound to one destination (it never reached that node, so the client may safely ask
        ``GET /api/v1/route`` again and re-sign for the next host).
        """
        body = await _read_body(receive)
        if body is None:
            detail = f"a proxied body is limited to {MAX_PROXY_BODY} bytes"
            await problem(send, 413, "payload too large", detail, extra)
            return
        out = self._forward_headers(scope, headers, hops, epoch)
        if self.observer is not None:
            self.observer.on_proxied(role)
        if await self._relay_first(scope, send, role, ordered, out, body, extra):
            return
        title = "no live host" if unreachable == 503 else "misdirected request"
        if unreachable != 503 and self.observer is not None:
            self.observer.on_failover(role)  # the client re-routes to the next host
        await problem(send, unreachable, title,
                      f"no host of {role} answered: {[p.address for p in ordered]}; "
                      "ask GET /api/v1/route again", extra)  # fmt: skip

    def _forward_headers(
        self, scope: Scope, headers: Mapping[str, str], hops: int, epoch: int | None
    ) -> list[tuple[str, str]]:
        """Return the headers a relayed request carries: the client's end-to-end ones, one
        more hop, the epoch we routed by and, with a node account, our peer signature."""
        out = [
            (k, v)
            for k, v in headers.items()
            if k not in HOP_BY_HOP and k not in PRIVATE_HEADERS
            and k not in (HOPS_HEADER, EPOCH_HEADER)
        ]  # fmt: skip
        out.append((HOPS_HEADER, str(hops + 1)))
        if epoch is not None:
            out.append((EPOCH_HEADER, str(epoch)))  # the epoch we routed by: _sender_route
        if self.account is not None:
            method, target = scope["method"], request_target(scope)
            signed = sign_peer_request(self.account, method, target, hops + 1, int(time.time()))
            out.append((PEER_HEADER, signed))
        return out

    async def _relay_first(
        self,
        scope: Scope,
        send: Send,
        role: str,
        ordered: list[Peer],
        out: list[tuple[str, str]],
        body: bytes,
        extra: list[tuple[bytes, bytes]],
    ) -> bool:
        """Relay the request to the first of ``ordered`` that answers and return True (also
        after a 504 for a non-idempotent request that may have reached its host); return
        False if none could be reached."""
        method = scope["method"]
        target = request_target(scope)
        idempotent = method in IDEMPOTENT_METHODS
        for i, peer in enumerate(ordered):
            last = i == len(ordered) - 1
            if i > 0 and self.observer is not None:
                self.observer.on_failover(role)
            request = self.client.build_request(method, peer.endpoint + target, headers=out,
                                                content=body)  # fmt: skip
            try:
                response = await self.client.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout):
                self.health.mark(peer.endpoint, False)
                continue
            except httpx.TransportError as exc:
                self.health.mark(peer.endpoint, False)
                if idempotent:
                    continue
                await problem(send, 504, "gateway timeout", f"{peer.address}: {exc}", extra)
                return True
            if _is_peer_failure(response.status_code) and idempotent and not last:
                await response.aclose()
                self.health.mark(peer.endpoint, False)
                continue
            self.health.mark(peer.endpoint, True)
            await _relay(send, response)
            return True
        return False


def _is_peer_failure(status: int) -> bool:
    return status >= httpx.codes.INTERNAL_SERVER_ERROR and status != httpx.codes.NOT_IMPLEMENTED


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_PROXY_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _relay(send: Send, response: httpx.Response) -> None:
    headers = [
        (k.lower(), v)
        for k, v in response.headers.raw
        if k.decode("latin-1").lower() not in HOP_BY_HOP
    ]
    try:
        await send({"type": "http.response.start", "status": response.status_code,
                    "headers": headers})  # fmt: skip
        async for chunk in response.aiter_raw():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        await response.aclose()
