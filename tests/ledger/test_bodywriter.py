"""BodyWriter: bodies stored after the answers; readers wait for a pending one; bounded.

The store here is a real embedded content store; the writes are held with an event where a
test needs them in flight."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from node.ledger.bodywriter import BodyWriter
from node.ledger.verifier import compute_leaf_cid
from node.storage.embedded import EmbeddedStore


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedStore:
    return EmbeddedStore(tmp_path / "store")


def bodies(count: int, tag: str = "") -> list[tuple[str, bytes]]:
    out = []
    for i in range(count):
        body = f"body {tag} {i}".encode()
        out.append((compute_leaf_cid(body), body))
    return out


def wait_until(condition: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.001)


def test_put_bodies_are_pending_until_stored_then_in_the_store(store: EmbeddedStore) -> None:
    release = threading.Event()

    def store_many(datas: list[bytes]) -> None:
        release.wait(10)
        store.add_many(datas)

    writer = BodyWriter(store_many)
    items = bodies(3)
    writer.put(items)
    assert writer.pending() == 3
    assert all(writer.is_pending(cid) and not store.has(cid) for cid, _ in items)
    release.set()
    assert writer.flush(10)
    assert writer.pending() == 0 and not writer.is_pending(items[0][0])
    assert all(store.cat(cid) == body for cid, body in items)


def test_a_reader_waits_for_the_write_of_its_body_only(store: EmbeddedStore) -> None:
    release = threading.Event()
    writer = BodyWriter(lambda datas: (release.wait(10), store.add_many(datas))[1])
    (cid, body), *_ = items = bodies(2)
    assert writer.wait_stored("bafkreinotpending", timeout=0)  # never pending: at once
    writer.put(items)
    seen: list[bytes] = []
    reader = threading.Thread(target=lambda: (writer.wait_stored(cid), seen.append(store.cat(cid))))
    reader.start()
    wait_until(lambda: writer.waiting == 1)
    assert not seen
    release.set()
    reader.join(10)
    assert seen == [body]
    assert writer.wait_stored(cid, timeout=0) and not writer.is_pending(cid)


def test_a_failed_write_is_logged_and_its_bodies_stop_being_pending(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(datas: list[bytes]) -> None:
        raise OSError("disk gone")

    writer = BodyWriter(broken)
    items = bodies(2)
    writer.put(items)
    assert writer.flush(10)
    assert writer.failures == 1 and writer.pending() == 0
    assert writer.wait_stored(items[0][0], timeout=0)  # readers are not kept waiting
    assert "the anchorer will" in caplog.text


def test_bodies_queued_during_a_write_go_together_in_the_next(store: EmbeddedStore) -> None:
    release = threading.Event()
    writes: list[int] = []

    def store_many(datas: list[bytes]) -> None:
        writes.append(len(datas))
        release.wait(10)
        store.add_many(datas)

    writer = BodyWriter(store_many)
    writer.put(bodies(1, "a"))
    wait_until(lambda: writes == [1])
    for tag in "bcd":  # three groups arrive while the first write is in flight
        writer.put(bodies(2, tag))
    release.set()
    assert writer.flush(10)
    assert writes == [1, 6]


def test_put_waits_while_max_pending_bodies_wait(store: EmbeddedStore) -> None:
    release = threading.Event()
    writer = BodyWriter(lambda d: (release.wait(10), store.add_many(d))[1], max_pending=2)
    writer.put(bodies(2, "a"))
    done = threading.Event()
    threading.Thread(target=lambda: (writer.put(bodies(1, "b")), done.set())).start()
    assert not done.wait(0.2) and writer.pending() == 2  # bounded: the third body waits
    release.set()
    assert done.wait(10)
    assert writer.flush(10) and writer.pending() == 0


def test_max_pending_must_be_positive() -> None:
    with pytest.raises(ValueError):
        BodyWriter(lambda d: None, max_pending=0)
