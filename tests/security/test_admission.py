"""Node admission and peer requests, from outside (issue 16): a node registered on-chain with a
malicious endpoint is never fetched. Real nodes (embedded chain and store) over HTTP on
127.0.0.1, real registry transactions, and a recorder standing in for an "internal admin" URL."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from node.chain.registry import Registry, RegistryRejected, compute_roles_mask
from node.runtime import ALL_ROLES
from node.storage.cids import compute_cid_bytes, format_cid_bytes
from tests.auth.siwe_helpers import bearer_login
from tests.support.node import InProcessNode, in_process_node

FUNDING_WEI = 10**20


class Recorder:
    """A local HTTP server that answers 200 to everything and records every request."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                hits.append(self.path)
                body = b'{"public_key": "00", "status": "ok"}'
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder()
    try:
        yield rec
    finally:
        rec.close()


def login(node: InProcessNode, wallet: LocalAccount) -> dict[str, str]:
    return bearer_login(node.url, wallet)


def attacker_of(node: InProcessNode) -> Registry:
    """Return the registry facade of a new, funded outsider on ``node``'s chain."""
    account: LocalAccount = Account.create()
    node.node.chain.fund(account.address, FUNDING_WEI)
    return Registry(node.node.chain.w3, node.node.record.registry, account)


def provoke_peer_requests(node: InProcessNode, attacker: Registry) -> None:
    """Make ``node`` want things only peers can give: a key (private record write with a
    participant whose key it never saw) and a block (an anchor naming a CID it lacks)."""
    member: LocalAccount = Account.create()
    registry = node.node.registry
    registry.add_participant("main", member.address)
    registry.add_participant("main", Account.create().address)  # never logged in anywhere
    url = f"{node.url}/api/v1/subsystems/main/data/records"
    response = httpx.post(url, headers=login(node, member), json={"key": "k", "value": "v"},
                          timeout=30)  # fmt: skip
    assert response.status_code == 201, response.text

    cid = format_cid_bytes(compute_cid_bytes(os.urandom(64), codec="raw", version=1))
    attacker.anchor("main", os.urandom(32), 1, 1, cid)
    node.node.syncer.run_once()


MALFORMED = (
    "http://127.0.0.1:{port}/internal/admin?token=x#",
    "http://127.0.0.1:{port}/internal/admin?token=x",
    "http://127.0.0.1:{port}#",
    "http://admin:secret@127.0.0.1:{port}",
    "http://127.0.0.1:{port} /x",
    "http://127.0.0.1:{port}\\@evil.invalid",
    "gopher://127.0.0.1:{port}",
    "127.0.0.1:{port}",
    "http://",
    "http://" + "a" * 250,
)


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessNode]:
    """A node not in dev mode (the embedded chain would default to it)."""
    data_dir = tmp_path_factory.mktemp("strict") / "node"
    with in_process_node(data_dir, epoch_service=False, sync_interval=3600,
                         allow_private_peers=False) as node:  # fmt: skip
        yield node


def test_malformed_endpoints_are_refused_on_chain(
    strict: InProcessNode, recorder: Recorder
) -> None:
    attacker = attacker_of(strict)
    mask = compute_roles_mask(ALL_ROLES)
    for template in MALFORMED:
        endpoint = template.format(port=recorder.port)
        with pytest.raises(RegistryRejected) as refused:
            attacker.register_node(endpoint, 4, mask, "main")
        assert refused.value.error_name in ("MalformedEndpoint", "InvalidEndpoint"), endpoint
    assert not strict.node.registry.is_node(attacker.account.address)

    attacker.register_node(f"http://127.0.0.1:{recorder.port}", 4, mask, "main")
    with pytest.raises(RegistryRejected) as update:  # an update is checked the same way
        attacker.update_node(f"http://127.0.0.1:{recorder.port}/?x#", 4, mask, "main")
    assert update.value.error_name == "MalformedEndpoint"
    assert strict.node.registry.get_node(attacker.account.address).endpoint == (
        f"http://127.0.0.1:{recorder.port}"
    )
    attacker.leave_node()
    assert recorder.hits == []


def test_loopback_peer_is_never_fetched_outside_dev_mode(
    strict: InProcessNode, recorder: Recorder
) -> None:
    attacker = attacker_of(strict)
    # well-formed, so the chain takes it (anyone may register); a node not in dev mode refuses
    # to send it anything
    attacker.register_node(f"http://127.0.0.1:{recorder.port}", 4, 15, "main")
    provoke_peer_requests(strict, attacker)
    nodes = httpx.get(strict.url + "/api/v1/nodes", timeout=10)
    assert nodes.status_code == 200
    assert attacker.account.address in nodes.text  # listed, never asked
    assert recorder.hits == []


def test_dev_mode_still_uses_loopback_peers(tmp_path: Path, recorder: Recorder) -> None:
    """The embedded chain is dev mode by default: loopback peers (every local multi-node test
    and devnet) are asked, at fixed paths only."""
    with in_process_node(tmp_path / "dev", epoch_service=False, sync_interval=3600) as node:
        attacker = attacker_of(node)
        attacker.register_node(f"http://127.0.0.1:{recorder.port}", 4, 15, "main")
        provoke_peer_requests(node, attacker)

    assert recorder.hits
    assert all(p.startswith(("/api/v1/keys/0x", "/ipfs/", "/livez")) for p in recorder.hits)
