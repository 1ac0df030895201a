"""``POST /api/v1/transactions`` answered without FastAPI's per-request machinery.

A single submission is the node's hottest request. Through FastAPI it pays route matching
over every route, the content type parsed with ``email.message``, dependency solving, the
response model validated and serialised a second time and a hop through anyio's thread
limiter (40 tokens shared by every sync route). :class:`SubmitFastPath` is a plain ASGI
middleware that sits inside every edge middleware (metrics, CORS, rate limit, router, body
size limit, JSON depth check: all of them still see the request) and answers the plain
case itself: ``POST`` to exactly the path, no query string, ``Content-Type:
application/json``, a body the route's own schema (:class:`BusinessTxCreate`, validated
once, as FastAPI would: ``json.loads`` then ``model_validate``) accepts. The checks are the
route's (:meth:`LedgerService.submit_one`'s), run on the event loop when the participant
cache can answer them (:meth:`LedgerService.verify_cached`); the item then joins the group
commit without a thread per request (:meth:`LedgerService.submit_later`: its future is
settled once the group is durable). When a check would read the registry, ``submit_one``
runs in a thread pool of this path's own instead. The answer is the route's: 202,
``Location`` and the :class:`BusinessTxPublic` JSON, or the problem+json of the ledger's error
with the status the app's handler gives it (:func:`node.api.problems.status_of`).

Anything else goes to the app unchanged, with the body it read handed on: ``?wait=true``,
another method or content type, malformed JSON or a schema error (the route then answers
its own 422, word for word as before).
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Final

import pydantic
from starlette.types import ASGIApp, Receive, Scope, Send

from node.api.limits import replay_body
from node.api.problems import problem, status_of
from node.api.schemas import BusinessTxCreate, BusinessTxPublic
from node.errors import CollegiumError
from node.ledger.service import AcceptedTx, LedgerService, Submission

#: threads waiting in the group commit at once; more requests queue for a thread
SUBMIT_THREADS: Final = 64
JSON_TYPES: Final = frozenset({b"application/json", b"application/json; charset=utf-8"})


class SubmitFastPath:
    """Answer plain single submissions to ``path`` (see the module doc); pass the rest on."""

    def __init__(self, app: ASGIApp, ledger: LedgerService, path: str) -> None:
        self.app = app
        self.ledger = ledger
        self.path = path
        self._threads = ThreadPoolExecutor(SUBMIT_THREADS, thread_name_prefix="submit")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._is_plain(scope):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:  # the client left, or a limit outside has answered
            return
        try:
            parsed = BusinessTxCreate.model_validate(json.loads(body))
        except (ValueError, pydantic.ValidationError):  # the route words its own 422
            await self.app(scope, replay_body(body, receive), send)
            return
        item = Submission(
            parsed.transaction.to_domain(), bytes.fromhex(parsed.signature[2:]), parsed.signer
        )
        try:
            accepted = await self._submit(item)
        except CollegiumError as exc:  # as the app's handler answers it
            code, kind = status_of(exc)
            await problem(code, kind.replace("-", " "), str(exc), kind)(scope, receive, send)
            return
        await _send_accepted(send, BusinessTxPublic.from_accepted(accepted), self.path)

    async def _submit(self, item: Submission) -> AcceptedTx:
        """Return ``item`` accepted once durable, or raise its ``ValidationError``.

        Checked here on the event loop when the participant cache has every answer, then
        handed to the group commit without a thread of its own; otherwise (an answer to
        read from the registry) :meth:`LedgerService.submit_one` runs in this path's pool.
        """
        loop = asyncio.get_running_loop()
        verified = self.ledger.verify_cached(item)
        if verified is None:
            return await loop.run_in_executor(self._threads, self.ledger.submit_one, item)
        future: asyncio.Future[AcceptedTx] = loop.create_future()

        def done(accepted: AcceptedTx | None, error: BaseException | None) -> None:
            loop.call_soon_threadsafe(_settle, future, accepted, error)

        self.ledger.submit_later(item, verified, done)
        return await future

    def _is_plain(self, scope: Scope) -> bool:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] != self.path
            or scope.get("query_string")
        ):
            return False
        for name, value in scope["headers"]:
            if name == b"content-type":
                return value.lower() in JSON_TYPES
        return False


def _settle(
    future: asyncio.Future[AcceptedTx], accepted: AcceptedTx | None, error: BaseException | None
) -> None:
    """Give ``future`` the group commit's answer (on the event loop)."""
    if future.cancelled():  # the client left; the item is committed all the same
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(accepted)  # type: ignore[arg-type]


async def _read_body(receive: Receive) -> bytes | None:
    """Return the whole request body, or None if the client left first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send_accepted(send: Send, public: BusinessTxPublic, path: str) -> None:
    """Send 202 with the accepted transaction, as the route's ``JSONResponse`` would."""
    content = public.model_dump_json().encode()
    await send(
        {
            "type": "http.response.start",
            "status": 202,
            "headers": [
                (b"content-length", str(len(content)).encode()),
                (b"content-type", b"application/json"),
                (b"location", f"{path}/{public.id}".encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})
