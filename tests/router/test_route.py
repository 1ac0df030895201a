"""compute_route and compute_request_slot: pure decisions."""

from __future__ import annotations

import pytest
from eth_account import Account

from node.router import UnknownSlot, compute_request_slot, compute_route
from tests.router.cluster import SUBSYSTEM, compute_cluster_assignment


def test_route_is_local_for_a_host_and_ranked_remote_otherwise() -> None:
    accounts = [Account.create() for _ in range(3)]
    assignment = compute_cluster_assignment(accounts)
    peers = {a.address: f"http://n{i}" for i, a in enumerate(accounts)}
    (slot,) = [s for s in assignment.slots if s.role == "be_subsystem"]
    host, outsider = (
        slot.hosts[0],
        next(a.address for a in accounts if a.address.lower() not in slot.hosts),
    )
    assert compute_route("be_subsystem", SUBSYSTEM, assignment, host, peers).local
    route = compute_route("be_subsystem", SUBSYSTEM, assignment, outsider.upper(), peers)
    assert not route.local
    assert [p.address for p in route.hosts] == list(slot.hosts)
    assert route.epoch == assignment.epoch
    # hosts without a known endpoint are skipped, rank kept
    partial = {a: e for a, e in peers.items() if a.lower() != slot.hosts[0]}
    route = compute_route("be_subsystem", SUBSYSTEM, assignment, outsider, partial)
    assert [p.address for p in route.hosts] == list(slot.hosts[1:])


def test_unknown_slot_raises() -> None:
    assignment = compute_cluster_assignment([Account.create() for _ in range(3)])
    with pytest.raises(UnknownSlot):
        compute_route("be_subsystem", "nope", assignment, "0x" + "00" * 20, {})


@pytest.mark.parametrize(
    ("path", "slot"),
    [
        ("/api/v1/subsystems/alpha/data/records", ("be_subsystem", "alpha")),
        ("/api/v1/subsystems/a%20b/data", ("be_subsystem", "a b")),
        ("/api/v1/subsystems/alpha", None),
        ("/api/v1/subsystems/alpha/participants", None),
        ("/api/v1/system/users/0xabc", ("be_system", None)),
        ("/api/v1/auth/login", None),
        ("/health", None),
        ("/livez", None),
    ],
)
def test_request_slot(path: str, slot: tuple[str, str | None] | None) -> None:
    assert compute_request_slot(path) == slot


def test_an_unserved_slot_is_served_by_whoever_is_asked() -> None:
    """Issue 13: a reduced assignment may leave a slot without host; routing serves it locally
    (as a lone node would) instead of failing; /health reports it as ``slot_unserved``."""
    from node.assignment import Assignment, Slot
    from node.router.route import compute_route

    me, other = "0x" + "01" * 20, "0x" + "02" * 20
    assignment = Assignment(
        epoch=3,
        seed=bytes(32),
        slots=(Slot("fe_subsystem", "b", ()), Slot("fe_system", None, (other,))),
        root=bytes(32),
    )
    assert compute_route("fe_subsystem", "b", assignment, me, {other: "http://o"}).local
    assert not compute_route("fe_system", None, assignment, me, {other: "http://o"}).local
