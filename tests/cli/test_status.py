"""``collegium status``'s line formatting (the command itself runs against real nodes in
tests/replication/test_sync.py)."""

from __future__ import annotations

from node.cli.main import format_progress


def test_progress_line_shows_a_bar_while_syncing() -> None:
    assert format_progress({"rounds": 0}) == "sync not run yet"
    line = format_progress({"rounds": 1, "have": 3, "want": 12, "syncing": True}, width=12)
    assert line == "[###---------] 3/12 roots (syncing)"
    assert format_progress({"rounds": 2, "have": 5, "want": 5, "complete": True}).startswith(
        "5/5 roots complete"
    )
