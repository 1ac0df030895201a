"""Human-readable lines for ``collegium status`` from :func:`describe_epoch`'s summary."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LABEL_WIDTH = 11
"""Width of the label column, as in the rest of ``collegium status``."""


def _line(label: str, text: str) -> str:
    return f"{label:<{LABEL_WIDTH}}{text}"


def format_epoch_status(summary: Mapping[str, Any] | None) -> list[str]:
    """Return the status lines of the epoch summary (``/health``'s ``epochs``).

    Disagreement is spelled out: one ``DISAGREE`` line per node whose attested root differs.
    """
    if not summary or not summary.get("enabled"):
        return [_line("assignment", "epoch service disabled")]
    if summary.get("epoch") is None:
        why = summary.get("last_error") or summary.get("waiting") or "no epoch yet"
        return [_line("assignment", f"starting ({why})")]
    lines = []
    root = summary.get("root")
    if root is None:
        lines.append(_line("assignment", f"NONE: {summary.get('error')}"))
    else:
        slots = ", ".join(
            s["role"] + (f"[{s['subsystem']}]" if s.get("subsystem") else "") + f"#{s['rank']}"
            for s in summary.get("my_slots", [])
        )
        lines.append(
            _line("assignment", f"root {root}  source block {summary.get('source_block')}")
        )
        lines.append(_line("my slots", slots or "none (black zone for every role)"))
    agree = len(summary.get("agree", []))
    disagree = summary.get("disagree", [])
    missing = len(summary.get("missing", []))
    lines.append(
        _line(
            "attested",
            f"{agree} agree, {len(disagree)} disagree, {missing} not yet"
            + ("" if summary.get("attested") else "  (this node: not yet)"),
        )
    )
    lines.extend(_line("DISAGREE", str(node)) for node in disagree)
    lines.extend(_line("not live", f"{node} (left out)") for node in summary.get("left_out", []))
    if summary.get("kept_all"):
        lines.append(_line("not live", "no node was live at the boundary: all kept"))
    if summary.get("unserved"):
        lines.append(_line("unserved", ", ".join(summary["unserved"])))
    lines.extend(_line("adjusted", note) for note in summary.get("adjustments", []))
    if summary.get("last_error"):
        lines.append(_line("epoch error", str(summary["last_error"])))
    return lines
