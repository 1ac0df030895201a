"""Three small real HTTP nodes (uvicorn on 127.0.0.1) behind the real RouterMiddleware."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from eth_account import Account
from fastapi import FastAPI, Request

from node.assignment import Assignment, Node, compute_assignment
from node.auth.peer import PeerVerifier
from node.router import RouterMiddleware, StaticAssignmentSource
from node.router.route import AssignmentSource
from tests.support.node import free_port, wait_healthy

SEED = "0x" + "ab" * 32
SUBSYSTEM = "alpha"
REPLICAS = {"fe_system": 1, "be_system": 2, "fe_subsystem": 1, "be_subsystem": 2}


class Counts:
    """A ``RouterObserver`` that counts."""

    def __init__(self) -> None:
        self.proxied = 0
        self.failovers = 0
        self.epoch: int | None = None

    def on_proxied(self, role: str) -> None:
        self.proxied += 1

    def on_failover(self, role: str) -> None:
        self.failovers += 1

    def on_epoch(self, epoch: int) -> None:
        self.epoch = epoch


def make_app(
    account: Any, source: AssignmentSource, peers: dict[str, str], counts: Counts,
    readiness: Callable[[str], bool] | None = None,
) -> Any:  # fmt: skip
    app = FastAPI()

    @app.get("/health")  # what the test harness waits for
    @app.get("/livez")  # what PeerHealth probes
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.api_route("/api/v1/subsystems/{name}/data/ping", methods=["GET", "POST"])
    async def ping(name: str, request: Request) -> dict[str, Any]:
        return {
            "node": account.address.lower(),
            "hops": request.headers.get("x-collegium-hops", "0"),
            "peer": getattr(request.state, "collegium_peer", None),
            "authorization": request.headers.get("authorization"),
            "user_header": request.headers.get("x-collegium-user"),
            "slot": getattr(request.state, "collegium_slot", None),
            "body": (await request.body()).decode(),
            "query": str(request.url.query),
        }

    @app.get("/api/v1/system/boom")
    def boom() -> dict[str, str]:
        raise RuntimeError("boom")

    app.add_middleware(
        RouterMiddleware, my_address=account.address, source=source, peers=lambda: peers,
        account=account, peer_verifier=PeerVerifier(lambda: peers), observer=counts,
        readiness=readiness,
    )  # fmt: skip
    return app


@dataclass
class Member:
    account: Any
    url: str
    counts: Counts
    server: uvicorn.Server
    thread: threading.Thread
    alive: bool = True

    @property
    def address(self) -> str:
        return str(self.account.address).lower()

    def kill(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.alive = False


@dataclass
class Cluster:
    members: list[Member]
    assignment: Assignment
    peers: dict[str, str] = field(default_factory=dict)

    def by_address(self, address: str) -> Member:
        return next(m for m in self.members if m.address == address.lower())

    def hosts(self, role: str, subsystem: str | None) -> list[Member]:
        for slot in self.assignment.slots:
            if slot.role == role and slot.subsystem == subsystem:
                return [self.by_address(h) for h in slot.hosts]
        raise KeyError(role)

    def outsider(self, role: str, subsystem: str | None) -> Member:
        hosts = {m.address for m in self.hosts(role, subsystem)}
        return next(m for m in self.members if m.address not in hosts)


def compute_cluster_assignment(accounts: list[Any], epoch: int = 7) -> Assignment:
    nodes = [
        Node(id=a.address.lower(), capacity=4, home=SUBSYSTEM, members_of=frozenset({SUBSYSTEM}),
             roles=frozenset(REPLICAS))
        for a in accounts
    ]  # fmt: skip
    return compute_assignment(SEED, epoch, nodes, [SUBSYSTEM], REPLICAS)


@contextlib.contextmanager
def cluster(
    views: Callable[[list[Any]], dict[int, AssignmentSource]] | None = None,
    size: int = 3,
    catching_up: set[str] | None = None,
) -> Iterator[Cluster]:
    """Yield ``size`` running nodes; ``views(accounts)`` may give some their own assignment;
    with ``catching_up``, a node whose address is in that (mutable) set is not caught up for
    any subsystem (the router's readiness)."""
    accounts = [Account.create() for _ in range(size)]
    assignment = compute_cluster_assignment(accounts)
    sources = views(accounts) if views is not None else {}
    ports = [free_port() for _ in accounts]
    peers = {
        a.address.lower(): f"http://127.0.0.1:{p}" for a, p in zip(accounts, ports, strict=True)
    }
    members: list[Member] = []
    try:
        for i, (account, port) in enumerate(zip(accounts, ports, strict=True)):
            counts = Counts()
            source = sources.get(i, StaticAssignmentSource(assignment))
            readiness = None
            if catching_up is not None:
                me = account.address.lower()

                def readiness(_: str, me: str = me) -> bool:
                    return me not in catching_up

            app = make_app(account, source, peers, counts, readiness)
            server = uvicorn.Server(
                uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
            )
            thread = threading.Thread(target=server.run, daemon=True)
            thread.start()
            members.append(Member(account, peers[account.address.lower()], counts, server, thread))
        for member in members:
            wait_healthy(member.url, timeout=30)
        yield Cluster(members, assignment, peers)
    finally:
        for member in members:
            if member.alive:
                member.kill()
