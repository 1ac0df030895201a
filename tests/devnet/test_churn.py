"""``kill -9`` one of five nodes: every routed role is still answered through failover, in
this epoch and the next; the node restarts and catches up with no manual step.

Routed roles are ``be_system`` (``/api/v1/system/…``) and ``be_subsystem`` of each served
subsystem (``/api/v1/subsystems/{S}/data/records``), asked at every live node with a SIWE
session of the operator (a participant of every home subsystem). "Answered" means 200
within ``ROUTED_TIMEOUT`` (the client's timeout, so a slow answer fails the test).

Re-hosting. The registry has no liveness signal: a killed node stays registered and
active, so the next epoch's snapshot (and assignment) still lists it. Its slots are served
by the next-ranked live host through the router's failover (connection refused on a
loopback port is immediate; the failed host is then tried last for ``DOWN_TTL``). The test
records whether the dead node is still assigned; only the answers are asserted.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from node.devnet import Devnet, DevnetNode
from tests.devnet.support import (
    ROUTED_TIMEOUT,
    health,
    login,
    submit_batch,
    wait_anchored,
    wait_until,
)

AGREE_TIMEOUT = 60.0
CATCH_UP_TIMEOUT = 90.0
TRAFFIC_WHILE_DOWN = 20
ROUTED_ROLES = ("be_system", "be_subsystem")


def agreed_epoch(nodes: list[DevnetNode], after: int = -1) -> dict[str, Any]:
    """Return an epoch ``E > after`` that every node in ``nodes`` has reached, once they all
    serve the same root for it (``/api/v1/epochs/{E}``) with two hosts for every
    ``be_subsystem`` slot; fail the test if that takes longer than ``AGREE_TIMEOUT``."""
    floor = [after]

    def agreed() -> dict[str, Any] | None:
        current = [
            httpx.get(n.url + "/api/v1/epochs/current", timeout=10).json().get("epoch")
            for n in nodes
        ]
        if None in current or min(current) <= floor[0]:
            return None
        epoch = min(current)
        views = [httpx.get(f"{n.url}/api/v1/epochs/{epoch}", timeout=10).json() for n in nodes]
        roots = {v.get("root") for v in views}
        assert len(roots) == 1, f"epoch {epoch}: the nodes disagree: {roots}"
        hosts = [len(s["hosts"]) for s in views[0]["slots"] if s["role"] == "be_subsystem"]
        if None in roots or not hosts or min(hosts) < 2:
            floor[0] = epoch  # not the topology wanted yet: look at a later epoch
            return None
        return dict(views[0])

    return wait_until(agreed, AGREE_TIMEOUT, f"the nodes to agree on an epoch after {after}")


def routed_paths(view: dict[str, Any], user: str) -> dict[tuple[str, str | None], str]:
    """Return one request path per routed slot of ``view``."""
    paths: dict[tuple[str, str | None], str] = {}
    for slot in view["slots"]:
        if slot["role"] == "be_system":
            paths[("be_system", None)] = f"/api/v1/system/users/{user}"
        elif slot["role"] == "be_subsystem":
            paths[("be_subsystem", slot["subsystem"])] = (
                f"/api/v1/subsystems/{slot['subsystem']}/data/records"
            )
    return paths


def pick_victim(view: dict[str, Any], nodes: list[DevnetNode]) -> DevnetNode:
    """Return the node that is first host of the most routed slots (it hurts most)."""
    firsts: dict[str, int] = {}
    for slot in view["slots"]:
        if slot["role"] in ROUTED_ROLES:
            first = slot["hosts"][0].lower()
            firsts[first] = firsts.get(first, 0) + 1
    by_address = {n.address.lower(): n for n in nodes}
    return by_address[max(sorted(firsts), key=lambda a: firsts[a])]


def assert_every_role_answered(
    live: list[DevnetNode],
    paths: dict[tuple[str, str | None], str],
    sessions: dict[str, dict[str, str]],
    dead: str,
) -> dict[tuple[str, str | None], set[str]]:
    """Ask every live node for every routed slot; return who served each slot."""
    served: dict[tuple[str, str | None], set[str]] = {}
    for node in live:
        for slot, path in paths.items():
            r = httpx.get(node.url + path, headers=sessions[node.url], timeout=ROUTED_TIMEOUT)
            assert r.status_code == 200, f"{slot} at node{node.index}: {r.status_code} {r.text}"
            by = r.headers["x-collegium-served-by"].lower()
            assert by != dead
            served.setdefault(slot, set()).add(by)
    return served


def test_kill_9_one_of_five_nodes(devnet5: Devnet) -> None:
    nodes = devnet5.nodes
    user = devnet5.operator
    t0 = time.monotonic()

    def mark(what: str) -> None:
        print(f"churn +{time.monotonic() - t0:5.1f}s {what}")

    view = agreed_epoch(nodes)
    paths = routed_paths(view, user.address)
    assert ("be_system", None) in paths and len(paths) == 4  # be_system + main, acme, beta
    sessions = {n.url: login(n.url, user) for n in nodes}
    victim = pick_victim(view, nodes)
    dead = victim.address.lower()
    live = [n for n in nodes if n is not victim]
    assert_every_role_answered(nodes, paths, sessions, dead="")  # all up: a baseline

    mark("baseline answered")
    victim.kill()
    served = assert_every_role_answered(live, paths, sessions, dead)
    print(f"node{victim.index} killed in epoch {view['epoch']}; served by {served}")

    mark("answered through failover")
    # the network goes on without it: new transactions are anchored by a live node
    writer = live[0]
    ids = submit_batch(writer.url, user, TRAFFIC_WHILE_DOWN)
    anchored = wait_anchored(writer.url, ids[-1])
    batch_cid = anchored["anchor"]["batch_cid"]

    mark("traffic anchored")
    # the next epoch: the dead node is still registered (no liveness on-chain); every role
    # is still answered
    later = agreed_epoch(live, after=int(view["epoch"]))
    still_assigned = any(dead in [h.lower() for h in s["hosts"]] for s in later["slots"])
    print(f"epoch {later['epoch']}: dead node still assigned: {still_assigned}")
    assert_every_role_answered(live, routed_paths(later, user.address), sessions, dead)

    mark("next epoch answered")
    # restart: no manual step; it catches up on the chain index and the content store
    victim.restart()
    mark("restarted")
    registry = devnet5.operator_registry()

    def caught_up() -> bool:
        anchors = registry.anchor_count()
        top = httpx.get(victim.url + "/api/v1/anchors?limit=1", timeout=10).json()
        sync = health(victim)["sync"]
        return bool(
            top
            and top[0]["index"] == anchors - 1
            and sync["complete"]
            and sync["have"] == sync["want"] >= anchors
        )

    wait_until(caught_up, CATCH_UP_TIMEOUT, f"node{victim.index} to catch up")
    mark("caught up")
    block = httpx.get(f"{victim.url}/ipfs/{batch_cid}?format=raw", timeout=10)
    assert block.status_code == 200  # a batch anchored while it was down, now in its store
    for tx_id in ids[:3]:
        leaf = httpx.get(f"{writer.url}/api/v1/transactions/{tx_id}", timeout=10).json()["cid"]
        assert httpx.get(f"{victim.url}/ipfs/{leaf}?format=raw", timeout=10).status_code == 200
    final = agreed_epoch(nodes)  # the restarted node follows the epochs with the others
    mark("agreed again")
    sessions[victim.url] = login(victim.url, user)
    assert_every_role_answered([victim], routed_paths(final, user.address), sessions, dead="")
