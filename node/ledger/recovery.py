"""Recovery of interrupted anchors: adopt this node's tree heads found on-chain, not in SQL.

Anchoring publishes a tree head on-chain and then records it in SQL. A crash (``kill -9``)
between the two leaves an anchor on-chain whose leaves are still ``pending`` here;
anchoring them again would put the same leaves in the log twice. At start, before the
anchorer runs, :func:`adopt_own_anchors` reads this node's own anchors past the newest one
it indexed -- from the registry's ``Anchored`` logs filtered by the indexed ``node`` topic,
from the block of that newest anchor less a reorg window (or from the registry's deployment
block), so other nodes' anchors are never read -- and, for each, the batch document it
names (which leaf CIDs, from which leaf index): the pending rows with those CIDs become that
anchor's leaves.

The same scan refuses a reused node key on a fresh data directory: that key's first anchor
on-chain does not start at this (empty) log's size, so the node would fork its own log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from node.db.models import Anchor, BusinessTransaction, TransactionStatus
from node.errors import CollegiumError
from node.ledger.batch import Batch, decode_batch
from node.ledger.proof import CompactRange
from node.ledger.protocols import AnchorRegistry, ContentStore
from node.ledger.registry_events import REORG_WINDOW
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
    own_log: Callable[[Session], CompactRange],
    from_block: int = 0,
) -> int:
    """Adopt this node's on-chain anchors past its newest indexed one (the caller commits);
    ``own_log`` returns the log as a compact range, appended to in place; ``from_block`` is where
    to look when this node indexed no anchor yet (the registry's deployment block, or 0).
    Return how many leaves were adopted.

    Raises ``ChainError``/``StoreError`` if the chain or a batch cannot be read, and
    ``CollegiumError`` if an on-chain batch does not match the log and the pending leaves.
    """
    newest = get_newest_own_anchor(session, node_address)
    after = -1 if newest is None else newest.index
    # a reorg may have mined that anchor again lower than this index recorded it: look from
    # a reorg window below (the same page of logs, in practice)
    start = from_block if newest is None else max(from_block, newest.block_number - REORG_WINDOW)
    adopted = 0
    for onchain in registry.own_anchors(node_address, start):
        index = int(onchain.index)
        if index <= after:
            continue
        batch = decode_batch(store.cat(str(onchain.batch_cid)))
        pending = _pending_rows(session, batch)
        log = own_log(session)
        if batch.first != log.size or set(pending) != set(batch.leaf_cids):
            raise CollegiumError(
                f"on-chain anchor {index} (leaves {batch.first}..) does not match "
                f"this node's log of {log.size} leaves and pending rows"
            )
        tx_hash = compute_hex(bytes(onchain.tx_hash))
        session.merge(compute_anchor_row(index, onchain, tx_hash))
        for leaf_index, cid in enumerate(batch.leaf_cids, batch.first):
            row = pending[cid]
            row.leaf_index = leaf_index
            row.anchor_index = index
            row.status = TransactionStatus.ANCHORED
            log.append(bytes.fromhex(row.leaf_hash[2:]))
        adopted += len(batch.leaf_cids)
    return adopted


def _pending_rows(session: Session, batch: Batch) -> dict[str, BusinessTransaction]:
    """Return the pending rows whose CIDs ``batch`` lists, by CID."""
    rows = session.scalars(
        select(BusinessTransaction).where(
            BusinessTransaction.cid.in_(batch.leaf_cids),
            BusinessTransaction.status == TransactionStatus.PENDING,
        )
    )
    return {r.cid: r for r in rows}
