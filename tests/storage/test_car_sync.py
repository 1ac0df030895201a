"""Peer sync by CAR over real HTTP on 127.0.0.1, between two real embedded stores.

An honest peer is the real gateway router over a real store; a malicious peer is a real HTTP
server that answers ``?format=car`` with a crafted stream (and raw blocks honestly). Every
crafted CAR must be refused with nothing wrong stored: what verified before the fault stays,
the rest comes block by block or from another peer.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

from node.api.routes import gateway
from node.errors import NotFoundInStore
from node.storage import EmbeddedStore
from node.storage.car import CAR_MEDIA_TYPE, encode_header, encode_section
from node.storage.cargateway import CAR_CONTENT_TYPE
from node.storage.cids import compute_cid_bytes, format_cid_bytes, parse_cid
from node.storage.dagpb import PBLink, compute_varint, encode_pb_node
from node.storage.errors import StoreFull
from node.storage.fetch import BlockFetcher
from node.storage.reader import get_child_cids
from tests.support.serve import serve_app

FILE_BYTES = 4 * 256 * 1024 + 1000  # five raw leaves under one dag-pb root


@dataclass
class Served:
    url: str
    requests: list[str] = field(default_factory=list)


@dataclass
class Evil:
    """What the malicious peer answers to ``?format=car`` (``None``: a 400, as a gateway that
    does not speak CAR)."""

    car: bytes | None = None
    drip_after: int = 0  # > 0: send that many bytes of ``car``, then one byte every 0.2 s


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> EmbeddedStore:
    return EmbeddedStore(tmp_path_factory.mktemp("car-source") / "ipfs")


@pytest.fixture(scope="module")
def root(source: EmbeddedStore) -> str:
    return source.add_bytes(os.urandom(FILE_BYTES))


@pytest.fixture(scope="module")
def honest(source: EmbeddedStore) -> Iterator[Served]:
    app = FastAPI()
    app.include_router(gateway.router)
    app.state.store = source
    served = Served("")

    @app.middleware("http")
    async def count(request: Request, call_next):  # type: ignore[no-untyped-def]
        served.requests.append(str(request.url.query))
        return await call_next(request)

    with serve_app(app) as url:
        served.url = url
        yield served


def drip(car: bytes, first: int) -> Iterator[bytes]:
    yield car[:first]
    for i in range(first, min(len(car), first + 50)):
        time.sleep(0.2)
        yield car[i : i + 1]


@pytest.fixture(scope="module")
def evil_peer(source: EmbeddedStore) -> Iterator[tuple[Served, Evil]]:
    app = FastAPI()
    evil = Evil()
    served = Served("")

    @app.get("/ipfs/{cid}")
    def answer(cid: str, request: Request) -> Response:
        served.requests.append(str(request.url.query))
        if request.query_params.get("format") == "car":
            if evil.car is None:
                return Response(b'{"type": "unsupported-format"}', 400)
            if evil.drip_after:
                return StreamingResponse(
                    drip(evil.car, evil.drip_after), 200, None, CAR_CONTENT_TYPE
                )
            return Response(evil.car, media_type=CAR_CONTENT_TYPE)
        return Response(source.get_block(cid), media_type="application/vnd.ipld.raw")

    with serve_app(app) as url:
        served.url = url
        yield served, evil


@pytest.fixture
def evil(evil_peer: tuple[Served, Evil]) -> Iterator[tuple[Served, Evil]]:
    served, answer = evil_peer
    served.requests.clear()
    answer.car = None
    answer.drip_after = 0
    yield served, answer


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[EmbeddedStore]:
    store = EmbeddedStore(tmp_path / "ipfs")
    yield store
    store.close()


def fetcher_for(sink: EmbeddedStore, *peers: str) -> BlockFetcher:
    fetcher = BlockFetcher(sink, timeout=5)
    fetcher.set_peers(list(peers))
    return fetcher


def dag(source: EmbeddedStore, root: str) -> list[tuple[str, bytes]]:
    """Return the (CID, block) of the root and its leaves, in depth-first order."""
    block = source.get_block(root)
    leaves = [str(c) for c in get_child_cids(parse_cid(root), block)]
    return [(root, block)] + [(c, source.get_block(c)) for c in leaves]


def car_of(sections: list[tuple[str, bytes]], roots: list[str]) -> bytes:
    head = encode_header([parse_cid(r) for r in roots])
    return head + b"".join(encode_section(parse_cid(c), d) for c, d in sections)


def stored(sink: EmbeddedStore, cid: str) -> bool:
    try:
        sink.get_block(cid)  # re-hashed: a wrong copy would raise BlockCorrupted
    except NotFoundInStore:
        return False
    return True


# -- the honest gateway ----------------------------------------------------------------------


def test_a_dag_comes_in_one_car_request(
    honest: Served, source: EmbeddedStore, root: str, sink: EmbeddedStore
) -> None:
    honest.requests.clear()
    fetcher = fetcher_for(sink, honest.url)

    assert fetcher.sync_dag(root)

    assert len(honest.requests) == 1 and "format=car" in honest.requests[0]
    assert sink.cat(root) == source.cat(root)
    assert fetcher.stats().blocks_fetched == len(dag(source, root))
    fetcher.close()


def test_the_per_block_path_still_works(
    honest: Served, source: EmbeddedStore, root: str, sink: EmbeddedStore
) -> None:
    honest.requests.clear()
    fetcher = fetcher_for(sink, honest.url)
    fetcher.use_car = False

    assert fetcher.sync_dag(root)

    assert len(honest.requests) == len(dag(source, root))
    assert all("format=raw" in q for q in honest.requests)
    assert sink.cat(root) == source.cat(root)
    fetcher.close()


def test_gateway_car_answer(honest: Served, source: EmbeddedStore, root: str) -> None:
    blocks = dag(source, root)
    answer = httpx.get(f"{honest.url}/ipfs/{root}", headers={"Accept": CAR_MEDIA_TYPE})

    assert answer.status_code == 200
    assert answer.headers["content-type"] == CAR_CONTENT_TYPE
    assert answer.headers["content-disposition"] == f'attachment; filename="{root}.car"'
    assert answer.headers["cache-control"] == "no-cache"  # a CAR may end early: not immutable
    assert answer.content == car_of(blocks, [root])  # depth first, each block once

    one = httpx.get(f"{honest.url}/ipfs/{root}", params={"format": "car", "dag-scope": "block"})
    assert one.content == car_of(blocks[:1], [root])
    assert one.headers["etag"] != answer.headers["etag"]
    head = httpx.head(f"{honest.url}/ipfs/{root}", params={"format": "car"})
    assert head.status_code == 200 and head.content == b""


@pytest.mark.parametrize(
    ("path", "params", "status", "kind"),
    [
        ("", {"dag-scope": "entity"}, 400, "unsupported-car-scope"),
        ("", {"entity-bytes": "0:10"}, 400, "unsupported-car-scope"),
        ("", {"car-version": "2"}, 400, "unsupported-car-parameter"),
        ("", {"car-order": "bfs"}, 400, "unsupported-car-parameter"),
        ("/a/b", {}, 400, "unsupported-car-path"),
    ],
)
def test_gateway_refuses_car_requests_it_does_not_serve(
    honest: Served, root: str, path: str, params: dict[str, str], status: int, kind: str
) -> None:
    answer = httpx.get(f"{honest.url}/ipfs/{root}{path}", params={"format": "car", **params})

    assert answer.status_code == status
    assert answer.json()["type"].endswith(kind)


def test_gateway_car_of_an_unknown_or_invalid_cid(honest: Served) -> None:
    unknown = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    assert httpx.get(f"{honest.url}/ipfs/{unknown}?format=car").status_code == 404
    assert httpx.get(f"{honest.url}/ipfs/not-a-cid?format=car").status_code == 400


# -- a malicious peer ------------------------------------------------------------------------


def test_a_block_with_the_wrong_hash_is_refused(
    evil: tuple[Served, Evil], honest: Served, source: EmbeddedStore, root: str, sink: EmbeddedStore
) -> None:
    peer, answer = evil
    blocks = dag(source, root)
    leaf, data = blocks[2]
    answer.car = car_of(
        [*blocks[:2], (leaf, data[:-1] + bytes([data[-1] ^ 1])), *blocks[3:]], [root]
    )
    fetcher = fetcher_for(sink, peer.url)

    assert not fetcher.sync_dag(root)  # the liar is backing off: nobody else to ask

    assert fetcher.peer_states()[peer.url].bad_blocks == 1
    assert stored(sink, blocks[0][0]) and stored(sink, blocks[1][0])  # verified before the lie
    assert not stored(sink, leaf)
    assert not any(stored(sink, c) for c, _ in blocks[3:])  # nothing after it either
    fetcher.set_peers([peer.url, honest.url])
    fetcher.close()

    again = fetcher_for(sink, peer.url, honest.url)  # a fresh walk: the honest peer completes it
    assert again.sync_dag(root)
    assert sink.cat(root) == source.cat(root)
    again.close()


def test_a_block_not_linked_from_the_root_is_refused(
    evil: tuple[Served, Evil], source: EmbeddedStore, root: str, sink: EmbeddedStore
) -> None:
    peer, answer = evil
    blocks = dag(source, root)
    intruder = source.add_bytes(b"not part of this DAG", pin=False)
    answer.car = car_of([blocks[0], (intruder, source.get_block(intruder)), *blocks[1:]], [root])
    fetcher = fetcher_for(sink, peer.url)

    assert not fetcher.sync_dag(root)

    assert fetcher.peer_states()[peer.url].bad_blocks == 1
    assert not stored(sink, intruder)
    assert stored(sink, root)
    fetcher.close()


def test_a_car_of_another_root_is_refused(
    evil: tuple[Served, Evil], source: EmbeddedStore, root: str, sink: EmbeddedStore
) -> None:
    peer, answer = evil
    other = source.add_bytes(b"another file", pin=False)
    answer.car = car_of([(other, source.get_block(other))], [other])
    fetcher = fetcher_for(sink, peer.url)

    assert not fetcher.sync_dag(root)

    assert fetcher.peer_states()[peer.url].bad_blocks == 1
    assert not stored(sink, other) and not stored(sink, root)
    fetcher.close()


def test_a_huge_section_length_is_refused(
    evil: tuple[Served, Evil], root: str, sink: EmbeddedStore
) -> None:
    peer, answer = evil
    answer.car = encode_header([parse_cid(root)]) + compute_varint(2**62) + b"\x00" * 64
    fetcher = fetcher_for(sink, peer.url)

    assert not fetcher.sync_dag(root)

    assert fetcher.peer_states()[peer.url].bad_blocks == 1
    assert not stored(sink, root)
    fetcher.close()


def test_a_cut_car_keeps_what_verified_and_the_rest_comes_block_by_block(
    evil: tuple[Served, Evil], source: EmbeddedStore, root: str, sink: EmbeddedStore
) -> None:
    peer, answer = evil
    blocks = dag(source, root)
    whole = car_of(blocks, [root])
    cut = len(car_of(blocks[:3], [root])) + 1000  # inside the fourth section
    answer.car = whole[:cut]
    fetcher = fetcher_for(sink, peer.url)

    assert fetcher.sync_dag(root)

    state = fetcher.peer_states()[peer.url]
    assert state.bad_blocks == 0 and state.car_failures == 1
    raw = [q for q in peer.requests if "format=raw" in q]
    assert len(raw) == len(blocks) - 3  # only what the CAR did not bring
    assert sink.cat(root) == source.cat(root)
    fetcher.close()


def test_a_peer_without_car_is_asked_block_by_block(
    evil: tuple[Served, Evil], source: EmbeddedStore, root: str, sink: EmbeddedStore
) -> None:
    peer, answer = evil
    answer.car = None  # 400, as a gateway that does not know format=car
    fetcher = fetcher_for(sink, peer.url)

    assert fetcher.sync_dag(root)

    state = fetcher.peer_states()[peer.url]
    assert state.bad_blocks == 0 and state.car_failures == 1
    assert sink.cat(root) == source.cat(root)
    fetcher.close()


def test_a_dag_declaring_more_than_a_car_carries_comes_block_by_block(
    honest: Served, source: EmbeddedStore, sink: EmbeddedStore
) -> None:
    leaf = source.add_bytes(b"a small leaf", pin=False)
    huge = encode_pb_node([PBLink(bytes(parse_cid(leaf)), "leaf", 2**40)], None)
    root = format_cid_bytes(compute_cid_bytes(huge, codec="dag-pb", version=1))
    source.put_block(root, huge)

    answer = httpx.get(f"{honest.url}/ipfs/{root}", params={"format": "car"})
    assert answer.status_code == 400 and answer.json()["type"].endswith("car-too-large")

    honest.requests.clear()
    fetcher = fetcher_for(sink, honest.url)
    assert fetcher.sync_dag(root)  # the root and its leaf, each on its own
    assert [q.split("&")[0] for q in honest.requests] == ["format=car", "format=raw", "format=raw"]
    assert fetcher.peer_states()[honest.url].car_failures == 0  # refused, not failed
    fetcher.close()


def test_a_peer_that_drips_its_car_is_cut_off(
    evil: tuple[Served, Evil], source: EmbeddedStore, root: str, sink: EmbeddedStore
) -> None:
    peer, answer = evil
    blocks = dag(source, root)
    answer.car = car_of(blocks, [root])
    answer.drip_after = len(car_of(blocks[:2], [root]))  # the root and a leaf, then a trickle
    fetcher = BlockFetcher(sink, timeout=0.4)  # each block within 3 x 0.4 s of the one before
    fetcher.set_peers([peer.url])
    started = time.monotonic()

    assert fetcher.sync_dag(root)  # the rest block by block

    assert time.monotonic() - started < 8  # cut off, not read to its end (10 s of trickle)
    state = fetcher.peer_states()[peer.url]
    assert state.car_failures == 1 and state.bad_blocks == 0
    assert len([q for q in peer.requests if "format=raw" in q]) == len(blocks) - 2
    assert sink.cat(root) == source.cat(root)
    fetcher.close()


def test_a_peer_lacking_part_of_the_dag_sends_what_it_has_and_the_rest_comes_elsewhere(
    honest: Served, source: EmbeddedStore, root: str, sink: EmbeddedStore, tmp_path: Path
) -> None:
    blocks = dag(source, root)
    sparse = EmbeddedStore(tmp_path / "sparse")
    sparse.put_blocks(blocks[:2])  # the root and the first leaf only
    app = FastAPI()
    app.include_router(gateway.router)
    app.state.store = sparse
    with serve_app(app) as url:
        answer = httpx.get(f"{url}/ipfs/{root}", params={"format": "car"})
        assert answer.status_code == 200  # the root is here: the stream starts, then ends early
        assert answer.content == car_of(blocks[:2], [root])

        honest.requests.clear()
        fetcher = fetcher_for(sink, url, honest.url)
        assert fetcher.sync_dag(root)

        assert fetcher.peer_states()[url].bad_blocks == 0  # incomplete is not a lie
        assert len(honest.requests) == len(blocks) - 2  # the missing leaves, block by block
        assert sink.cat(root) == source.cat(root)
        fetcher.close()


def test_a_node_with_a_link_that_is_no_cid_breaks_neither_side(
    honest: Served, source: EmbeddedStore, sink: EmbeddedStore
) -> None:
    odd = encode_pb_node([PBLink(b"junk", "bad", 5)], None)
    root = format_cid_bytes(compute_cid_bytes(odd, codec="dag-pb", version=1))
    source.put_block(root, odd)

    answer = httpx.get(f"{honest.url}/ipfs/{root}", params={"format": "car"})
    assert answer.status_code == 200 and answer.content == car_of([(root, odd)], [root])

    fetcher = fetcher_for(sink, honest.url)
    assert fetcher.sync_dag(root)  # read as a leaf, as the store's own walks read it
    assert sink.get_block(root) == odd
    fetcher.close()


def test_a_full_store_stops_a_car_with_store_full_and_stores_none_of_the_batch(
    honest: Served, source: EmbeddedStore, tmp_path: Path
) -> None:
    big = source.add_bytes(os.urandom(4 * 1024 * 1024), pin=False)  # past STREAM_AFTER
    small = EmbeddedStore(tmp_path / "small", quota_bytes=1536 * 1024)
    fetcher = fetcher_for(small, honest.url)

    with pytest.raises(StoreFull):
        fetcher.sync_dag(big)  # the background writer's error reaches the caller, no hang

    # the batch that did not fit (the first 8 MiB: all of it) is stored not at all
    assert small.block_keys() == [] and small.used_bytes() == 0
    assert list((small.root / "tmp").iterdir()) == []  # no half-written block left
    fetcher.close()


def test_a_car_ends_at_the_block_cap_and_the_rest_comes_block_by_block(
    honest: Served,
    source: EmbeddedStore,
    root: str,
    sink: EmbeddedStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from node.storage import cargateway

    monkeypatch.setattr(cargateway, "MAX_CAR_BLOCKS", 3)
    blocks = dag(source, root)
    answer = httpx.get(f"{honest.url}/ipfs/{root}", params={"format": "car"})
    assert answer.content == car_of(blocks[:3], [root])  # cut at the cap, well formed

    honest.requests.clear()
    fetcher = fetcher_for(sink, honest.url)
    assert fetcher.sync_dag(root)
    assert len([q for q in honest.requests if "format=raw" in q]) == len(blocks) - 3
    assert sink.cat(root) == source.cat(root)
    fetcher.close()
