"""Anchors: a batch's Merkle root recorded on-chain, and the anchors read back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from eth_utils import to_checksum_address
from hexbytes import HexBytes
from web3.logs import DISCARD

from node.chain.contracts import TxHash, embedded_gas_limit, tx_result
from node.chain.logpager import LogPager, sorted_logs
from node.chain.registry.binding import RegistryBinding
from node.chain.registry.records import Anchor, AnchorReceipt, Hash32, LoggedAnchor

ANCHOR_GAS_LIMIT = 2_000_000
"""Gas limit of an anchor on the embedded chain, where it is not estimated: an anchor appends
one record (a root, two counts, a CID of at most 128 bytes, a subsystem name of at most 64)
and emits one event, well under 300,000 gas; ``tests/chain/test_registry.py`` checks the
margin."""

OWN_ANCHORS_SPAN = 100_000
"""The largest page of :meth:`AnchorCalls.own_anchors`, in blocks. The query is narrowed to
one node's anchors, so a page holds few logs and a node answers it from its blooms: a
provider that caps ranges refuses it and the pager halves it (``node.chain.logpager``)."""


class AnchorCalls(RegistryBinding):
    """The registry's anchors: write one (decoding its ``Anchored`` event), read them."""

    # ------------------------------------------------------------------ anchors

    def anchor(
        self, subsystem: str, root: bytes, tree_size: int, count: int, batch_cid: str
    ) -> AnchorReceipt:
        """Anchor a batch's Merkle ``root`` (registered nodes only); ``subsystem`` "" = system."""
        call = self._f.anchor(subsystem, root, tree_size, count, batch_cid)
        receipt = self._transact(call, gas=embedded_gas_limit(self.w3, ANCHOR_GAS_LIMIT))
        (event,) = self.contract.events.Anchored().process_receipt(receipt, errors=DISCARD)
        result = tx_result(receipt)
        return AnchorReceipt(
            tx_hash=result.tx_hash,
            block_number=result.block_number,
            index=int(event["args"]["index"]),
            gas_used=result.gas_used,
        )

    def anchor_count(self) -> int:
        """Return the number of anchors."""
        return int(self._call(self._f.anchorCount()))

    def get_anchor(self, i: int) -> Anchor:
        """Return anchor ``i``; rejects an index out of range."""
        root, tree_size, count, batch_cid, subsystem, node, block_number = self._call(
            self._f.getAnchor(i)
        )
        return Anchor(
            index=i,
            root=Hash32(bytes(root)),
            tree_size=int(tree_size),
            count=int(count),
            batch_cid=batch_cid,
            subsystem=subsystem,
            node=to_checksum_address(node),
            block_number=int(block_number),
        )

    def anchors(self, start: int = 0, stop: int | None = None) -> list[Anchor]:
        """Return anchors ``start`` up to ``stop`` (default: all)."""
        end = self.anchor_count() if stop is None else stop
        return [self.get_anchor(i) for i in range(start, end)]

    def own_anchors(
        self,
        node: str,
        from_block: int = 0,
        to_block: int | None = None,
        *,
        max_span: int = OWN_ANCHORS_SPAN,
    ) -> Iterator[LoggedAnchor]:
        """Yield the anchors that ``node`` made in blocks ``from_block..to_block`` (default:
        the latest block), in index order, each with the transaction that made it.

        Read from the ``Anchored`` events whose indexed ``node`` topic is ``node``
        (``eth_getLogs`` paged by :class:`~node.chain.logpager.LogPager`): O(blocks /
        page) requests whatever the number of other nodes' anchors, one page in memory at a
        time. Raises ``ChainError`` if the logs cannot be read.
        """
        event = self.contract.events.Anchored()
        node_topic = "0x" + bytes(HexBytes(to_checksum_address(node))).rjust(32, b"\0").hex()
        topic = "0x" + bytes(HexBytes(event.topic)).hex()
        pager = LogPager(self.w3, self.address, max_span, topics=[topic, None, None, node_topic])
        last = int(self.w3.eth.block_number) if to_block is None else to_block
        for page in pager.pages(from_block, last):
            for entry in sorted_logs(page):
                yield _logged_anchor(event.process_log(entry))


def _logged_anchor(decoded: Any) -> LoggedAnchor:
    """Return the anchor of a decoded ``Anchored`` log."""
    args = decoded["args"]
    return LoggedAnchor(
        index=int(args["index"]),
        root=Hash32(bytes(args["root"])),
        tree_size=int(args["treeSize"]),
        count=int(args["count"]),
        batch_cid=str(args["batchCid"]),
        subsystem=str(args["subsystem"]),
        node=to_checksum_address(args["node"]),
        block_number=int(decoded["blockNumber"]),
        tx_hash=TxHash(HexBytes(decoded["transactionHash"])),
    )
