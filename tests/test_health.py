"""``node.health``: each degraded reason appears for its cause and only then (pure, no node)."""

from __future__ import annotations

from typing import Any

from node.health import HEALTH_REASONS, AnchoringState, ChainReadingCache, compute_health_reasons

GOOD_EPOCH: dict[str, Any] = {
    "enabled": True,
    "epoch": 5,
    "root": "0x" + "ab" * 32,
    "unserved": [],
    "adjustments": ["be_system: 3 -> 1 replicas (eligible nodes)"],
    "disagree": [],
}


def reasons(**changes: Any) -> list[dict[str, str]]:
    """The reasons of a healthy node's inputs with ``changes``."""
    args: dict[str, Any] = {
        "chain_error": None,
        "epochs": GOOD_EPOCH,
        "sync": {"have": 3, "want": 3, "last_error": None},
        "anchoring": AnchoringState(0, None, 0),
        "clock_lead": 0.2,
        "max_lead": 5.0,
    }
    args.update(changes)
    return compute_health_reasons(**args)


def codes(**changes: Any) -> list[str]:
    return [r["code"] for r in reasons(**changes)]


def test_a_healthy_node_has_no_reason() -> None:
    assert codes() == []  # a reduced replica count alone is not a fault


def test_each_cause_gives_its_reason() -> None:
    seen = {
        "chain_unreachable": codes(chain_error="ConnectionError: refused"),
        "no_assignment": codes(epochs={**GOOD_EPOCH, "root": None, "error": "no slot"}),
        "slot_unserved": codes(
            epochs={**GOOD_EPOCH, "adjustments": ["fe_system: unserved (capacity)"]}
        ),
        "attestations_disagree": codes(epochs={**GOOD_EPOCH, "disagree": ["0x" + "01" * 20]}),
        "sync_behind": codes(sync={"have": 1, "want": 3, "last_error": "peer down"}),
        "anchoring_stalled": codes(anchoring=AnchoringState(3, "chain down", 7)),
        "clock_ahead": codes(clock_lead=9.0),
        "index_stalled": codes(index={"block": 9, "failures": 3, "last_error": "refused"}),
    }
    assert set(seen) == set(HEALTH_REASONS)
    for code, got in seen.items():
        assert got == [code], (code, got)
    assert codes(epochs={**GOOD_EPOCH, "epoch": None}) == ["no_assignment"]
    assert codes(epochs={**GOOD_EPOCH, "unserved": ["orphan"]}) == ["slot_unserved"]
    assert codes(anchoring=AnchoringState(3, "chain down", 0)) == []  # nothing waits
    assert codes(sync={"have": 1, "want": 3, "last_error": None}) == []  # syncing normally
    # the last finished round found no peer serving two roots: behind, though it did not fail
    behind = {"have": 1, "want": 3, "last_error": None, "missing": 2}
    assert codes(sync=behind) == ["sync_behind"]
    # one failed pass of the chain follower is routine (a lagging backend): not yet a reason
    assert codes(index={"block": 9, "failures": 1, "last_error": "lagging"}) == []
    assert codes(index={"block": 9, "failures": 0, "last_error": None}) == []
    stalled = reasons(
        index={"block": 9, "failures": 4, "last_error": "cannot read the logs of block 10"}
    )
    assert [r["code"] for r in stalled] == ["index_stalled"]
    assert "stuck at block 9" in stalled[0]["message"]
    assert "cannot read the logs of block 10" in stalled[0]["message"]


def test_chain_readings_are_reused_at_the_same_head_for_at_most_the_ttl() -> None:
    now = [100.0]
    cache: ChainReadingCache[int] = ChainReadingCache(ttl=1.0, clock=lambda: now[0])
    made = iter(range(1, 100))
    assert cache.last() is None
    assert cache.get(7, lambda: next(made)) == 1
    now[0] += 0.5
    assert cache.get(7, lambda: next(made)) == 1  # same head, within the TTL: reused
    assert cache.get(8, lambda: next(made)) == 2  # a new head: read afresh at once
    now[0] += 1.0
    assert cache.get(8, lambda: next(made)) == 3  # the TTL passed: read afresh
    assert cache.last() == 3 and cache.reads == 3
