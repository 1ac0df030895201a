"""The node's edge: wallet login, subsystem databases, router, rate limits, CORS, metrics.

``install_access(app, node)`` builds these parts from the node's settings and adds the
middleware, outermost first: metrics → CORS → rate limit → router → (body limits, app).
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import SplitResult, urlsplit

import httpx
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from node.api.metrics import Metrics, MetricsMiddleware
from node.api.ratelimit import RateLimitMiddleware, TokenBuckets
from node.auth.databases import SubsystemDatabases
from node.auth.delegation import compute_system_uri
from node.auth.peer import PeerVerifier
from node.auth.requests import RequestVerifier
from node.auth.service import AuthService, SiweRules
from node.auth.signatures import (
    DELEGATION_HEADER,
    DESTINATION_HEADER,
    DIGEST_HEADER,
    SIGNATURE_HEADER,
    SIGNATURE_INPUT_HEADER,
)
from node.replication.replica import get_subsystem_log
from node.router.directory import PeerDirectory
from node.router.health import PeerHealth
from node.router.locate import Locator
from node.router.proxy import (
    CONNECT_TIMEOUT,
    EPOCH_HEADER,
    READ_TIMEOUT,
    SERVED_BY_HEADER,
    RouterMiddleware,
)
from node.router.route import AssignmentSource

DEFAULT_RATE: Final = 200.0
DEFAULT_BURST: Final = 400


LOOPBACK_HOSTS: Final = ("127.0.0.1", "localhost", "[::1]")


def compute_loopback_aliases(public: SplitResult) -> tuple[str, ...]:
    """Return the other loopback names of a node whose endpoint is a loopback address
    (``http://127.0.0.1:8000`` is also reached as ``localhost:8000`` and ``[::1]:8000``, all
    this machine); none for any other endpoint, whose domain alone stays accepted."""
    host = public.hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1"):
        return ()
    port = f":{public.port}" if public.port else ""
    return tuple(f"{name}{port}" for name in LOOPBACK_HOSTS if f"{name}{port}" != public.netloc)


def compute_siwe_rules(settings: Any, chain_id: int, registry: str = "") -> SiweRules:
    """Return the SIWE rules of a node: its public host[:port] (plus extra domains), chain,
    system (registry) and clock limits."""
    public = urlsplit(settings.endpoint)
    extra = tuple(getattr(settings, "auth_domains", ()) or ())
    domains = tuple(dict.fromkeys((public.netloc, *compute_loopback_aliases(public), *extra)))
    return SiweRules(
        domains=domains,
        scheme=public.scheme or "https",
        chain_id=chain_id,
        nonce_ttl=float(getattr(settings, "auth_nonce_ttl", 300.0)),
        session_ttl=float(getattr(settings, "auth_session_ttl", 24 * 3600.0)),
        system_uri=compute_system_uri(chain_id, registry) if registry else "",
        clock_skew=float(getattr(settings, "auth_clock_skew", 60.0)),
        delegation_max_ttl=float(getattr(settings, "auth_delegation_max_ttl", 24 * 3600.0)),
    )


def get_assignment_source(node: Any) -> AssignmentSource | None:
    """Return the node's assignment source (its EpochService), or ``None`` (single node)."""
    for name in ("assignment_source", "epochs"):
        source = getattr(node, name, None)
        if source is not None and callable(getattr(source, "current", None)):
            return source  # type: ignore[no-any-return]
    return None


def install_access(app: FastAPI, node: Any) -> None:
    """Create login, request verification, subsystem databases, routing and metrics on
    ``app.state``; add the middleware."""
    settings = node.settings
    directory = PeerDirectory(node.registry, policy=getattr(node, "peer_policy", None))
    metrics = Metrics()
    _install_auth(app, node, directory)
    app.state.metrics = metrics
    app.state.subsystem_databases = SubsystemDatabases(settings.data_dir)
    peer_verifier = PeerVerifier(directory)
    _add_router(app, node, directory, peer_verifier, metrics)
    _add_rate_limit(app, settings, peer_verifier, metrics)
    _add_cors(app, settings)
    app.add_middleware(MetricsMiddleware, metrics=metrics)


def _install_auth(app: FastAPI, node: Any, directory: PeerDirectory) -> None:
    """Create wallet login (``app.state.auth``) and signed-request verification
    (``app.state.request_verifier``); the peers' domains are accepted for login too."""
    settings = node.settings

    def peer_domains() -> list[str]:
        return [urlsplit(endpoint).netloc for endpoint in directory().values()]

    rules = compute_siwe_rules(settings, node.chain.chain_id, str(node.registry.address))
    auth = AuthService(node.sessions, rules, w3=node.chain.w3, peer_domains=peer_domains)
    app.state.auth = auth
    app.state.request_verifier = RequestVerifier(
        auth,
        node.address,
        max_age=float(getattr(settings, "auth_signature_max_age", 300.0)),
        clock_skew=rules.clock_skew,
    )


def _add_router(
    app: FastAPI,
    node: Any,
    directory: PeerDirectory,
    peer_verifier: PeerVerifier,
    metrics: Metrics,
) -> None:
    """Create the locator (``app.state.locator``) and add the router middleware, both
    sharing one peer client and its health."""
    client = httpx.AsyncClient(timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT))
    health = PeerHealth(client)
    source = get_assignment_source(node)
    readiness = get_subsystem_log(node).is_ready
    app.state.locator = Locator(
        node.address, node.settings.endpoint, source, directory, health, readiness=readiness
    )
    app.add_middleware(
        RouterMiddleware,
        my_address=node.address,
        source=source,
        peers=directory,
        client=client,
        health=health,
        account=node.account,
        peer_verifier=peer_verifier,
        observer=metrics,
        readiness=readiness,
    )


def _add_rate_limit(
    app: FastAPI, settings: Any, peer_verifier: PeerVerifier, metrics: Metrics
) -> None:
    """Add the rate limiter (none with ``rate_limit`` 0); verified peers get their own
    buckets with ``peer_rate_limit``."""
    rate = float(getattr(settings, "rate_limit", DEFAULT_RATE))
    if rate <= 0:
        return
    burst = int(getattr(settings, "rate_burst", DEFAULT_BURST))
    peer_rate = float(getattr(settings, "peer_rate_limit", 0.0))
    app.add_middleware(
        RateLimitMiddleware,
        buckets=TokenBuckets(rate, burst),
        on_limited=metrics.rate_limited.inc,
        peer_verifier=peer_verifier,
        peer_buckets=TokenBuckets(peer_rate, int(peer_rate * 2)) if peer_rate > 0 else None,
    )


def _add_cors(app: FastAPI, settings: Any) -> None:
    """Add CORS for the ``cors_origins`` the operator named (none: no CORS)."""
    origins = list(getattr(settings, "cors_origins", ()) or ())
    if not origins:
        return
    # credentials only for origins the operator named: a wildcard never gets them
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_credentials="*" not in origins,
        allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
        allow_headers=[
            "authorization",
            "content-type",
            SIGNATURE_HEADER,
            SIGNATURE_INPUT_HEADER,
            DIGEST_HEADER,
            DESTINATION_HEADER,
            DELEGATION_HEADER,
        ],
        expose_headers=[SERVED_BY_HEADER, EPOCH_HEADER],
    )
