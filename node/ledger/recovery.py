"""Recovery of interrupted anchors: adopt this node's tree heads found on-chain, not in SQL.

Anchoring publishes a tree head on-chain and then records it in SQL. A crash (``kill -9``)
between the two leaves an anchor on-chain whose leaves are still ``pending`` here;
anchoring them again would put the same leaves in the log twice. At start, before the
anchorer runs, :func:`adopt_own_anchors` reads every anchor past the newest one this node
indexed and, for each of its own, the batch document it names (which leaf CIDs, from which
leaf index): the pending rows with those CIDs become that anchor's leaves.

Only pending leaves can be adopted: with none, nothing is read. (The read is one registry call
per anchor past the node's newest own one, which for a node that never anchored is every
anchor of the registry: a node joining a registry with 50,000 anchors spent minutes on it
before it answered ``/health``; ``docs/benchmarks.md``, "Joining a long history".)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from node.db.models import Anchor, BusinessTransaction, TransactionStatus
from node.errors import CollegiumError
from node.ledger.batch import Batch, decode_batch
from node.ledger.protocols import AnchorRegistry, ContentStore
from node.ledger.rows import compute_hex


def compute_anchor_row(index: int, onchain: Any, chain_tx_hash: str) -> Anchor:
    """Return the index row of the on-chain anchor ``index`` (a registry ``get_anchor``
    answer) sent by the chain transaction ``chain_tx_hash`` (0x-hex, or "" if unknown)."""
    return Anchor(
        index=index,
        root=compute_hex(bytes(onchain.root)),
        tree_size=int(onchain.tree_size),
        count=int(onchain.count),
        batch_cid=str(onchain.batch_cid),
        subsystem=str(onchain.subsystem),
        node=str(onchain.node),
        block_number=int(onchain.block_number),
        chain_tx_hash=chain_tx_hash,
    )


def get_anchor_tx_hash(registry: AnchorRegistry, index: int, block_number: int) -> str:
    """Return the hash (0x-hex) of the chain transaction of anchor ``index``, or "" if the
    registry cannot find it (or cannot look: ``anchor_tx_hash`` is optional)."""
    find = getattr(registry, "anchor_tx_hash", None)
    if find is None:
        return ""
    found = find(index, block_number)
    return "" if found is None else compute_hex(bytes(found))


def get_newest_own_anchor(session: Session, node_address: str) -> Anchor | None:
    """Return this node's newest indexed anchor, or None."""
    return session.scalar(
        select(Anchor).where(Anchor.node == node_address).order_by(Anchor.index.desc()).limit(1)
    )


def adopt_own_anchors(
    session: Session,
    *,
    registry: AnchorRegistry,
    store: ContentStore,
    node_address: str,
    own_log: Callable[[Session], list[bytes]],
) -> int:
    """Adopt this node's on-chain anchors past its newest indexed one (the caller commits);
    ``own_log`` returns the log's leaf hashes, extended in place. Return how many leaves
    were adopted.

    Raises ``ChainError``/``StoreError`` if the chain or a batch cannot be read, and
    ``CollegiumError`` if an on-chain batch does not match the log and the pending leaves.
    """
    if not _has_pending(session):
        return 0  # nothing to adopt: no need to read the registry's anchors
    newest = get_newest_own_anchor(session, node_address)
    adopted = 0
    for index in range(0 if newest is None else newest.index + 1, registry.anchor_count()):
        onchain = registry.get_anchor(index)
        if str(onchain.node).lower() != node_address.lower():
            continue
        batch = decode_batch(store.cat(str(onchain.batch_cid)))
        pending = _pending_rows(session, batch)
        leaf_hashes = own_log(session)
        if batch.first != len(leaf_hashes) or set(pending) != set(batch.leaf_cids):
            raise CollegiumError(
                f"on-chain anchor {index} (leaves {batch.first}..) does not match "
                f"this node's log of {len(leaf_hashes)} leaves and pending rows"
            )
        tx_hash = get_anchor_tx_hash(registry, index, int(onchain.block_number))
        session.merge(compute_anchor_row(index, onchain, tx_hash))
        for leaf_index, cid in enumerate(batch.leaf_cids, batch.first):
            row = pending[cid]
            row.leaf_index = leaf_index
            row.anchor_index = index
            row.status = TransactionStatus.ANCHORED
            leaf_hashes.append(bytes.fromhex(row.leaf_hash[2:]))
        adopted += len(batch.leaf_cids)
    return adopted


def _has_pending(session: Session) -> bool:
    """Return whether any leaf waits to be anchored."""
    return (
        session.scalar(
            select(BusinessTransaction.cid)
            .where(BusinessTransaction.status == TransactionStatus.PENDING)
            .limit(1)
        )
        is not None
    )


def _pending_rows(session: Session, batch: Batch) -> dict[str, BusinessTransaction]:
    """Return the pending rows whose CIDs ``batch`` lists, by CID."""
    rows = session.scalars(
        select(BusinessTransaction).where(
            BusinessTransaction.cid.in_(batch.leaf_cids),
            BusinessTransaction.status == TransactionStatus.PENDING,
        )
    )
    return {r.cid: r for r in rows}
