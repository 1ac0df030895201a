"""A subsystem's private data survives rotation and the loss of the node that wrote it.

On the shared 5-node devnet (epochs of 4 blocks, so ``be_subsystem`` of ``beta`` moves between
its two eligible hosts, node2 and node3, all the time): the operator (a participant of beta)
writes private records and a private transaction for beta through the router of a node that
does not host beta; each is signed by the wallet into beta's log (a ``PrivateBusinessTransaction``
submitted to the host that sealed it). Then

* every record is listed and opened through every node, and the other eligible host serves them
  too (records written elsewhere);
* the writer is killed for good (``kill -9``, data directory deleted); everything is still listed
  and opened through every live node, and the member opens the sealed objects with the wallet
  key alone from any node's gateway;
* a non-member gets 403, and no byte of plaintext is in the data directories of the nodes that
  are not participants of beta (they host ``be_system`` and others) nor in their gateway answers;
* ``collegium verify`` (ledger and every subsystem log) is clean on every live node.

Runs last among the 5-node tests (conftest.py): the killed node does not come back.
"""

from __future__ import annotations

import secrets
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from typer.testing import CliRunner

from node.cli.main import app
from node.crypto.sealed import read_sealed
from node.devnet import Devnet, DevnetNode
from node.keys.private import decode_record
from node.replication.replica import NAMES_TTL_SECONDS
from tests.devnet.support import health, login, run_verify, wait_anchored, wait_until
from tests.support.node import domain_of, make_submission

SUBSYSTEM = "beta"
RECORDS = 3
MARK = "replica-secret-"  # every plaintext written here starts with it
LIST_TIMEOUT = 90.0
SERVED_BY = "x-collegium-served-by"


class GatewayStore:
    """The ``cat`` a reader needs, over any node's public gateway (no node's help)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def cat(self, cid: str, path: str = "") -> bytes:
        response = httpx.get(f"{self.url}/ipfs/{cid}", timeout=10)
        response.raise_for_status()
        return response.content


def data_url(node: DevnetNode, tail: str) -> str:
    return f"{node.url}/api/v1/subsystems/{SUBSYSTEM}/data/{tail}"


def sign_into_log(host: DevnetNode, wallet: Any, kind: str, sealed: dict[str, Any]) -> str:
    """Sign the sealed object into beta's log at ``host``; return the transaction id."""
    body = make_submission(domain_of(host.url), wallet, subsystem=SUBSYSTEM, kind=kind,
                           parties=[], amount="", currency="", memo="", private=True,
                           payload=sealed["cid"], payload_hash=sealed["payload_hash"],
                           nonce=secrets.randbelow(2**63), timestamp=int(time.time()))  # fmt: skip
    response = httpx.post(host.url + "/api/v1/transactions", json=body, timeout=30)
    assert response.status_code in (201, 202), response.text
    return str(response.json()["id"])


def post_routed(url: str, body: dict[str, Any], session: Any) -> httpx.Response:
    """POST through the router; retried while the host is catching up (421 after the client's
    own re-route, 503) or was too slow for the relay (504, on a loaded machine: a repeated
    seal only leaves an unsigned draft on the host) — any other answer is returned."""

    def attempt() -> httpx.Response | None:
        response = httpx.post(url, json=body, auth=session, timeout=30)
        return None if response.status_code in (421, 503, 504) else response

    return wait_until(attempt, LIST_TIMEOUT, f"POST {url} to reach a caught-up host")


def listed(node: DevnetNode, session: Any, want: dict[str, str]) -> str | None:
    """Return who served beta's records through ``node`` if all of ``want`` (cid -> value)
    are listed and opened there, else None."""
    response = httpx.get(data_url(node, "records"), auth=session, timeout=10)
    if response.status_code != 200:
        return None
    got = {r["cid"]: r["value"] for r in response.json()["records"]}
    if any(got.get(cid) != value for cid, value in want.items()):
        return None
    return response.headers.get(SERVED_BY, "?").lower()


def files_containing(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_private_data_survives_rotation_and_the_writers_death(devnet5: Devnet) -> None:
    t0 = time.monotonic()
    nodes = devnet5.nodes
    member = devnet5.operator
    eligible = {n.address.lower() for n in nodes[2:4]}  # node2 (home beta), node3 (member)
    entry = nodes[0]  # hosts no be_subsystem of beta: every write crosses the router
    sessions = {n.url: login(n.url, member) for n in nodes}

    # -- write: records and one private transaction, each signed into beta's log ---------------
    want: dict[str, str] = {}
    tx_ids: list[str] = []
    writers: dict[str, DevnetNode] = {}
    by_address = {n.address.lower(): n for n in nodes}
    for i in range(RECORDS):
        value = f"{MARK}record-{i}-{secrets.token_hex(4)}"
        response = post_routed(data_url(entry, "records"), {"key": f"k{i}", "value": value},
                               sessions[entry.url])  # fmt: skip
        assert response.status_code == 201, response.text
        record = response.json()
        assert record["status"] == "draft" and record["payload_hash"]
        host = by_address[response.headers[SERVED_BY].lower()]
        assert host.address.lower() in eligible
        writers[record["cid"]] = host
        tx_ids.append(sign_into_log(host, member, "record", record))
        want[record["cid"]] = value
    content = f'{{"memo": "{MARK}payment", "amount": "9100"}}'
    response = post_routed(data_url(entry, "payloads"), {"content": content}, sessions[entry.url])
    assert response.status_code == 201, response.text
    payload = response.json()
    payload_host = by_address[response.headers[SERVED_BY].lower()]
    tx_ids.append(sign_into_log(payload_host, member, "payment", payload))
    for tx_id, host in zip(tx_ids, [*writers.values(), payload_host], strict=True):
        wait_anchored(host.url, tx_id)
    writer = writers[next(iter(want))]  # the host that sealed the first record
    other = next(n for n in nodes if n.address.lower() in eligible - {writer.address.lower()})
    print(f"replica +{time.monotonic() - t0:.1f}s: {RECORDS} records and 1 payment anchored; "
          f"writer node{writer.index}, other host node{other.index}")  # fmt: skip

    # -- rotation: every node lists them, and the other host serves them too --------------------
    served: set[str] = set()

    def everywhere() -> bool:
        for node in nodes:
            who = listed(node, sessions[node.url], want)
            if who is None:
                return False
            served.add(who)
        return other.address.lower() in served

    wait_until(everywhere, LIST_TIMEOUT, "every node to list beta's records, served by both")
    print(f"replica +{time.monotonic() - t0:.1f}s: listed everywhere, served by {served}")
    # /health lists the subsystems with a log afresh every NAMES_TTL_SECONDS
    wait_until(lambda: health(other)["replicas"], NAMES_TTL_SECONDS + 5, "other's replica report")

    # -- the writer dies for good ---------------------------------------------------------------
    writer.kill()
    shutil.rmtree(writer.data_dir)
    live = [n for n in nodes if n is not writer]

    def after_death() -> bool:
        return all(listed(n, sessions[n.url], want) is not None for n in live)

    wait_until(after_death, LIST_TIMEOUT, "every live node to list beta's records after the kill")
    print(f"replica +{time.monotonic() - t0:.1f}s: listed everywhere after the writer's death")
    for node in live:
        opened = httpx.get(data_url(node, f"payloads/{payload['cid']}"),
                           auth=sessions[node.url], timeout=10)  # fmt: skip
        assert opened.status_code == 200, opened.text
        assert opened.json()["content"] == content
    # the member, with the wallet key and a gateway only: a node lists a record once its log
    # is indexed, and serves the record's blocks (object, envelope) once peer sync fetched them
    gateway = GatewayStore(live[0].url)

    def read_all() -> dict[str, str] | None:
        try:
            return {
                cid: decode_record(read_sealed(gateway, cid, bytes(member.key)))[1] for cid in want
            }
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code == 404:
                return None  # a block not synced to this node yet
            raise

    assert wait_until(read_all, LIST_TIMEOUT, f"{live[0].url} to serve the records' blocks") == want

    # -- outsiders read no plaintext ------------------------------------------------------------
    stranger = Account.create()
    for node in live:
        denied = httpx.get(data_url(node, "records"), auth=login(node.url, stranger), timeout=10)
        assert denied.status_code == 403, denied.text
    outsiders = [n for n in live if n.address.lower() not in eligible]
    assert outsiders
    sealed = [*want, payload["cid"]]

    def replicated(node: DevnetNode) -> bool:  # every node keeps the ciphertext (peer sync)
        return all(
            httpx.get(f"{node.url}/ipfs/{cid}?format=raw", timeout=10).status_code == 200
            for cid in sealed
        )

    for node in outsiders:
        wait_until(lambda n=node: replicated(n), LIST_TIMEOUT, f"{node.url} to hold the ciphertext")
        assert files_containing(node.data_dir, MARK.encode()) == []
        for cid in sealed:
            raw = httpx.get(f"{node.url}/ipfs/{cid}?format=raw", timeout=10)
            assert raw.status_code == 200 and MARK.encode() not in raw.content

    # -- verify is clean on every live node ---------------------------------------------------
    for node in live:
        code, output = run_verify(node, devnet5)
        assert code == 0, output
        assert "subsystem logs (sealed objects and envelopes): all match" in output, output
    # a member's verify also opens every entry and re-hashes both commitments
    key_file = live[0].data_dir.parent / "member.key"
    key_file.write_text("0x" + bytes(member.key).hex())
    arguments = ["verify", "--data-dir", str(live[0].data_dir), "--chain", devnet5.chain_url,
                 "--member-key-file", str(key_file)]  # fmt: skip
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    opened = int(result.output.split(" opened")[0].rsplit(" ", 1)[1])
    assert opened >= len(tx_ids), result.output
    print(f"replica +{time.monotonic() - t0:.1f}s: done")
