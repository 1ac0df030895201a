"""`collegium frontend publish --subsystem S --url URL --key-env K` from another machine: a real
`collegium` process run in a temporary directory with its own empty HOME (no node data
directory anywhere) against a real node over HTTP on 127.0.0.1, on the embedded chain and on
anvil. The admin's wallet signs in (SIWE), uploads the build and signs the relayed
`setSubsystemFrontend`; a non-admin and a too-big build change nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
from eth_account import Account
from siwe import SiweMessage

from node.auth.delegation import decode_delegation_header
from node.cli.status import ExitStatus
from node.client import Client, ClientError
from node.frontend.archive import MAX_ARCHIVE_BYTES
from tests.support.node import InProcessNode, in_process_node, wait_indexed

SUBSYSTEM: Final = "atelier"
CLI_TIMEOUT: Final = 180


def elsewhere(tmp_path: Path) -> Path:
    """Return a working directory of "another machine": no node data directory in it or in
    its HOME."""
    workdir = tmp_path / "elsewhere"
    (workdir / "home").mkdir(parents=True)
    return workdir


def publish(workdir: Path, *args: str, key: str) -> subprocess.CompletedProcess[str]:
    """Run `collegium frontend publish ARGS --key-env ADMIN_KEY` as a process in ``workdir``,
    HOME there too and no COLLEGIUM_* variable set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLLEGIUM_")}
    env.update({"HOME": str(workdir / "home"), "ADMIN_KEY": key})
    command = [sys.executable, "-m", "node.cli.main", "frontend", "publish", *args,
               "--key-env", "ADMIN_KEY"]  # fmt: skip
    done = subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT
    )
    assert key.removeprefix("0x") not in done.stdout + done.stderr  # the key is never shown
    return done


def build(parent: Path, name: str, title: str) -> Path:
    """Return a small build (index.html, js/app.js, and a hidden file left out as by
    `ipfs add -r`)."""
    bundle = parent / name
    (bundle / "js").mkdir(parents=True)
    (bundle / "index.html").write_text(f"<!doctype html><title>{title}</title><h1>{title}</h1>")
    (bundle / "js" / "app.js").write_text(f"document.title = {title!r};\n")
    (bundle / ".env").write_text("SECRET=not-published\n")
    return bundle


def state(running: InProcessNode) -> dict[str, Any]:
    """Return what a publish changes: the registry entry, the chain head, the pins."""
    node = running.node
    return {
        "frontend": node.registry.subsystem_frontend(SUBSYSTEM),
        "block": int(node.chain.w3.eth.block_number),
        "pins": sorted(node.store.pins()),
    }


def test_sign_in_names_this_node_and_uses_its_fresh_nonce(running: InProcessNode) -> None:
    """The client's SIWE message carries the node's domain, scheme and chain id and a nonce
    the node issued; the login consumed it (the same message is refused as a replay)."""
    rules = httpx.get(running.url + "/api/v1/auth/nonce", timeout=10).json()
    with Client(running.url, Account.create()) as client:
        session = client.sign_in()
    parts = decode_delegation_header(session.delegation)
    message, signature = parts.message, parts.signature
    siwe = SiweMessage.from_message(message)
    assert (siwe.domain, siwe.scheme or "https", siwe.chain_id) == (
        rules["domain"], rules["scheme"], running.node.chain.w3.eth.chain_id
    )  # fmt: skip
    assert siwe.uri == session.key_id and siwe.address == client.wallet.address  # type: ignore[union-attr]
    replay = httpx.post(running.url + "/api/v1/auth/login",
                        json={"message": message, "signature": signature}, timeout=10)  # fmt: skip
    assert replay.status_code == 401 and replay.json()["detail"].startswith("replayed-nonce")
    with pytest.raises(ClientError) as expired, Client(running.url, Account.create()) as client:
        client.sign_in(ttl=timedelta(seconds=-60))
    assert expired.value.status == 401
    assert expired.value.detail.startswith("the node refused the sign-in (expired")


def test_an_admin_publishes_from_another_machine(running: InProcessNode, tmp_path: Path) -> None:
    owner, stranger = Account.create(), Account.create()
    Client(running.url, owner).create_subsystem(SUBSYSTEM)
    wait_indexed(running)
    workdir = elsewhere(tmp_path)
    bundle = build(workdir, "ui", "atelier")
    target = ("--subsystem", SUBSYSTEM, "--url", running.url, "--build-dir", "ui")
    before = state(running)

    # a wallet that is not an admin of the subsystem: refused by the node, nothing recorded
    refused = publish(workdir, *target, key=stranger.key.hex())
    assert refused.returncode == ExitStatus.NOT_ADMIN, refused.stderr
    assert f"{stranger.address} is not an admin of {SUBSYSTEM!r}" in refused.stderr
    assert refused.stdout == "" and state(running) == before

    # a build over the upload limit: a clear error before anything is sent
    big = build(workdir, "big", "big")
    (big / "blob.bin").write_bytes(os.urandom(MAX_ARCHIVE_BYTES + 1024))
    too_big = publish(workdir, "--subsystem", SUBSYSTEM, "--url", running.url,
                      "--build-dir", "big", key=owner.key.hex())  # fmt: skip
    assert too_big.returncode == ExitStatus.ERROR
    assert f"over the node's upload limit of {MAX_ARCHIVE_BYTES} bytes (16 MiB)" in too_big.stderr
    assert state(running) == before
    # and the node's own 413, had it been sent anyway (the same archive, signed in)
    with pytest.raises(ClientError) as over, Client(running.url, owner) as client:
        client.upload_frontend_archive(SUBSYSTEM, b"\0" * (MAX_ARCHIVE_BYTES + 1))
    assert over.value.status == 413 and "too big for the node" in over.value.detail
    assert str(MAX_ARCHIVE_BYTES) in over.value.detail and state(running) == before

    # the admin: signed in, uploaded, setSubsystemFrontend signed and relayed; served at /s/S/
    done = publish(workdir, *target, key=owner.key.hex())
    assert done.returncode == 0, done.stderr
    cid = done.stdout.strip()
    on_node = running.node.store.add_path(bundle, cid_version=1, pin=False, only_hash=True)
    assert cid == str(on_node)  # the CID an on-node publish (`ipfs add -r`) gives the same files
    assert running.node.registry.subsystem_frontend(SUBSYSTEM) == cid
    assert cid in running.node.store.pins()
    for path in ("index.html", "js/app.js"):
        served = httpx.get(f"{running.url}/s/{SUBSYSTEM}/{path}", timeout=10)
        assert served.status_code == 200 and served.content == (bundle / path).read_bytes()
    root = httpx.get(f"{running.url}/s/{SUBSYSTEM}/", timeout=10)
    assert root.content == (bundle / "index.html").read_bytes()
    assert httpx.get(f"{running.url}/ipfs/{cid}/.env", timeout=10).status_code == 404
    assert running.node.chain.w3.eth.get_balance(owner.address) == 0  # the node paid the gas
    assert not (workdir / "home" / ".collegium").exists()  # no data directory was made

    # the same build again: same CID, nothing new on-chain
    head = int(running.node.chain.w3.eth.block_number)
    again = publish(workdir, *target, key=owner.key.hex())
    assert again.returncode == 0 and again.stdout.strip() == cid
    assert "already serves this build" in again.stderr
    assert int(running.node.chain.w3.eth.block_number) == head


def test_clear_errors_without_a_node(tmp_path: Path) -> None:
    """An unreachable node exits 4; the system front-end needs the node's machine."""
    workdir = elsewhere(tmp_path)
    build(workdir, "ui", "x")
    key = Account.create().key.hex()
    gone = publish(workdir, "--subsystem", "s", "--url", "http://127.0.0.1:9",
                   "--build-dir", "ui", key=key)  # fmt: skip
    assert gone.returncode == ExitStatus.UNREACHABLE
    assert "node at http://127.0.0.1:9 is not reachable" in gone.stderr
    system = publish(workdir, "--build-dir", "ui", key=key)
    assert system.returncode == ExitStatus.ERROR and "--subsystem S --url URL" in system.stderr


def test_on_the_nodes_machine_the_build_goes_to_its_store(tmp_path: Path) -> None:
    """Without --url and with the node's data directory here, the build is added to that
    node's store directly (no upload); the wallet still signs and the node relays."""
    with in_process_node(tmp_path / "node", epoch_service=False, sync=False) as running:
        owner, stranger = Account.create(), Account.create()
        Client(running.url, owner).create_subsystem(SUBSYSTEM)
        wait_indexed(running)
        workdir = elsewhere(tmp_path)
        bundle = build(workdir, "ui", "local")
        args = ("--subsystem", SUBSYSTEM, "--build-dir", "ui",
                "--data-dir", str(running.node.settings.data_dir))  # fmt: skip
        before = state(running)
        refused = publish(workdir, *args, key=stranger.key.hex())
        assert refused.returncode == ExitStatus.NOT_ADMIN and state(running) == before
        done = publish(workdir, *args, key=owner.key.hex())
        assert done.returncode == 0, done.stderr
        cid = done.stdout.strip()
        assert running.node.registry.subsystem_frontend(SUBSYSTEM) == cid
        served = httpx.get(f"{running.url}/s/{SUBSYSTEM}/", timeout=10)
        assert served.content == (bundle / "index.html").read_bytes()
