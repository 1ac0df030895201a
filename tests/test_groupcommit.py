"""GroupCommit: concurrent items share a commit, each gets its own result or error."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from node.groupcommit import GroupCommit


def test_a_lone_item_is_committed_at_once_in_a_group_of_one() -> None:
    groups: list[list[int]] = []
    intake: GroupCommit[int, int] = GroupCommit(lambda g: (groups.append(g), g)[1])
    assert intake.submit(5) == 5 and intake.submit(6) == 6
    assert groups == [[5], [6]]


def test_items_queued_behind_a_commit_form_the_next_group_with_their_own_results() -> None:
    release = threading.Event()
    groups: list[list[int]] = []

    def commit(group: list[int]) -> list[int | ValueError]:
        groups.append(group)
        if group == [0]:
            release.wait(10)
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in group]

    intake: GroupCommit[int, int | ValueError] = GroupCommit(commit, max_items=4)
    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(intake.submit, 0)
        while not groups:
            time.sleep(0.001)
        rest = [pool.submit(intake.submit, i) for i in range(1, 7)]
        while len(intake._queue) < 6:
            time.sleep(0.001)
        release.set()
        results = [first.result(), *(f.result() for f in rest)]
    assert [r if isinstance(r, int) else str(r) for r in results] == [
        0, "odd 1", 20, "odd 3", 40, "odd 5", 60,
    ]  # fmt: skip
    assert [len(g) for g in groups] == [1, 4, 2] and intake.largest == 4
    assert sorted(i for g in groups for i in g) == list(range(7))


def test_a_failing_commit_fails_its_whole_group_and_not_the_next() -> None:
    calls = 0

    def commit(group: list[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database gone")
        return group

    intake: GroupCommit[int, int] = GroupCommit(commit)
    with pytest.raises(RuntimeError, match="database gone"):
        intake.submit(1)
    assert intake.submit(2) == 2


def test_the_next_group_commits_while_the_after_step_of_the_previous_runs() -> None:
    in_after = threading.Event()
    release = threading.Event()
    log: list[str] = []

    def commit(group: list[int]) -> list[int]:
        log.append(f"commit {group}")
        return group

    def after(group: list[int], results: list[int]) -> None:
        log.append(f"after {group}")
        if group == [1]:
            in_after.set()
            release.wait(10)

    intake: GroupCommit[int, int] = GroupCommit(commit, after=after)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(intake.submit, 1)
        assert in_after.wait(10)
        assert intake.submit(2) == 2  # committed and answered while group [1] is in ``after``
        assert not first.done()
        release.set()
        assert first.result() == 1
    assert log == ["commit [1]", "after [1]", "commit [2]", "after [2]"]
    assert intake.groups == 2 and intake.items == 2  # no empty group was committed
