"""Anchors: a batch's Merkle root recorded on-chain, and the anchors read back."""

from __future__ import annotations

from eth_utils import to_checksum_address
from web3.logs import DISCARD

from node.chain.contracts import embedded_gas_limit, tx_result
from node.chain.registry.binding import RegistryBinding
from node.chain.registry.records import Anchor, AnchorReceipt, Hash32

ANCHOR_GAS_LIMIT = 2_000_000
"""Gas limit of an anchor on the embedded chain, where it is not estimated: an anchor appends
one record (a root, two counts, a CID of at most 128 bytes, a subsystem name of at most 64)
and emits one event, well under 300,000 gas; ``tests/chain/test_registry.py`` checks the
margin."""


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
