"""The router over real HTTP: three uvicorn nodes with the real RouterMiddleware."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from node.assignment import Assignment, Slot
from node.router import AssignmentSource, StaticAssignmentSource
from tests.router.cluster import SUBSYSTEM, cluster

PING = f"/api/v1/subsystems/{SUBSYSTEM}/data/ping"


def get(member_url: str, **kw: object) -> httpx.Response:
    return httpx.get(member_url + PING, timeout=10, **kw)  # type: ignore[arg-type]


def test_host_serves_locally_and_outsider_proxies_to_first_host() -> None:
    with cluster() as c:
        hosts = c.hosts("be_subsystem", SUBSYSTEM)
        outsider = c.outsider("be_subsystem", SUBSYSTEM)
        for host in hosts:
            r = get(host.url)
            assert r.status_code == 200
            assert r.json()["node"] == host.address
            assert r.json()["slot"] == ["be_subsystem", SUBSYSTEM]
            assert r.headers["x-collegium-served-by"].lower() == host.address
            assert r.headers["x-collegium-epoch"] == str(c.assignment.epoch)
        r = get(outsider.url, params={"q": "1"})
        assert r.status_code == 200
        assert r.json()["node"] == hosts[0].address
        assert r.json()["hops"] == "1"
        assert r.json()["query"] == "q=1"
        assert r.headers["x-collegium-served-by"].lower() == hosts[0].address
        assert outsider.counts.proxied == 1 and outsider.counts.failovers == 0
        # a body is relayed unchanged
        posted = httpx.post(outsider.url + PING, content=b"payload-123", timeout=10)
        assert posted.json()["body"] == "payload-123"


def test_a_relay_signs_as_itself_and_never_passes_on_an_identity() -> None:
    """A relaying node adds its own Collegium-Peer signature; it passes on no session (cookie,
    bearer) and the retired X-Collegium-User headers are dropped, from clients and peers."""
    with cluster() as c:
        outsider = c.outsider("be_subsystem", SUBSYSTEM)
        host = c.hosts("be_subsystem", SUBSYSTEM)[0]
        claimed = {
            "Authorization": "Bearer t-alice",
            "x-collegium-user": "0x00000000000000000000000000000000000A11CE",
            "x-collegium-user-ts": str(int(time.time())),
            "x-collegium-user-proof": "0x" + "11" * 65,
        }
        relayed = get(outsider.url, headers=claimed).json()
        assert relayed["node"] == host.address
        assert relayed["peer"] == outsider.address
        assert relayed["authorization"] is None and relayed["user_header"] is None
        # a client posing as a relay: a hop count and a peer header it cannot sign
        fake = f"{outsider.address};{int(time.time())};0x" + "11" * 65
        direct = get(host.url, headers={"x-collegium-hops": "1", "collegium-peer": fake}).json()
        assert direct["peer"] is None
        assert get(host.url, headers=claimed).json()["user_header"] is None


def test_failover_to_the_next_host_when_the_first_is_killed() -> None:
    with cluster() as c:
        first, second = c.hosts("be_subsystem", SUBSYSTEM)
        outsider = c.outsider("be_subsystem", SUBSYSTEM)
        first.kill()
        r = get(outsider.url)
        assert r.status_code == 200
        assert r.json()["node"] == second.address
        assert outsider.counts.failovers == 1
        # the dead host is now cached as down: the next request goes straight to the second
        r = get(outsider.url)
        assert r.json()["node"] == second.address
        assert outsider.counts.failovers == 1
        second.kill()
        r = get(outsider.url)
        assert r.status_code == 503
        assert r.headers["content-type"].startswith("application/problem+json")


def test_5xx_of_a_host_fails_over_for_idempotent_requests() -> None:
    with cluster() as c:
        outsider = c.outsider("be_system", None)
        r = httpx.get(outsider.url + "/api/v1/system/boom", timeout=10)
        # both hosts answer 500: the first fails over, the last host's answer is relayed
        assert r.status_code == 500
        assert outsider.counts.failovers == 1


def test_hop_limit_stops_a_loop_between_disagreeing_nodes() -> None:
    """Node 0 believes node 1 hosts the slot, node 1 believes node 0 does (epoch skew)."""

    def views(accounts: list[Any]) -> dict[int, AssignmentSource]:
        def only(host: Any) -> StaticAssignmentSource:
            slot = Slot("be_subsystem", SUBSYSTEM, (host.address.lower(),))
            return StaticAssignmentSource(Assignment(7, bytes(32), (slot,), bytes(32)))

        return {0: only(accounts[1]), 1: only(accounts[0])}

    with cluster(views) as c:
        r = get(c.members[0].url)
        assert r.status_code == 508, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        # 0 -> 1 (hop 1) -> 0 (hop 2): refused there instead of a third hop
        assert c.members[0].counts.proxied == 1
        assert c.members[1].counts.proxied == 1


@dataclass
class SkewedSource:
    """A node in epoch ``epoch`` that has also computed the other ``assignments``."""

    epoch: int
    assignments: dict[int, Assignment]

    def current(self) -> tuple[int, Assignment]:
        return self.epoch, self.assignments[self.epoch]

    def cached(self, epoch: int) -> Assignment | None:
        return self.assignments.get(epoch)


def test_a_host_of_the_senders_epoch_serves_a_forwarded_request() -> None:
    """Around a boundary: node 0 (epoch 8) forwards to node 1, the host of epoch 8; node 1
    (still in epoch 7) forwards to node 2, the host of epoch 7; node 2 (already in epoch 8,
    where it is no host) serves it, since the sender's epoch 7 names it: no 508."""

    def views(accounts: list[Any]) -> dict[int, AssignmentSource]:
        def only(epoch: int, host: Any) -> Assignment:
            slot = Slot("be_subsystem", SUBSYSTEM, (host.address.lower(),))
            return Assignment(epoch, bytes(32), (slot,), bytes(32))

        e7, e8 = only(7, accounts[2]), only(8, accounts[1])
        return {
            0: SkewedSource(8, {8: e8}),
            1: SkewedSource(7, {7: e7}),
            2: SkewedSource(8, {7: e7, 8: e8}),
        }

    with cluster(views) as c:
        r = get(c.members[0].url)
        assert r.status_code == 200, r.text
        assert r.headers["x-collegium-served-by"].lower() == c.members[2].address.lower()
        assert r.json()["hops"] == "2"
        assert [m.counts.proxied for m in c.members] == [1, 1, 0]
        # an epoch two away from ours is not looked at: refused as before
        r = get(c.members[2].url, headers={"x-collegium-hops": "2", "x-collegium-epoch": "6"})
        assert r.status_code == 508


def test_a_client_cannot_start_beyond_the_hop_limit() -> None:
    with cluster() as c:
        r = get(c.members[0].url, headers={"x-collegium-hops": "3"})
        assert r.status_code == 508
        r = get(c.members[0].url, headers={"x-collegium-hops": "junk"})
        assert r.status_code == 508


def test_a_host_catching_up_relays_to_a_caught_up_host_and_never_answers_empty() -> None:
    catching_up: set[str] = set()
    with cluster(catching_up=catching_up) as c:
        first, second = c.hosts("be_subsystem", SUBSYSTEM)[:2]
        outsider = c.outsider("be_subsystem", SUBSYSTEM)
        catching_up.add(first.address)
        # the host that is behind relays to the other host of the slot
        r = get(first.url)
        assert r.status_code == 200 and r.json()["node"] == second.address
        assert r.json()["hops"] == "1"
        # an outsider's relay reaches it, gets 503 (no second hop), fails over to the other
        r = get(outsider.url)
        assert r.status_code == 200 and r.json()["node"] == second.address
        # a request signed for the host that is behind: 421, the client re-routes
        r = get(first.url, headers={"collegium-destination": first.address})
        assert r.status_code == 421 and "catching up" in r.json()["detail"]
        # every host behind: 503 with Retry-After, a problem — never an empty answer
        catching_up.add(second.address)
        for member in (first, outsider):
            r = get(member.url)
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"] == "5"
            assert r.headers["content-type"].startswith("application/problem+json")
        # caught up again: served locally
        catching_up.clear()
        r = get(first.url)
        assert r.status_code == 200 and r.json()["node"] == first.address
