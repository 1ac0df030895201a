"""``kill -9`` one of five nodes: every routed role is still answered through failover; at
the first epoch whose boundary block is at least the kill block plus the liveness window the
dead node is re-hosted (it holds no slot); it restarts, catches up with no manual step and
comes back into the assignment by itself.

Routed roles are ``be_system`` (``/api/v1/system/…``) and ``be_subsystem`` of each served
subsystem (``/api/v1/subsystems/{S}/data/records``), asked at every live node with a SIWE
session of the operator (a participant of every home subsystem). "Answered" means 200
within ``ROUTED_TIMEOUT`` (the client's timeout, so a slow answer fails the test).

Re-hosting. Until the window has passed, the killed node is still live on-chain (it attested
the epoch it died in) and its slots are served by the next-ranked live host through the
router's failover (connection refused on a loopback port is immediate; the failed host is
then tried last for ``DOWN_TTL``). A node is live at block b iff its ``lastSeen`` (register,
update, attest, heartbeat) + window > b, window = two epoch periods (8 blocks here,
docs/assignment.md "Liveness"), so from the first boundary >= kill block + window the
snapshot leaves it out and every slot goes to live nodes.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from node.auth.client import SessionAuth
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
COME_BACK_TIMEOUT = 60.0
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


def epoch_at(nodes: list[DevnetNode], epoch: int) -> dict[str, Any]:
    """Return epoch ``epoch`` once every node in ``nodes`` has reached it, checking that they
    all serve the same root for it; fail after ``AGREE_TIMEOUT``."""

    def reached() -> bool:
        current = [
            httpx.get(n.url + "/api/v1/epochs/current", timeout=10).json().get("epoch")
            for n in nodes
        ]
        return None not in current and min(current) >= epoch

    wait_until(reached, AGREE_TIMEOUT, f"every node to reach epoch {epoch}")
    views = [httpx.get(f"{n.url}/api/v1/epochs/{epoch}", timeout=10).json() for n in nodes]
    roots = {v.get("root") for v in views}
    assert len(roots) == 1 and None not in roots, f"epoch {epoch}: roots {roots}"
    return dict(views[0])


def lowered(view: dict[str, Any]) -> set[str]:
    """Return the nodes (lowercase) ``view`` left out as not live at its boundary block."""
    return {a.lower() for a in view["left_out"]}


def hosts_of(view: dict[str, Any]) -> set[str]:
    """Return every node (lowercase) that holds a slot of ``view``."""
    return {h.lower() for s in view["slots"] for h in s["hosts"]}


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
    sessions: dict[str, SessionAuth],
    dead: str,
) -> dict[tuple[str, str | None], set[str]]:
    """Ask every live node for every routed slot; return who served each slot."""
    served: dict[tuple[str, str | None], set[str]] = {}
    for node in live:
        for slot, path in paths.items():
            r = httpx.get(node.url + path, auth=sessions[node.url], timeout=ROUTED_TIMEOUT)
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
    killed_at = int(devnet5.w3().eth.block_number)
    killed_time = time.monotonic()
    served = assert_every_role_answered(live, paths, sessions, dead)
    print(f"node{victim.index} killed in epoch {view['epoch']}; served by {served}")

    mark("answered through failover")
    # the network goes on without it: new transactions are anchored by a live node
    writer = live[0]
    ids = submit_batch(writer.url, user, TRAFFIC_WHILE_DOWN)
    anchored = wait_anchored(writer.url, ids[-1])
    batch_cid = anchored["anchor"]["batch_cid"]

    mark("traffic anchored")
    # re-hosting: the first epoch whose boundary block is >= kill block + window leaves the
    # dead node out of the snapshot; every slot is then hosted by live nodes
    registry = devnet5.operator_registry()
    seen = registry.last_seen(victim.address)
    assert seen <= killed_at + 1  # a transaction sent just before the kill may still be mined
    window = registry.liveness_window(killed_at)
    bound = max(killed_at, seen) + window
    epoch = int(view["epoch"])
    while registry.epoch_start_block(epoch) < bound:
        epoch += 1
    rehosted = epoch_at(live, epoch)
    rehosted_after = time.monotonic() - killed_time
    mark(f"re-hosted in epoch {epoch}")
    w3 = devnet5.w3()
    chain_seconds = (
        w3.eth.get_block(rehosted["boundary_block"])["timestamp"]
        - w3.eth.get_block(killed_at)["timestamp"]
    )
    print(
        f"node{victim.index} killed at block {killed_at} (last seen {seen}, window {window}); "
        f"epoch {epoch} boundary {rehosted['boundary_block']} leaves it out: "
        f"{rehosted['boundary_block'] - killed_at} blocks ({chain_seconds}s of chain time), "
        f"every live node on it {rehosted_after:.1f}s after the kill; "
        f"left out {rehosted['left_out']}"
    )
    assert rehosted["boundary_block"] >= killed_at + window
    for earlier in range(int(view["epoch"]) + 1, epoch):  # one node: the roots agree (above)
        before = epoch_at(live[:1], earlier)
        boundary = int(before["boundary_block"])
        if boundary >= seen:  # its lastSeen at that boundary is ``seen``: the rule is exact
            expected = boundary >= seen + window  # live iff lastSeen + window > boundary
            assert (dead in lowered(before)) == expected, (
                f"epoch {earlier} (boundary {boundary}, last seen {seen}, window {window}): "
                f"left out {before['left_out']}"
            )
    assert dead in lowered(rehosted) and not rehosted["kept_all"]
    assert dead not in hosts_of(rehosted)
    assert hosts_of(rehosted) <= {n.address.lower() for n in live}
    rehosted_paths = routed_paths(rehosted, user.address)
    assert len(rehosted_paths) == 4  # every subsystem still served (each has a live member)
    assert all(s["hosts"] for s in rehosted["slots"])
    assert_every_role_answered(live, rehosted_paths, sessions, dead)

    mark("re-hosted roles answered")
    # restart: no manual step; it catches up on the chain index and the content store
    victim.restart()
    mark("restarted")

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
    # it attested again on restart, so it is live: it comes back into the assignment by itself
    back_after = registry.current_epoch()

    def back() -> dict[str, Any] | None:
        current = agreed_epoch(nodes, after=back_after)
        assert dead not in lowered(current), f"epoch {current['epoch']}: still left out"
        return current if dead in hosts_of(current) else None

    final = wait_until(back, COME_BACK_TIMEOUT, f"node{victim.index} to hold a slot again")
    mark(f"back in the assignment in epoch {final['epoch']}")
    sessions[victim.url] = login(victim.url, user)
    assert_every_role_answered([victim], routed_paths(final, user.address), sessions, dead="")
