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
route's (:meth:`LedgerService.submit_one`'s): the body is read and its signature checked on
the event loop, or, when requests come together, in the verifier's workers
(:mod:`node.api.bodychecks`); the participant checks run on the loop when the participant
cache can answer them (:meth:`LedgerService.admit_cached`); the item then joins the group
commit without a thread per request (:meth:`LedgerService.submit_later`: its future is
settled once the group is durable). When a check would read the registry, ``submit_one``
runs in a thread pool of this path's own instead. The answer is the route's: 202,
``Location`` and the :class:`BusinessTxPublic` JSON (written directly: :func:`accepted_json`),
or the problem+json of the ledger's error
with the status the app's handler gives it (:func:`node.api.problems.status_of`).

Anything else goes to the app unchanged, with the body it read handed on: ``?wait=true``,
another method or content type, malformed JSON or a schema error (the route then answers
its own 422, word for word as before).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

from node.api.bodychecks import BodyChecks
from node.api.limits import replay_body
from node.api.problems import problem, status_of
from node.api.schemas import accepted_json
from node.errors import CollegiumError, ValidationError
from node.ledger.service import AcceptedTx, LedgerService, Submission
from node.ledger.verifier import VerifiedTx

#: threads waiting in the group commit at once; more requests queue for a thread
SUBMIT_THREADS: Final = 64
JSON_TYPES: Final = frozenset({b"application/json", b"application/json; charset=utf-8"})


class SubmitFastPath:
    """Answer plain single submissions to ``path`` (see the module doc); pass the rest on."""

    def __init__(self, app: ASGIApp, ledger: LedgerService, path: str, checks: BodyChecks) -> None:
        self.app = app
        self.ledger = ledger
        self.path = path
        self._threads = ThreadPoolExecutor(SUBMIT_THREADS, thread_name_prefix="submit")
        self.checks = checks
        self.inflight = 0  # single submissions taken by this path and not yet answered

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._is_plain(scope):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:  # the client left, or a limit outside has answered
            return
        self.inflight += 1
        try:
            await self._answer(body, scope, receive, send)
        finally:
            self.inflight -= 1

    async def _answer(self, body: bytes, scope: Scope, receive: Receive, send: Send) -> None:
        """Check and submit ``body``, then answer (or hand it to the route, see the module
        doc)."""
        checked = await self.checks.check(body, self.inflight)
        if checked is None:  # not JSON or not the schema: the route words its own 422
            await self.app(scope, replay_body(body, receive), send)
            return
        item, outcome = checked
        try:
            accepted = await self._submit(item, outcome)
        except CollegiumError as exc:  # as the app's handler answers it
            code, kind = status_of(exc)
            await problem(code, kind.replace("-", " "), str(exc), kind)(scope, receive, send)
            return
        await _send_accepted(send, accepted, self.path)

    async def _submit(self, item: Submission, checked: VerifiedTx | ValidationError) -> AcceptedTx:
        """Return ``item`` (its signature check ``checked``) accepted once durable, or raise
        its ``ValidationError``.

        Admitted here on the event loop when the participant cache has every answer, then
        handed to the group commit without a thread of its own; otherwise (an answer to
        read from the registry) :meth:`LedgerService.submit_one` runs in this path's pool.
        """
        loop = asyncio.get_running_loop()
        verified = self.ledger.admit_cached(item, checked)
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


async def _send_accepted(send: Send, accepted: AcceptedTx, path: str) -> None:
    """Send 202 with the accepted transaction, as the route's ``JSONResponse`` would."""
    content = accepted_json(accepted)
    await send(
        {
            "type": "http.response.start",
            "status": 202,
            "headers": [
                (b"content-length", str(len(content)).encode()),
                (b"content-type", b"application/json"),
                (b"location", f"{path}/{accepted.tx_id}".encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})
