"""``/s/<subsystem>/`` goes to the hosts of that subsystem's ``fe_subsystem`` role this epoch:
two real nodes on one anvil chain, the first not offering ``fe_subsystem`` at all."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Final

import httpx
import pytest

from node.frontend import publish_subsystem
from node.router.paths import compute_request_slot
from tests.chain.conftest import ChainUnderTest, anvil_chain  # noqa: F401 - fixture
from tests.frontend.test_publish import SOURCE_HEADER, tiny_bundle
from tests.support.node import in_process_node

EPOCH_PERIOD: Final = 40
EPOCH_POLL_SECONDS: Final = 0.2
AGREE_TIMEOUT: Final = 60.0
CAPACITY: Final = 8
NO_FE_SUBSYSTEM: Final = ("fe_system", "be_system", "be_subsystem")
SERVED_BY: Final = "x-collegium-served-by"


@pytest.mark.parametrize(
    ("path", "slot"),
    [
        ("/s/shop/", ("fe_subsystem", "shop")),
        ("/s/shop", ("fe_subsystem", "shop")),
        ("/s/shop/assets/app.js", ("fe_subsystem", "shop")),
        ("/s/a%20b/", ("fe_subsystem", "a b")),
        ("/s/", None),
        ("/shop/", None),
    ],
)
def test_subsystem_frontend_paths_belong_to_fe_subsystem(
    path: str, slot: tuple[str, str | None] | None
) -> None:
    assert compute_request_slot(path) == slot


def wait_epoch(urls: list[str], epoch: int) -> list[dict[str, Any]]:
    """Return each node's ``/api/v1/epochs/current`` once all are at ``epoch`` with one root."""
    deadline = time.monotonic() + AGREE_TIMEOUT
    views: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        views = [httpx.get(u + "/api/v1/epochs/current", timeout=10).json() for u in urls]
        roots = {v.get("root") for v in views}
        if all(v.get("epoch") == epoch for v in views) and len(roots) == 1 and None not in roots:
            return views
        time.sleep(0.2)
    raise AssertionError(f"the nodes did not agree on epoch {epoch}: {views}")


@pytest.mark.anvil
def test_s_name_is_proxied_to_the_fe_subsystem_host_with_fallback(
    anvil_chain: ChainUnderTest,  # noqa: F811
    tmp_path: Path,
) -> None:
    url = str(anvil_chain.w3.provider.endpoint_uri)  # type: ignore[attr-defined]
    common = {"chain_url": url, "epoch_period": EPOCH_PERIOD,
              "epoch_poll_seconds": EPOCH_POLL_SECONDS}  # fmt: skip
    with in_process_node(  # a never syncs the bundle: it must proxy /s/main/ to b
        tmp_path / "a", init={"roles": NO_FE_SUBSYSTEM, "capacity": CAPACITY}, sync=False, **common
    ) as a:
        registry = a.node.registry  # a's wallet created "main": it is its admin
        with in_process_node(
            tmp_path / "b", init={"registry": registry.address, "capacity": CAPACITY}, **common
        ) as b:
            host = b.node.address.lower()
            registry.create_subsystem("plain")
            for name in ("main", "plain"):
                registry.add_participant(name, b.node.address)
            bundle = tiny_bundle(tmp_path, "main")
            cid = publish_subsystem(b.node.store, registry, "main", bundle)
            target = registry.current_epoch() + 1
            anvil_chain.mine_to(registry.epoch_start_block(target))
            views = wait_epoch([a.url, b.url], target)
            fe = {s["subsystem"]: s["hosts"] for s in views[0]["slots"]
                  if s["role"] == "fe_subsystem"}  # fmt: skip
            assert {name: [h.lower() for h in hosts] for name, hosts in fe.items()} == {
                "main": [host],
                "plain": [host],
            }
            assert not a.node.store.has(cid)  # only the host can serve the bundle

            for node in (a, b):  # a proxies to b; b serves its own
                served = httpx.get(node.url + "/s/main/", timeout=10)
                assert served.status_code == 200, served.text
                assert served.headers[SERVED_BY].lower() == host
                assert served.headers["x-collegium-epoch"] == str(target)
                assert served.content == (bundle / "index.html").read_bytes()
                assert served.headers[SOURCE_HEADER] == f"ipfs {cid} subsystem main"
                script = httpx.get(node.url + "/s/main/js/app.js", timeout=10)
                assert script.content == (bundle / "js" / "app.js").read_bytes()

            fallback = httpx.get(a.url + "/s/plain/", timeout=10)
            assert fallback.status_code == 200
            assert fallback.headers[SERVED_BY].lower() == host
            assert fallback.headers[SOURCE_HEADER].startswith("system fallback (none published)")
            assert fallback.content == httpx.get(b.url + "/", timeout=10).content
            root = httpx.get(a.url + "/", timeout=10)  # not a subsystem path: served locally
            assert root.headers[SERVED_BY].lower() == a.node.address.lower()
