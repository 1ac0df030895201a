"""GroupCommit: concurrent items share a commit, each gets its own result or error."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
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


def test_items_handed_in_later_share_groups_and_get_their_own_results() -> None:
    """``submit_later`` items are led by the committer threads, queue behind a commit like
    any other, and each callback gets its own result, from a thread of the group commit."""
    release = threading.Event()
    groups: list[list[int]] = []

    def commit(group: list[int]) -> list[int | ValueError]:
        groups.append(group)
        if group == [0]:
            release.wait(10)
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in group]

    intake: GroupCommit[int, int | ValueError] = GroupCommit(commit)
    answers: dict[int, tuple[object, object, str]] = {}
    all_done = threading.Event()

    def done_for(i: int) -> Callable[[object, BaseException | None], None]:
        def done(result: object, error: BaseException | None) -> None:
            answers[i] = (result, error, threading.current_thread().name)
            if len(answers) == 6:
                all_done.set()

        return done

    intake.submit_later(0, done_for(0))
    while not groups:
        time.sleep(0.001)
    for i in range(1, 6):
        intake.submit_later(i, done_for(i))
    release.set()
    assert all_done.wait(10)
    assert [len(g) for g in groups] == [1, 5]
    assert {i: a[0] if isinstance(a[0], int) else str(a[0]) for i, a in answers.items()} == {
        0: 0, 1: "odd 1", 2: 20, 3: "odd 3", 4: 40, 5: "odd 5",
    }  # fmt: skip
    assert all(a[1] is None and a[2] == "group-commit" for a in answers.values())


def test_a_failed_commit_reaches_every_later_callback_of_its_group() -> None:
    def commit(group: list[int]) -> list[int]:
        raise RuntimeError("database gone")

    intake: GroupCommit[int, int] = GroupCommit(commit)
    errors: list[BaseException | None] = []
    got = threading.Event()

    def done(result: int | None, error: BaseException | None) -> None:
        errors.append(error)
        got.set()

    intake.submit_later(1, done)
    assert got.wait(10)
    assert isinstance(errors[0], RuntimeError)
    assert not intake._busy  # the next group may commit


def test_sync_and_later_items_mix_in_one_group() -> None:
    release = threading.Event()
    groups: list[list[int]] = []

    def commit(group: list[int]) -> list[int]:
        groups.append(group)
        if group == [0]:
            release.wait(10)
        return group

    intake: GroupCommit[int, int] = GroupCommit(commit)
    later: list[int | None] = []
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(intake.submit, 0)
        while not groups:
            time.sleep(0.001)
        intake.submit_later(1, lambda r, e: later.append(r))
        second = pool.submit(intake.submit, 2)
        while len(intake._queue) < 2:
            time.sleep(0.001)
        release.set()
        assert first.result() == 0 and second.result() == 2
    deadline = time.monotonic() + 10
    while not later and time.monotonic() < deadline:
        time.sleep(0.001)
    assert later == [1] and sorted(len(g) for g in groups) == [1, 2]
