"""Tamper with one node of the 3-node devnet: one byte of its SQL index, one byte of a block.

``collegium verify`` must name what was changed; the gateway must refuse the bad block
(a 5xx problem, never the bad bytes) and the node's sync must fetch a good copy from a peer.
"""

from __future__ import annotations

import hashlib
import sqlite3

import httpx

from node.devnet import Devnet
from tests.devnet.support import (
    block_path,
    health,
    run_verify,
    submit_batch,
    wait_anchored,
    wait_until,
)
from tests.support.blocks import StoredBlock

EXIT_MISMATCH = 3
ATTEMPTS = 3
REPAIR_TIMEOUT = 30.0


def _flip(path: StoredBlock) -> bytes:
    """Flip the lowest bit of the middle byte of ``path``; return the original bytes."""
    original = path.read_bytes()
    data = bytearray(original)
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    return original


def _flip_text(value: str) -> str:
    """Return ``value`` with the lowest bit of its first byte flipped (still ASCII)."""
    return chr(ord(value[0]) ^ 0x01) + value[1:]


def test_verify_names_a_flipped_column_byte(devnet3: Devnet) -> None:
    node = devnet3.nodes[0]
    (tx_id,) = submit_batch(node.url, devnet3.operator, 1)
    wait_anchored(node.url, tx_id)
    db = node.data_dir / "index.sqlite"
    with sqlite3.connect(db) as conn:
        (memo,) = conn.execute("SELECT memo FROM transactions WHERE tx_id = ?", (tx_id,)).fetchone()
        conn.execute("UPDATE transactions SET memo = ? WHERE tx_id = ?", (_flip_text(memo), tx_id))
    try:
        code, output = run_verify(node, devnet3)
        assert code == EXIT_MISMATCH, output
        named = [line for line in output.splitlines() if line.startswith("MISMATCH")]
        assert named and all(tx_id in line for line in named), output
        assert any("memo" in line for line in named), output
    finally:
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE transactions SET memo = ? WHERE tx_id = ?", (memo, tx_id))
    code, output = run_verify(node, devnet3)
    assert code == 0, output


def test_a_flipped_block_is_named_refused_and_repaired_from_a_peer(devnet3: Devnet) -> None:
    node, peer = devnet3.nodes[1], devnet3.nodes[2]
    (tx_id,) = submit_batch(node.url, devnet3.operator, 1)
    cid = str(wait_anchored(node.url, tx_id)["cid"])
    raw = f"/ipfs/{cid}?format=raw"
    good = wait_until(
        lambda: (r := httpx.get(peer.url + raw, timeout=10)).status_code == 200 and r.content,
        60,
        f"the peer to sync {cid}",
    )
    path = block_path(node.data_dir, cid)
    assert path.read_bytes() == good
    repaired_before = health(node)["sync"]["repaired_blocks"]
    for _attempt in range(ATTEMPTS):
        _flip(path)
        bad = path.read_bytes()
        code, output = run_verify(node, devnet3)
        served = httpx.get(node.url + raw, timeout=10)
        if path.read_bytes() != bad:
            # the sync's periodic scrub repaired the block while verify ran: flip it again
            continue
        assert code == EXIT_MISMATCH, output
        assert tx_id in output and "MISMATCH" in output, output
        assert served.status_code in (500, 502), served.status_code
        assert served.content != bad and bad not in served.content
        assert served.headers["content-type"].startswith("application/problem+json")
        break
    else:
        raise AssertionError(f"the block was repaired before it could be checked {ATTEMPTS}x")
    # the refused read queued a repair: the node fetches the block from a peer and checks it
    wait_until(lambda: path.read_bytes() == good, REPAIR_TIMEOUT, "the block to be repaired")
    assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(good).digest()
    again = httpx.get(node.url + raw, timeout=10)
    assert again.status_code == 200 and again.content == good
    assert health(node)["sync"]["repaired_blocks"] > repaired_before
    code, output = run_verify(node, devnet3)
    assert code == 0, output
