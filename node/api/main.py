"""The FastAPI application: only includes routers, handlers and middleware."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Final

from fastapi import APIRouter, FastAPI
from fastapi_offline import FastAPIOffline
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from node import __version__
from node.api import metrics
from node.api.bodychecks import BodyChecks
from node.api.edge import install_access
from node.api.fastsubmit import SubmitFastPath
from node.api.limits import BodyLimitMiddleware, JsonDepthMiddleware, restore_recursion_limit
from node.api.problems import install_problem_handlers
from node.api.routes import (
    actions,
    anchors,
    auth,
    epochs,
    explorer,
    frontends,
    gateway,
    health,
    keys,
    participants,
    private_data,
    route,
    rpc,
    submissions,
    subsystems,
    transactions,
    users,
)
from node.frontend import routes as frontend
from node.frontend.archive import MAX_ARCHIVE_BYTES
from node.ledger.service import MAX_SUBMIT_BATCH
from node.runtime import NodeContext

API_PREFIX = "/api/v1"
TRANSACTIONS_PATH = API_PREFIX + "/transactions"


def create_app(
    node: NodeContext, *, close_on_shutdown: bool = False, freeze_gc: bool = False
) -> FastAPI:
    """Return the node's HTTP application bound to ``node``'s parts.

    With ``close_on_shutdown`` the node's parts are closed when the server shuts down
    (``collegium up``: uvicorn re-raises SIGTERM after its shutdown, so this is the
    last moment to stop the anchorer and release the chain cleanly).

    With ``freeze_gc`` (a node process), the cyclic garbage collector is set up for a
    server once it has started (:func:`tune_gc`): every object alive then frozen out of its
    reach, so a full collection walks only what requests created since instead of pausing
    a request for ≈ 100 ms now and then, and its thresholds raised.
    """

    # /docs and /redoc: Swagger UI and ReDoc assets served by the node (fastapi-offline), and a
    # Content-Security-Policy that keeps the pages on this origin (ReDoc's bundle still links a
    # logo on a CDN: the browser never asks for it)
    app = FastAPIOffline(
        lifespan=_make_lifespan(node, close_on_shutdown=close_on_shutdown, freeze_gc=freeze_gc),
        title="Collegium node",
        version=__version__,
        description="Open business ledger: EIP-712 transactions, IPFS content, on-chain anchors.",
        static_url=DOCS_ASSETS,
        # FastAPI's native OpenTelemetry is off: the node exports Prometheus metrics
        # (/metrics), and with no OTel provider configured its per-request check still read
        # os.environ through opentelemetry's get_*_provider: 11% of a single POST's CPU
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    _restrict_docs_to_self(app)
    app.state.node = node
    app.state.store = node.store
    app.state.wait_body = node.ledger.wait_body_stored  # the gateway, after a quick 202
    install_problem_handlers(app)
    restore_recursion_limit()  # a dependency leaves it at 100,000: see node/api/limits.py
    # inside every edge middleware: the limits, rate limit, router and metrics still apply
    verifier = node.ledger.verifier
    app.state.body_checks = BodyChecks(node.ledger.domain, verifier.workers if verifier else 0)
    app.add_middleware(
        SubmitFastPath, ledger=node.ledger, path=TRANSACTIONS_PATH, checks=app.state.body_checks
    )
    _add_body_limits(app, node)
    _include_routers(app, node)
    return app


#: the cyclic collector's thresholds in a node process: CPython's young ones (700, 10), but a
#: full collection after 100 middle-aged ones instead of 10. Once the start-up objects are
#: frozen the long-lived heap is small, so nothing else holds full collections back: under
#: the batch bench 13-17 of them ran per 50,000 transactions (0.4-2 s), each walking every
#: object of the requests and the anchor in flight; with 100, 2 (0.3 s). (A young threshold
#: of 10,000 was tried too: slower, each young collection then walked far more.)
GC_THRESHOLDS: Final = (700, 10, 100)


def tune_gc() -> None:
    """Set up the collector of a node process once it has started: every object alive now
    (modules, the chain and ledger parts: ≈ 230,000 objects) moved out of its reach with
    ``gc.freeze()``, so a full collection walks only what requests created since, and full
    collections made rarer (``GC_THRESHOLDS``)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _make_lifespan(
    node: NodeContext, *, close_on_shutdown: bool, freeze_gc: bool
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Return the app's lifespan: :func:`tune_gc` once started (``freeze_gc``), the node's
    parts closed at shutdown (``close_on_shutdown``)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if freeze_gc:
            tune_gc()
        yield
        app.state.body_checks.close()  # its worker processes are the loop's
        if close_on_shutdown:
            node.close()

    return lifespan


def _add_body_limits(app: FastAPI, node: NodeContext) -> None:
    """Add the body size limit (per path: transactions, batches, front-end archives, the
    rest) and, inside it, the JSON depth check."""
    tx_limit = node.settings.max_tx_bytes
    body_limit = node.settings.max_body_bytes

    def limit_for(path: str) -> int:
        if frontends.is_upload_path(path, API_PREFIX):  # a front-end build archive
            return MAX_ARCHIVE_BYTES
        if path.rstrip("/") == TRANSACTIONS_PATH + "/batch":  # each item is checked alone too
            return MAX_SUBMIT_BATCH * tx_limit
        return tx_limit if path.rstrip("/") == TRANSACTIONS_PATH else body_limit

    # innermost first: the depth check reads a body the size limit has already bounded
    app.add_middleware(
        JsonDepthMiddleware,
        max_depth=node.settings.json_max_depth,
        binary_path=lambda path: frontends.is_upload_path(path, API_PREFIX),
    )
    app.add_middleware(BodyLimitMiddleware, limit_for=limit_for)


def _include_routers(app: FastAPI, node: NodeContext) -> None:
    """Include every router: the API under ``/api/v1``, then health, RPC, gateway, explorer
    and the front-end."""
    api = APIRouter(prefix=API_PREFIX)
    api.include_router(submissions.router)  # POST /transactions…, before the reads
    api.include_router(transactions.router)
    api.include_router(anchors.router)
    api.include_router(epochs.router)
    api.include_router(actions.router)
    _include_access(app, api, node)
    app.include_router(api)
    app.include_router(health.router)
    app.include_router(rpc.router)
    _include_gateway(app)
    app.include_router(explorer.router)
    _include_frontend(app)


def _include_access(app: FastAPI, api: APIRouter, node: NodeContext) -> None:

    api.include_router(auth.router)
    api.include_router(route.router)
    api.include_router(subsystems.router)
    api.include_router(private_data.router)
    api.include_router(keys.router)
    api.include_router(users.router)
    api.include_router(participants.router)
    api.include_router(frontends.router)
    app.include_router(metrics.router)
    install_access(app, node)


DOCS_ASSETS = "/static-offline-docs"
DOCS_PAGES = frozenset({"/docs", "/redoc"})
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'"
)


def _restrict_docs_to_self(app: FastAPI) -> None:
    """Send ``DOCS_CSP`` with the API documentation pages."""
    app.add_middleware(DocsPolicyMiddleware)


class DocsPolicyMiddleware:
    """Add ``DOCS_CSP`` to the answers for ``DOCS_PAGES``. Plain ASGI, not
    ``@app.middleware("http")``: Starlette's BaseHTTPMiddleware re-streams every response and
    ends it cleanly even when the app failed mid-body (a cut CSV export would look whole)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") not in DOCS_PAGES:
            await self.app(scope, receive, send)
            return

        async def send_with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = DOCS_CSP
            await send(message)

        await self.app(scope, receive, send_with_policy)


def _include_gateway(app: FastAPI) -> None:

    app.include_router(gateway.router)


def _include_frontend(app: FastAPI) -> None:

    app.include_router(frontend.router)
