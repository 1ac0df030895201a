"""A tiny ASGI helper shared by the raw middlewares (body limits, rate limits, router)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from starlette.types import Send

PROBLEM_MEDIA_TYPE = b"application/problem+json"


async def send_problem(
    send: Send, status: int, title: str, detail: str, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """Send a complete RFC 9457 problem+json response with ``headers`` appended."""
    body = json.dumps(
        {"type": "about:blank", "title": title, "status": status, "detail": detail}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
