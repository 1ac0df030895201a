"""Collegium router: serve a role's request here, or proxy it to the role's host this epoch."""

from node.router.health import PeerHealth
from node.router.paths import compute_request_slot
from node.router.proxy import RouterMiddleware, RouterObserver
from node.router.route import (
    AssignmentSource,
    Peer,
    Route,
    StaticAssignmentSource,
    UnknownSlot,
    compute_route,
)

__all__ = [
    "AssignmentSource",
    "Peer",
    "PeerHealth",
    "Route",
    "RouterMiddleware",
    "RouterObserver",
    "StaticAssignmentSource",
    "UnknownSlot",
    "compute_request_slot",
    "compute_route",
]
