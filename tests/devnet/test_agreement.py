"""Three node processes on anvil agree on the assignment of every epoch, on-chain.

Anvil mines a block a second, epochs are 8 blocks (``EPOCH_PERIOD_THREE``). The devnet is
shared and faulty (its nodes reach anvil through fault-injecting proxies, conftest.py): this
test runs last among the 3-node tests and judges the epochs since all three nodes were
registered, which elapse while the other tests load the nodes.
Every epoch from the first one after registration is judged: each node live in its snapshot
(read from the chain here, not from a node) has attested it, all with one root, which every
node also serves; ten must be judged, six of them with all three nodes live. The only epochs
skipped are those a test recorded in ``DevnetPool.skipped_epochs`` with its reason (a node
killed, every wallet priced out by a fee spike, an empty wallet, wallets busy after a reorg):
a node cannot attest while it is down or cannot pay. Behind these proxies one attestation takes
seconds (a dropped answer, a 429, receipts hidden by the lagging backend), so a busy node
falls behind and attests late (up to ``BACKFILL_EPOCHS``
back): an epoch is judged once its live nodes attested it or that horizon passed. A node
that landed nothing for the liveness window (two periods, 16 s here) is left out of the next
snapshot, as the protocol says, and has nothing to attest there.
"""

from __future__ import annotations

import time

import httpx
from web3 import Web3

from node.chain.registry import Registry
from node.devnet import Devnet
from node.epoch.service import BACKFILL_EPOCHS
from node.epoch.snapshot import read_snapshot
from tests.devnet.conftest import BLOCK_TIME, EPOCH_PERIOD_THREE, THREE, DevnetPool

EPOCHS_WANTED = 10
"""Epochs judged (every live node attested one root)..."""
UNANIMOUS_WANTED = 6
"""...of which this many with all three nodes live (a node that falls behind on a loaded
machine is left out of an epoch or two, as the protocol says)."""
DEADLINE_SECONDS = 240
LATE_SECONDS = (BACKFILL_EPOCHS + 1) * EPOCH_PERIOD_THREE * BLOCK_TIME
"""How long after its end an epoch may still be attested late by a node that fell behind."""
SERVED_TIMEOUT = 30.0
"""A past epoch no longer cached is computed again from the chain (the registry at its
boundary): behind the faulty proxies on a loaded machine that took over 10 s."""


def judge(
    registry: Registry, epoch: int, nodes: list[str], skipped: dict[int, str]
) -> tuple[bytes, list[str]]:
    """Return the one root attested for ``epoch`` and the nodes live in its snapshot, once
    each of those attested it (waiting up to ``LATE_SECONDS`` for late attestations); fail
    the test if one of them never did or two roots differ. A node left out of the snapshot
    (not seen on-chain for the liveness window: it fell behind) has nothing to attest."""
    snapshot = read_snapshot(registry, registry.epoch_start_block(epoch))
    live = [a for a in nodes if snapshot.node(a) is not None]
    assert live, f"epoch {epoch}: no node of the devnet in the snapshot {snapshot}"
    deadline = time.monotonic() + LATE_SECONDS
    roots = {a: registry.attestation_of(epoch, a) for a in nodes}
    while any(roots[a] is None for a in live) and time.monotonic() < deadline:
        time.sleep(0.5)
        roots = {a: registry.attestation_of(epoch, a) for a in nodes}
    attested = set(roots.values()) - {None}
    assert len(attested) <= 1, f"epoch {epoch}: divergent roots {attested}"
    missing = [a for a in live if roots[a] is None]
    assert not missing, (
        f"epoch {epoch}: not attested by the live nodes {missing} (skipped: {skipped})"
    )
    return bytes(next(iter(attested))), live


def test_every_epoch_has_one_root_attested_by_all(devnet3: Devnet, devnet_pool: DevnetPool) -> None:
    devnet = devnet3
    registry = Registry(Web3(Web3.HTTPProvider(devnet.chain_url)), str(devnet.registry))
    nodes = [httpx.get(n.url + "/health", timeout=10).json()["node"] for n in devnet.nodes]
    first = devnet_pool.first_epoch[THREE]  # every node was registered before this boundary
    skipped = devnet_pool.skipped_epochs
    print(f"epochs skipped, with reasons: {skipped}")
    unanimous: list[int] = []  # epochs with all three nodes live, all attesting one root
    partial: dict[int, list[str]] = {}  # judged epochs some node was left out of
    deadline = time.monotonic() + DEADLINE_SECONDS
    epoch = first
    while (
        len(unanimous) + len(partial) < EPOCHS_WANTED or len(unanimous) < UNANIMOUS_WANTED
    ) and time.monotonic() < deadline:
        current = registry.current_epoch()
        if current <= epoch:
            time.sleep(0.5)
            continue
        if epoch in skipped:
            epoch += 1
            continue
        root, live = judge(registry, epoch, nodes, skipped)
        if len(live) == len(nodes):
            unanimous.append(epoch)
        else:
            partial[epoch] = live
        served = {
            httpx.get(f"{n.url}/api/v1/epochs/{epoch}", timeout=SERVED_TIMEOUT).json()["root"]
            for n in devnet.nodes
        }
        assert served == {"0x" + root.hex()}
        epoch += 1
    print(f"epochs judged with a node left out (live nodes): {partial}")
    assert len(unanimous) >= UNANIMOUS_WANTED, f"only epochs {unanimous} attested by all 3 nodes"
    assert len(unanimous) + len(partial) >= EPOCHS_WANTED, f"judged only {unanimous}, {partial}"
    for n in devnet.nodes:
        assert n.running
