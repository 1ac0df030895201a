"""Request body size limits, enforced while the body streams in (413 problem+json)."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from node.asgi import send_problem

DEFAULT_BODY_LIMIT = 1024 * 1024


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
