"""``node.health``: each degraded reason appears for its cause and only then (pure, no node)."""

from __future__ import annotations

from typing import Any

from node.health import HEALTH_REASONS, AnchoringState, compute_health_reasons

GOOD_EPOCH: dict[str, Any] = {
    "enabled": True,
    "epoch": 5,
    "root": "0x" + "ab" * 32,
    "unserved": [],
    "adjustments": ["be_system: 3 -> 1 replicas (eligible nodes)"],
    "disagree": [],
}


def codes(**changes: Any) -> list[str]:
    args: dict[str, Any] = {
        "chain_error": None,
        "epochs": GOOD_EPOCH,
        "sync": {"have": 3, "want": 3, "last_error": None},
        "anchoring": AnchoringState(0, None, 0),
        "clock_lead": 0.2,
        "max_lead": 5.0,
    }
    args.update(changes)
    return [r["code"] for r in compute_health_reasons(**args)]


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
    }
    assert set(seen) == set(HEALTH_REASONS)
    for code, got in seen.items():
        assert got == [code], (code, got)
    assert codes(epochs={**GOOD_EPOCH, "epoch": None}) == ["no_assignment"]
    assert codes(epochs={**GOOD_EPOCH, "unserved": ["orphan"]}) == ["slot_unserved"]
    assert codes(anchoring=AnchoringState(3, "chain down", 0)) == []  # nothing waits
    assert codes(sync={"have": 1, "want": 3, "last_error": None}) == []  # syncing normally
