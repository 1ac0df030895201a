"""The current epoch's summary, for ``/health`` and ``collegium status``."""

from __future__ import annotations

from typing import Any

from node.epoch.service import EpochService
from node.errors import CollegiumError


def _hex(value: bytes | None) -> str | None:
    return None if value is None else "0x" + bytes(value).hex()


def describe_epoch(service: EpochService | None) -> dict[str, Any]:
    """Return the current epoch's summary for ``/health`` and ``collegium status``.

    Keys: ``epoch``, ``seed``, ``root``, ``attested``, ``my_slots``, ``agree``/``disagree``
    (node addresses whose attested root matches/differs), ``missing`` (not attested yet),
    ``unserved``, ``adjustments``, ``error`` (why there is no assignment), ``last_error``,
    ``waiting`` (a normal wait of the last step, not an error);
    liveness: ``left_out`` (active nodes not live at the boundary block, so not assigned),
    ``kept_all`` (none was live: all kept), ``liveness_window``, ``last_seen`` (this node's
    block as last read) and ``heartbeats_sent``.
    """
    if service is None:
        return {"enabled": False}
    view = service.current()
    summary: dict[str, Any] = {
        "enabled": True,
        "autoadvance": service.autoadvance,
        "last_error": service.last_error,
        "waiting": service.waiting,
    }
    if view is None:
        summary["epoch"] = None
        return summary
    try:
        attestations = service.attestations(view.epoch)
    except CollegiumError as exc:
        attestations = []
        summary["last_error"] = f"cannot read attestations: {exc}"
    summary.update(
        epoch=view.epoch,
        boundary_block=view.boundary_block,
        snapshot_block=view.snapshot.block,
        seed=_hex(view.seed),
        source_block=view.seed_info.source_block,
        root=_hex(view.root),
        attested=_hex(service.attested_root(view.epoch)),
        my_slots=[
            {"role": s.role, "subsystem": s.subsystem, "rank": view.rank_of(s)}
            for s in view.my_slots
        ],
        agree=[a.node for a in attestations if a.matches is True],
        disagree=[a.node for a in attestations if a.matches is False],
        missing=[a.node for a in attestations if a.root is None],
        replicas=dict(view.plan.replicas),
        unserved=list(view.plan.unserved),
        adjustments=list(view.plan.adjustments),
        error=None if view.plan.error is None else str(view.plan.error),
        left_out=[str(a) for a in view.snapshot.left_out],
        kept_all=view.snapshot.kept_all,
        liveness_window=view.snapshot.liveness_window,
        last_seen=service.last_seen(),
        heartbeats_sent=service.heartbeats_sent,
    )
    return summary
