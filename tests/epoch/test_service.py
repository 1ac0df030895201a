"""The epoch service on a real chain: agreement, divergence, seeds, restarts, quiet chains."""

from __future__ import annotations

import dataclasses
import time

import pytest

from node.assignment import compute_assignment_from_json, encode_assignment
from node.chain.registry import Registry, RegistryRejected, compute_seed
from node.epoch import (
    DEFAULT_REPLICAS,
    EpochService,
    EpochUnavailable,
    Snapshot,
    describe_epoch,
    read_snapshot,
)
from node.epoch.report import format_epoch_status
from node.epoch.service import FALLBACK_TTL_SECONDS, EpochAssignmentSource
from tests.epoch.conftest import EPOCH_PERIOD, LONG_EPOCH_PERIOD, Network

EPOCHS = 6


def _topology_now(registry: Registry, seed: bytes, epoch: int) -> dict[str, object]:
    """Return the ``collegium assign`` input, built independently from the registry now."""
    nodes = []
    for info in registry.nodes():
        members = [s for s in registry.subsystems() if registry.is_participant(s, info.address)]
        nodes.append(
            {
                "id": info.address,
                "capacity": info.capacity,
                "home": info.home,
                "members_of": members,
                "roles": list(info.roles),
            }
        )
    # the configured counts: the function itself clips be_subsystem to 1 (each subsystem has
    # exactly one member node here), and the root commits to that adjustment
    replicas = dict(DEFAULT_REPLICAS)
    return {
        "seed": "0x" + seed.hex(),
        "epoch": epoch,
        "nodes": nodes,
        "subsystems": registry.subsystems(),
        "replicas": replicas,
    }


def test_three_nodes_attest_identical_roots_for_several_epochs(network: Network) -> None:
    registry = network.members[0].registry
    hosts_seen = set()
    for _ in range(EPOCHS):
        epoch = network.mine_to_next_epoch()
        views = [m.service.tick() for m in network.members]
        assert {v.epoch for v in views} == {epoch}
        roots = {v.root for v in views}
        assert len(roots) == 1 and None not in roots
        (root,) = roots
        for member in network.members:
            assert registry.attestation_of(epoch, member.address) == root
            assert member.service.divergence() == []
        # the seed obeys the contract's rule and was fixed from the boundary block
        info = registry.seed_info(epoch)
        assert info is not None and info.source_block == registry.epoch_start_block(epoch)
        source_hash = bytes(network.chain.w3.eth.get_block(info.source_block)["hash"])
        assert compute_seed(epoch, source_hash) == info.seed
        assert registry.verify_seed(epoch)
        # an independent recomputation (the `collegium assign` JSON path) gives the same root
        expected = compute_assignment_from_json(_topology_now(registry, info.seed, epoch))
        assert expected.root == root
        hosts_seen.add(tuple(s.hosts for s in expected.slots))
        summary = describe_epoch(network.members[1].service)
        assert summary["epoch"] == epoch and summary["disagree"] == []
        assert len(summary["agree"]) == len(network.members)
        assert summary["left_out"] == [] and summary["kept_all"] is False
    assert len(hosts_seen) > 1, "the assignment never rotated"
    # exactly one seed transaction per epoch across the three nodes
    assert sum(m.service.seeds_fixed for m in network.members) == EPOCHS
    assert all(m.service.attestations_sent == EPOCHS for m in network.members)
    # nodes that attest every epoch stay live without a single heartbeat
    assert all(m.service.heartbeats_sent == 0 for m in network.members)


def test_tampered_snapshot_is_reported_as_divergent(network: Network) -> None:
    honest, _, liar = network.members

    def tampered(registry: Registry, block: int) -> Snapshot:
        snapshot = read_snapshot(registry, block)  # then pretend the first node is absent
        return dataclasses.replace(snapshot, nodes=snapshot.nodes[1:])

    liar.service = network.service_for(liar, snapshot_reader=tampered)
    epoch = network.mine_to_next_epoch()
    views = [m.service.tick() for m in network.members]
    assert views[0].root == views[1].root != views[2].root
    divergent = honest.service.divergence()
    assert [a.node for a in divergent] == [liar.address]
    assert divergent[0].root == views[2].root
    summary = describe_epoch(honest.service)
    assert summary["disagree"] == [liar.address]
    assert f"DISAGREE   {liar.address}" in format_epoch_status(summary)
    assert "1 disagree" in " ".join(format_epoch_status(summary))
    # the liar sees the two honest nodes as the divergent ones
    assert {a.node for a in liar.service.divergence(epoch)} == {
        m.address for m in network.members[:2]
    }


def test_fixing_a_seed_before_its_boundary_is_rejected(network: Network) -> None:
    member = network.members[0]
    view = member.service.tick()
    future = view.epoch + 1
    with pytest.raises(RegistryRejected) as caught:
        member.registry.fix_seed(future)
    assert caught.value.error_name == "EpochNotStarted"
    assert member.registry.seed_info(future) is None
    with pytest.raises(EpochUnavailable):
        member.service.view(future, fix_seed=True)
    with pytest.raises(RegistryRejected) as again:
        member.registry.fix_seed(view.epoch)
    assert again.value.error_name == "SeedAlreadyFixed"


def test_restart_does_not_attest_twice(network: Network) -> None:
    member = network.members[0]
    w3 = network.chain.w3
    epoch = network.mine_to_next_epoch()
    first = member.service.tick()
    assert member.service.attestations_sent == 1
    nonce = w3.eth.get_transaction_count(member.address)
    member.service.stop()
    restarted = network.service_for(member)
    again = restarted.tick()
    assert again.epoch == epoch and again.root == first.root
    assert restarted.attestations_sent == 0
    assert w3.eth.get_transaction_count(member.address) == nonce
    assert restarted.attested_root(epoch) == first.root
    with pytest.raises(RegistryRejected) as caught:
        member.registry.attest(epoch, first.seed, bytes(first.root or b""))
    assert caught.value.error_name == "AlreadyAttested"


def test_snapshot_is_the_registry_at_the_boundary_block(network: Network) -> None:
    a, b, _ = network.members
    epoch = network.mine_to_next_epoch()
    before = a.service.tick()
    # after the boundary: b changes its capacity; epoch `epoch` must not see it
    b.registry.update_node("http://shop.invalid", 9, 15, "shop")
    fresh = network.service_for(a)
    view = fresh.view(epoch)
    assert view.root == before.root
    node_b = view.snapshot.node(b.address)
    assert node_b is not None and node_b.capacity != 9
    next_epoch = network.mine_to_next_epoch()
    later = fresh.tick()
    assert later.epoch == next_epoch
    node_b = later.snapshot.node(b.address)
    assert node_b is not None and node_b.capacity == 9


def test_autoadvance_ends_a_quiet_epoch_by_mining(network: Network) -> None:
    member = network.members[0]
    now = [0.0]
    service = network.service_for(
        member, autoadvance=True, epoch_seconds=10.0, clock=lambda: now[0]
    )
    start = service.tick().epoch
    assert service.tick().epoch == start  # not due yet
    now[0] += 10.0
    advanced = service.tick()
    assert advanced.epoch == start + 1
    assert service.blocks_mined > 0
    assert advanced.boundary_block == member.registry.epoch_start_block(start + 1)
    assert advanced.seed_info.source_block == advanced.boundary_block


def test_without_autoadvance_a_quiet_chain_stays_in_its_epoch(network: Network) -> None:
    member = network.members[0]
    now = [0.0]
    service = network.service_for(member, epoch_seconds=1.0, clock=lambda: now[0])
    start = service.tick().epoch
    now[0] += 100.0
    head = network.chain.block_number()
    assert service.tick().epoch == start
    assert network.chain.block_number() == head
    assert service.blocks_mined == 0


def test_past_epochs_are_recomputed_identically(network: Network) -> None:
    member = network.members[0]
    roots = {}
    for _ in range(3):
        network.mine_to_next_epoch()
        view = member.service.tick()
        roots[view.epoch] = view.root
    fresh = network.service_for(member)
    for epoch, root in roots.items():
        assert fresh.view(epoch).root == root
        assert encode_assignment(fresh.view(epoch).assignment)["root"] == "0x" + root.hex()  # type: ignore[arg-type, union-attr]


def test_epoch_period_matches_the_fixture() -> None:
    assert EPOCH_PERIOD >= 2  # fix_seed + attest must fit in an epoch without crossing it


def test_assignment_source_serves_the_router(network: Network) -> None:
    member = network.members[0]
    source = member.service.assignment_source()
    epoch, fallback = source.current()  # nothing processed yet: local routing table
    assert fallback.root == bytes(32)
    assert {s.hosts for s in fallback.slots} == {(member.address.lower(),)}
    view = member.service.tick()
    assert source.current() == (view.epoch, view.assignment)
    assert member.service.peers()[member.address.lower()] == "http://main.invalid"


def test_the_fallback_table_is_read_at_most_once_per_ttl(network: Network) -> None:
    """Before any epoch is processed the router's table comes from two registry reads: it
    is reused for FALLBACK_TTL_SECONDS instead of being read again on every request."""
    member = network.members[0]
    now = [0.0]
    source = EpochAssignmentSource(member.service, clock=lambda: now[0])
    _, before = source.current()
    member.registry.create_subsystem("late")
    now[0] += FALLBACK_TTL_SECONDS / 2
    assert source.current()[1] is before  # within the TTL: not read again
    now[0] += FALLBACK_TTL_SECONDS
    _, after = source.current()
    assert {s.subsystem for s in after.slots} - {s.subsystem for s in before.slots} == {"late"}


# ---------------------------------------------------------------- liveness


@pytest.mark.parametrize("network", [LONG_EPOCH_PERIOD], indirect=True)
def test_a_silent_node_is_left_out_once_the_window_passed_and_comes_back(
    network: Network,
) -> None:
    a, b, c = network.members
    registry = a.registry
    network.mine_to_next_epoch()
    for member in network.members:
        member.service.tick()
    seen_c = registry.last_seen(c.address)  # c's attestation of that epoch; then it goes silent
    window = registry.liveness_window(seen_c)
    assert window == 2 * LONG_EPOCH_PERIOD
    left_out_at = None
    kept = []  # epochs c was still part of while silent
    for _ in range(4):
        epoch = network.mine_to_next_epoch()
        views = [a.service.tick(), b.service.tick()]
        assert views[0].root == views[1].root is not None
        view = views[0]
        hosted = {h for s in view.assignment.slots for h in s.hosts}  # type: ignore[union-attr]
        if view.boundary_block < seen_c + window:  # still within its window: still assigned
            assert view.snapshot.node(c.address) is not None and view.snapshot.left_out == ()
            kept.append(epoch)
        else:  # the bound: every boundary >= lastSeen + window leaves it out
            left_out_at = left_out_at or epoch
            assert view.snapshot.node(c.address) is None
            assert view.snapshot.left_out == (c.account.address,)
            assert c.address.lower() not in hosted
            assert hosted <= {a.address.lower(), b.address.lower()}
            assert view.plan.unserved == ("lab",)  # c's home had no other member node
    assert left_out_at is not None
    summary = describe_epoch(a.service)
    assert summary["left_out"] == [c.address] and summary["kept_all"] is False
    assert f"not live   {c.address} (left out)" in format_epoch_status(summary)
    assert a.service.heartbeats_sent == b.service.heartbeats_sent == 0  # attesting suffices
    # c comes back (a restart): it attests the current epoch, so the next one assigns it again,
    # and late the epochs it was still part of (it had attested the one before them), with the
    # roots the others attested at the time
    assert kept and all(registry.attestation_of(e, c.address) is None for e in kept)
    c.service = network.service_for(c)
    c.service.tick()
    assert registry.last_seen(c.address) > seen_c
    for e in kept:
        assert registry.attestation_of(e, c.address) == a.service.view(e).root is not None
    assert registry.attestation_of(left_out_at, c.address) is None  # not part of it
    network.mine_to_next_epoch()
    back = [m.service.tick() for m in network.members]
    assert len({v.epoch for v in back}) == 1 and len({v.root for v in back}) == 1
    assert back[0].snapshot.left_out == () and back[0].snapshot.node(c.address) is not None
    assert any(c.address.lower() in s.hosts for s in back[0].assignment.slots)  # type: ignore[union-attr]


def test_with_no_node_live_every_active_node_is_kept(network: Network) -> None:
    a = network.members[0]
    registry = a.registry
    latest = max(registry.last_seen(m.address) for m in network.members)
    network.chain.mine(latest + registry.liveness_window(latest) - network.chain.block_number())
    epoch = network.mine_to_next_epoch()  # nobody attested or beat for a whole window
    view = a.service.tick()
    assert view.epoch == epoch
    assert view.snapshot.kept_all and view.snapshot.left_out == ()
    assert len(view.snapshot.nodes) == 3 and view.root is not None
    assert "no node was live" in " ".join(format_epoch_status(describe_epoch(a.service)))
    # a attested that epoch; b and c stay silent: the next epoch has a alone
    network.mine_to_next_epoch()
    alone = a.service.tick()
    assert not alone.snapshot.kept_all
    assert [n.address for n in alone.snapshot.nodes] == [a.account.address]
    assert set(alone.snapshot.left_out) == {m.account.address for m in network.members[1:]}


def test_a_node_without_attestation_keeps_itself_live_with_heartbeats(network: Network) -> None:
    member = network.members[0]
    registry = member.registry

    def no_assignment(reg: Registry, block: int) -> Snapshot:
        # an impossible topology (no node at all): no root, so nothing to attest
        return dataclasses.replace(read_snapshot(reg, block), nodes=())

    service = network.service_for(member, snapshot_reader=no_assignment)
    registered = registry.last_seen(member.address)
    window = registry.liveness_window(registered)
    beats = 0
    for _ in range(5):
        network.mine_to_next_epoch()
        head = network.chain.block_number()
        last = registry.last_seen(member.address)
        view = service.tick()
        assert view.root is None and service.attestations_sent == 0
        if head - last >= window // 2:
            beats += 1
            seen = registry.last_seen(member.address)  # the heartbeat's block (after fixSeed's)
            assert seen > head and service.last_seen() == seen
        assert service.heartbeats_sent == beats
        # whatever the schedule, it is live at every boundary
        assert registry.is_live_at(member.address, view.boundary_block)
    assert beats >= 2
    nonce = network.chain.w3.eth.get_transaction_count(member.address)
    service.tick()  # seen just now: no second heartbeat, not even a chain read of lastSeen
    assert network.chain.w3.eth.get_transaction_count(member.address) == nonce
    assert describe_epoch(service)["last_seen"] == registry.last_seen(member.address)


def test_the_router_reads_the_cached_table_without_the_registry(network: Network) -> None:
    """``current_cached`` answers only what needs no registry read (the router then answers
    on its event loop): nothing before the fallback table is read, then that table within
    its TTL, then the processed epoch's assignment."""
    member = network.members[0]
    now = [0.0]
    source = EpochAssignmentSource(member.service, clock=lambda: now[0])
    assert source.current_cached() is None  # would take two registry reads
    read = source.current()
    assert source.current_cached() == read
    now[0] += FALLBACK_TTL_SECONDS * 2
    assert source.current_cached() is None  # stale: read again, off the event loop
    view = member.service.tick()
    assert source.current_cached() == (view.epoch, view.assignment) == source.current()


def test_epochs_missed_by_a_slow_step_are_attested_late(network: Network) -> None:
    member = network.members[0]
    start = network.mine_to_next_epoch()
    member.service.tick()
    network.mine_to_next_epoch()  # this epoch passes without a step of this node...
    network.mine_to_next_epoch()  # ...and this one has begun: both are attested now
    view = member.service.tick()
    assert view.epoch == start + 2
    for epoch in (start, start + 1, start + 2):
        root = member.registry.attestation_of(epoch, member.address)
        assert root is not None and bytes(root) == member.service.view(epoch).root
    sent = member.service.attestations_sent
    member.service.tick()
    assert member.service.attestations_sent == sent  # each looked at once


class _SeedsLate:
    """The member's real registry, except that while ``late`` no seed reads as fixed and
    fixing one does nothing: an epoch whose seed transaction is not readable yet."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self.late = True

    def seed_info(self, epoch: int) -> object:
        return None if self.late else self._registry.seed_info(epoch)

    def fix_seed(self, epoch: int) -> object:
        return None if self.late else self._registry.fix_seed(epoch)

    def __getattr__(self, name: str) -> object:
        return getattr(self._registry, name)


def test_a_seed_not_readable_yet_is_a_wait_not_an_error(network: Network) -> None:
    registry = _SeedsLate(network.members[0].registry)
    service = EpochService(registry, network.chain)  # type: ignore[arg-type]
    service.start()
    try:
        deadline = time.monotonic() + 30
        while service.waiting is None:
            assert time.monotonic() < deadline, f"no wait seen (error: {service.last_error})"
            time.sleep(0.05)
        assert "is not fixed yet" in service.waiting and service.last_error is None
        summary = describe_epoch(service)
        assert summary["waiting"] == service.waiting and summary["last_error"] is None
        assert "not fixed yet" in " ".join(format_epoch_status(summary))
        registry.late = False  # the seed can be fixed and read: the next step goes on
        while service.current() is None:
            assert time.monotonic() < deadline, f"never went on (error: {service.last_error})"
            time.sleep(0.05)
        assert service.waiting is None and service.last_error is None
    finally:
        service.stop()
