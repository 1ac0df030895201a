"""The node's edge: wallet login, subsystem databases, router, rate limits, CORS, metrics.

``install_access(app, node)`` builds these parts from the node's settings and adds the
middleware, outermost first: metrics → CORS → rate limit → router → (body limits, app).
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from node.api.metrics import Metrics, MetricsMiddleware
from node.api.ratelimit import RateLimitMiddleware, TokenBuckets
from node.auth.databases import SubsystemDatabases
from node.auth.service import AuthService, SiweRules
from node.router.directory import PeerDirectory
from node.router.proxy import EPOCH_HEADER, SERVED_BY_HEADER, RouterMiddleware
from node.router.route import AssignmentSource

DEFAULT_RATE: Final = 200.0
DEFAULT_BURST: Final = 400


def compute_siwe_rules(settings: Any, chain_id: int) -> SiweRules:
    """Return the SIWE rules of a node: its public host[:port] (plus extra domains)."""
    public = urlsplit(settings.endpoint)
    extra = tuple(getattr(settings, "auth_domains", ()) or ())
    domains = tuple(dict.fromkeys((public.netloc, *extra)))
    return SiweRules(
        domains=domains,
        scheme=public.scheme or "https",
        chain_id=chain_id,
        nonce_ttl=float(getattr(settings, "auth_nonce_ttl", 300.0)),
        session_ttl=float(getattr(settings, "auth_session_ttl", 24 * 3600.0)),
    )


def get_assignment_source(node: Any) -> AssignmentSource | None:
    """Return the node's assignment source (its EpochService), or ``None`` (single node)."""
    for name in ("assignment_source", "epochs"):
        source = getattr(node, name, None)
        if source is not None and callable(getattr(source, "current", None)):
            return source  # type: ignore[no-any-return]
    return None


def install_access(app: FastAPI, node: Any) -> None:
    """Create login, subsystem databases and metrics on ``app.state``; add the middleware."""
    settings = node.settings
    auth = AuthService(node.sessions, compute_siwe_rules(settings, node.chain.chain_id),
                       w3=node.chain.w3)  # fmt: skip
    metrics = Metrics()
    app.state.auth = auth
    app.state.metrics = metrics
    app.state.subsystem_databases = SubsystemDatabases(settings.data_dir)
    directory = PeerDirectory(node.registry, policy=getattr(node, "peer_policy", None))

    def is_peer_host(host: str) -> bool:
        return host in {urlsplit(endpoint).hostname for endpoint in directory().values()}

    app.add_middleware(
        RouterMiddleware,
        my_address=node.address,
        source=get_assignment_source(node),
        peers=directory,
        identify=auth.address_for,
        account=node.account,
        observer=metrics,
    )
    rate = float(getattr(settings, "rate_limit", DEFAULT_RATE))
    if rate > 0:
        burst = int(getattr(settings, "rate_burst", DEFAULT_BURST))
        app.add_middleware(
            RateLimitMiddleware,
            buckets=TokenBuckets(rate, burst),
            on_limited=metrics.rate_limited.inc,
            is_peer_host=is_peer_host,
        )
    origins = list(getattr(settings, "cors_origins", ()) or ())
    if origins:
        # credentials only for origins the operator named: a wildcard never gets them
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_credentials="*" not in origins,
            allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
            allow_headers=["authorization", "content-type"],
            expose_headers=[SERVED_BY_HEADER, EPOCH_HEADER],
        )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
