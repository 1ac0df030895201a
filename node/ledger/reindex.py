"""Rebuild the index from the chain and the content store alone (``collegium reindex``).

Nothing of the old database is read. The chain follower replays the registry's events
(subsystems, participants, nodes, other nodes' anchors); then, for every anchor this node
made, in order: the batch document named on-chain gives the leaf CIDs (and, from batch
version 2, when each leaf was accepted), each leaf body is read from the store and
re-verified (canonical encoding, EIP-712 signature), the Merkle root recomputed from the
bodies must equal the root on-chain, and the rows are written as anchored leaves.

Then the leaves of every other node's log are indexed from their batch documents exactly as
the running node's chain follower does (``node.ledger.logs.LogIndexer``: verified, a bad or
missing batch skipped), and the Merkle tree of every log is persisted (``node.ledger.tree``).
Rows are numbered (``seq``) this node's log first, then the other logs.

Leaves accepted but not anchored yet are not on-chain, so they are not in a rebuilt
index; ``collegium reindex`` copies them over from the old database when it can read it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3

from node.chain.registry import Registry
from node.db.models import BusinessTransaction, RegistryEvent, TransactionStatus
from node.errors import CollegiumError
from node.ledger import tree
from node.ledger.batch import decode_batch
from node.ledger.follower import ChainFollower
from node.ledger.hasher import hash_leaf
from node.ledger.logs import LogIndexer, block_time_of
from node.ledger.proof import CompactRange
from node.ledger.protocols import ContentStore
from node.ledger.recovery import compute_anchor_row
from node.ledger.rows import OWN_LOG, new_row
from node.ledger.transaction import Domain, decode_leaf
from node.ledger.verifier import compute_leaf_cid

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ReindexError(CollegiumError):
    """The chain and the store disagree: the index cannot be rebuilt faithfully."""


@dataclass(frozen=True)
class ReindexReport:
    """What a rebuild wrote."""

    events: int
    anchors: int
    own_anchors: int
    transactions: int
    other_transactions: int = 0


def _anchor_tx_hashes(sessions: sessionmaker[Session]) -> dict[int, str]:
    with sessions() as session:
        events = session.scalars(select(RegistryEvent).where(RegistryEvent.name == "Anchored"))
        return {int(json.loads(e.args)["index"]): e.tx_hash for e in events}


def _block_time(w3: Web3, number: int) -> datetime:
    return datetime.fromtimestamp(int(w3.eth.get_block(number)["timestamp"]), UTC)


def reindex(
    *,
    sessions: sessionmaker[Session],
    store: ContentStore,
    w3: Web3,
    registry_address: str,
    node_address: str,
    start_block: int = 0,
) -> ReindexReport:
    """Rebuild the (empty, migrated) index behind ``sessions``; return what was written.

    Raises ``ReindexError`` if a batch or a leaf does not match the chain, ``ChainError``
    / ``StoreError`` if either cannot be read, and ``ReindexError`` if the target index is
    not empty.
    """
    with sessions() as session:
        if session.scalar(select(func.count()).select_from(BusinessTransaction)):
            raise ReindexError("the target index is not empty")
    follower = ChainFollower(
        w3=w3,
        registry_address=registry_address,
        sessions=sessions,
        node_address=node_address,
        confirmations=0,
        start_block=start_block,
    )
    events = follower.sync().events
    registry = Registry(w3, registry_address)
    count = registry.anchor_count()
    own, transactions = _rebuild_own_log(sessions, store, w3, registry, node_address, count)
    others = _index_other_logs(sessions, store, w3, registry_address, node_address)
    return ReindexReport(events, count, own, transactions, others)


def _rebuild_own_log(
    sessions: sessionmaker[Session],
    store: ContentStore,
    w3: Web3,
    registry: Registry,
    node_address: str,
    count: int,
) -> tuple[int, int]:
    """Write this node's anchors among the first ``count`` and their leaves, checked against
    the chain, then persist the log's tree; return (anchors, leaves) written."""
    tx_hashes = _anchor_tx_hashes(sessions)
    frontier = CompactRange()
    own = transactions = 0
    for index in range(count):
        onchain = registry.get_anchor(index)
        if str(onchain.node).lower() != node_address.lower():
            continue
        rows = _rebuild_batch(w3, store, onchain, frontier)
        with sessions() as session:
            session.merge(compute_anchor_row(index, onchain, tx_hashes.get(index, "")))
            for row in rows:
                row.anchor_index = index
                session.add(row)
            session.commit()
        own += 1
        transactions += len(rows)
    with sessions() as session:
        _advance_seq(session)
        tree.catch_up(session, OWN_LOG)
        session.commit()
    return own, transactions


def _index_other_logs(
    sessions: sessionmaker[Session],
    store: ContentStore,
    w3: Web3,
    registry_address: str,
    node_address: str,
) -> int:
    """Index the leaves of every other node's log as the running follower does; return how
    many."""
    indexer = LogIndexer(
        sessions=sessions,
        store=store,
        node_address=node_address,
        domain=Domain(int(w3.eth.chain_id), registry_address),
        block_time=block_time_of(w3),
    )
    others = 0
    while batches := indexer.index():
        others += sum(b.leaves for b in batches)
    return others


def _advance_seq(session: Session) -> None:
    """After rows written with explicit ``seq`` values, move PostgreSQL's sequence past them
    (SQLite's rowid already follows the largest value)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text(
                "SELECT setval(pg_get_serial_sequence('transactions', 'seq'), "
                "(SELECT COALESCE(MAX(seq), 0) + 1 FROM transactions), false)"
            )
        )


def _rebuild_batch(
    w3: Web3, store: ContentStore, onchain: Any, frontier: CompactRange
) -> list[BusinessTransaction]:
    """Return the anchored rows of one of this node's anchors, checked against its root."""
    name = f"anchor {onchain.index}"
    batch = decode_batch(store.cat(str(onchain.batch_cid)))
    first = int(onchain.tree_size) - int(onchain.count)
    if batch.first != first or batch.first != frontier.size:
        raise ReindexError(
            f"{name}: batch starts at leaf {batch.first}, the log has {frontier.size} leaves "
            f"and the anchor says {first}"
        )
    if len(batch.leaf_cids) != int(onchain.count):
        raise ReindexError(
            f"{name}: batch lists {len(batch.leaf_cids)} leaves, not {onchain.count}"
        )
    fallback = _block_time(w3, int(onchain.block_number)) if not batch.received_at_us else None
    rows = []
    for offset, cid in enumerate(batch.leaf_cids):
        body = store.cat(cid)
        if compute_leaf_cid(body) != cid:
            raise ReindexError(f"{name}: the store's bytes for {cid} do not hash to it")
        signed = decode_leaf(body)  # re-verifies the signature and the encoding
        if batch.received_at_us:
            received = EPOCH + timedelta(microseconds=batch.received_at_us[offset])
        else:
            received = fallback or EPOCH
        row = new_row(signed, body, cid, received)
        row.leaf_index = first + offset
        row.seq = row.leaf_index + 1
        row.status = TransactionStatus.ANCHORED
        frontier.append(hash_leaf(body))
        rows.append(row)
    root = "0x" + frontier.root().hex()
    if root != "0x" + bytes(onchain.root).hex():
        raise ReindexError(f"{name}: leaves hash to {root}, the chain has 0x{onchain.root.hex()}")
    return rows
