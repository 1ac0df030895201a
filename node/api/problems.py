"""Errors as RFC 9457 ``application/problem+json`` responses."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from node.api.schemas import Problem
from node.auth.errors import AuthError, Forbidden, Misdirected, ReplayedRequest
from node.errors import ChainError, CollegiumError, StoreError, ValidationError
from node.ledger.service import (
    FutureTimestamp,
    NotAParticipant,
    ReplayedTransaction,
    SignerMismatch,
    UnknownSubsystem,
)
from node.router.route import NoLiveHost, UnknownSlot
from node.storage.errors import StoreFull
from node.storage.gateway import PROBLEM_MEDIA_TYPE, PROBLEM_TYPE_BASE

#: HTTP status for each error class (first match in MRO order wins).
STATUS_BY_ERROR: tuple[tuple[type[CollegiumError], int, str], ...] = (
    (SignerMismatch, 401, "signature-mismatch"),
    (NotAParticipant, 403, "not-a-participant"),
    (ReplayedTransaction, 409, "replayed"),
    (UnknownSubsystem, 422, "unknown-subsystem"),
    (FutureTimestamp, 422, "future-timestamp"),
    (Misdirected, 421, "misdirected-request"),
    (ReplayedRequest, 409, "replayed-request"),
    (AuthError, 401, "unauthorized"),
    (Forbidden, 403, "forbidden"),
    (UnknownSlot, 404, "no-such-slot"),
    (NoLiveHost, 503, "no-live-host"),
    (ValidationError, 400, "invalid-transaction"),
    (StoreFull, 507, "store-full"),
    (StoreError, 502, "store-error"),
    (ChainError, 502, "chain-error"),
    (CollegiumError, 500, "internal"),
)


def status_of(exc: Exception) -> tuple[int, str]:
    """Return the HTTP status and problem kind of ``exc``: its first match in
    ``STATUS_BY_ERROR``."""
    for cls, status, kind in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return status, kind
    return 500, "internal"  # pragma: no cover - CollegiumError closes the table


def problem(status: int, title: str, detail: str, kind: str = "") -> JSONResponse:
    """Return a problem+json response."""
    return JSONResponse(
        {
            "type": PROBLEM_TYPE_BASE + kind if kind else "about:blank",
            "title": title,
            "status": status,
            "detail": detail,
        },
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Register handlers turning errors into problem+json (and document them so)."""
    document_problems(app)

    @app.exception_handler(CollegiumError)
    async def _collegium(_: Request, exc: CollegiumError) -> JSONResponse:
        status, kind = status_of(exc)
        return problem(status, kind.replace("-", " "), str(exc), kind)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
            parts.append(f"{where or 'body'}: {err.get('msg')}")
        return problem(422, "malformed request", "; ".join(parts), "malformed")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, "error", str(exc.detail))


def document_problems(app: FastAPI) -> None:
    """Make the OpenAPI say what every error response is: a ``Problem`` as
    ``application/problem+json`` (FastAPI would document its 422 as an ``HTTPValidationError``
    and ``model=Problem`` as ``application/json``: a client, or a fuzzer checking that
    answers conform, would be misled)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()

        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault("Problem", Problem.model_json_schema())
        content = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for code, response in operation.get("responses", {}).items():
                    if str(code).isdigit() and int(code) >= 400:
                        response["content"] = content
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
