"""The IPFS gateway router on a small app with a real embedded store, over real HTTP."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from node.api.routes import gateway
from node.storage import EmbeddedStore
from tests.support.serve import serve_app

IMMUTABLE = "public, max-age=29030400, immutable"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> EmbeddedStore:
    return EmbeddedStore(tmp_path_factory.mktemp("gateway") / "ipfs")


@pytest.fixture(scope="module")
def client(store: EmbeddedStore) -> Iterator[httpx.Client]:
    app = FastAPI()
    app.include_router(gateway.router)
    app.state.store = store
    with serve_app(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http


@pytest.fixture(scope="module")
def site(store: EmbeddedStore, tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("site") / "site"
    (root / "docs" / "nested").mkdir(parents=True)
    (root / "docs" / "readme.md").write_text("# hi\n")
    (root / "docs" / "nested" / "blob").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    (root / "docs" / "plain").write_text("just text\n")
    (root / "app").mkdir()
    (root / "app" / "index.html").write_text("<!doctype html><p>app</p>")
    return store.add_path(root)


def test_file_headers_and_body(client: httpx.Client, store: EmbeddedStore) -> None:
    cid = store.add_bytes(b"Hello Worlds!\n", cid_version=0)
    response = client.get(f"/ipfs/{cid}")
    assert response.status_code == 200 and response.content == b"Hello Worlds!\n"
    assert response.headers["etag"] == f'"{cid}"'
    assert response.headers["cache-control"] == IMMUTABLE
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert client.get(f"/ipfs/{cid}", headers={"If-None-Match": f'"{cid}"'}).status_code == 304
    head = client.head(f"/ipfs/{cid}")
    assert (
        head.status_code == 200 and head.content == b"" and head.headers["content-length"] == "14"
    )


def test_paths_content_types_and_index(client: httpx.Client, site: str) -> None:
    readme = client.get(f"/ipfs/{site}/docs/readme.md")
    assert readme.content == b"# hi\n" and readme.headers["content-type"].startswith(
        "text/markdown"
    )
    blob = client.get(f"/ipfs/{site}/docs/nested/blob")
    assert blob.headers["content-type"] == "image/png"
    assert client.get(f"/ipfs/{site}/docs/plain").headers["content-type"].startswith("text/plain")
    app = client.get(f"/ipfs/{site}/app/")
    assert app.text == "<!doctype html><p>app</p>"
    assert app.headers["content-type"].startswith("text/html")
    listing = client.get(f"/ipfs/{site}/docs")
    assert listing.status_code == 200 and listing.headers["content-type"].startswith("text/html")
    assert "readme.md" in listing.text and f"/ipfs/{site}/docs/nested/" in listing.text


def test_ranges(client: httpx.Client, store: EmbeddedStore) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB, four chunks
    cid = store.add_bytes(data)
    part = client.get(f"/ipfs/{cid}", headers={"Range": "bytes=262140-262149"})
    assert part.status_code == 206 and part.content == data[262140:262150]
    assert part.headers["content-range"] == f"bytes 262140-262149/{len(data)}"
    tail = client.get(f"/ipfs/{cid}", headers={"Range": "bytes=-5"})
    assert tail.status_code == 206 and tail.content == data[-5:]
    bad = client.get(f"/ipfs/{cid}", headers={"Range": f"bytes={len(data)}-"})
    assert bad.status_code == 416 and bad.headers["content-range"] == f"bytes */{len(data)}"
    whole = client.get(f"/ipfs/{cid}")
    assert hashlib.sha256(whole.content).digest() == hashlib.sha256(data).digest()


def test_trustless_raw_blocks(client: httpx.Client, store: EmbeddedStore, site: str) -> None:
    cid = store.add_bytes(b"Hello Worlds!\n", cid_version=0)
    for response in (
        client.get(f"/ipfs/{cid}", params={"format": "raw"}),
        client.get(f"/ipfs/{cid}", headers={"Accept": "application/vnd.ipld.raw"}),
    ):
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/vnd.ipld.raw"
        assert response.content == store.get_block(cid)
        assert response.headers["etag"] == f'"{cid}.raw"'
    dir_block = client.get(f"/ipfs/{site}", params={"format": "raw"})
    assert dir_block.content == store.get_block(site)
    assert client.get(f"/ipfs/{cid}", params={"format": "tar"}).status_code == 400
    car = client.get(f"/ipfs/{cid}", params={"format": "car"})  # tests/storage/test_car_sync.py
    assert car.status_code == 200 and car.headers["content-type"].startswith(
        "application/vnd.ipld.car"
    )


def test_errors_are_problem_json(client: httpx.Client, site: str) -> None:
    unknown = "bafkreie5wbtqpxtcfzjnbuz5s2iumuf3lfpnjiv7gs2dqtqrubqqr2nnwu"
    cases = {
        "/ipfs/not-a-cid": 400,
        f"/ipfs/{unknown}": 404,
        f"/ipfs/{site}/missing.txt": 404,
        f"/ipfs/{site}/docs/%2E%2E/app/index.html": 400,
    }
    for url, status in cases.items():
        response = client.get(url)
        assert response.status_code == status, url
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert set(body) == {"type", "title", "status", "detail"} and body["status"] == status
