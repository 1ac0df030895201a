"""``eth_getLogs`` paging that adapts to a provider's limits and never skips a block.

Providers cap ``eth_getLogs`` by block range ("block range too large: max 500") or by result
count ("query returned more than 10000 results"), with messages that differ from one
provider to the next. :class:`LogPager` asks for a page of ``span`` blocks; on a JSON-RPC
error answer it halves the span and asks again *for the same first block*; after
:data:`GROW_AFTER` pages in a row that succeeded it doubles the span again (up to
``max_span``). A page is only ever advanced past after it was answered, so no block is
skipped.

A single block that is still refused (a provider whose result cap is below the number of
the address's events in one block) is read from its transaction receipts instead: its
header by number, then ``eth_getBlockReceipts`` by the header's hash, or, where the provider
does not serve that, ``eth_getTransactionReceipt`` per transaction; the logs of the address
that match ``topics`` are kept, in log-index order, in the shape ``eth_getLogs`` gives
(:attr:`LogPager.receipt_fallbacks` counts such blocks, each logged as a warning). The
receipts must be those of the block's transactions, one by one and of that block hash: a
null block or receipt (a lagging backend) or another block is a :class:`ChainError` to
retry, never an empty page. A provider that refuses the receipts too gives a
:class:`ChainError` saying so: such a node needs a provider without that cap.

Optional ``topics`` (the JSON-RPC filter: one entry per position, ``None`` for any, a list
for any of several) narrow every page, e.g. to one event of one indexed argument;
:meth:`LogPager.pages` yields page by page, so a caller holds one page at a time.

A load-balanced backend that lags answers a range past its head with the logs it has (geth
clamps ``toBlock``) -- silently short. :func:`check_blooms` closes that hole: for every block
whose header (read separately) has the address in its ``logsBloom`` but which returned no
log, it asks again by ``blockHash`` (EIP-234), which a backend without the block refuses
(refused, that block too is read from its receipts, which must be of that hash).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final, TypeAlias

from eth_utils import keccak
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import BlockNotFound, TransactionNotFound, Web3RPCError

from node.errors import ChainError
from node.hashing import as_hex

log = logging.getLogger(__name__)

DEFAULT_MAX_SPAN: Final = 2_000
"""The largest page, in blocks (grown back to after a provider refused larger ones)."""

GROW_AFTER: Final = 8
"""Pages answered in a row before the span doubles again."""

BLOOM_BYTES: Final = 256

Topics: TypeAlias = Sequence[str | Sequence[str] | None]
"""An ``eth_getLogs`` topic filter: 0x-hex topics by position, ``None`` = any."""


class LogPager:
    """Adaptive ``eth_getLogs`` over one contract address, optionally narrowed by ``topics``
    (see the module docstring)."""

    def __init__(
        self,
        w3: Web3,
        address: str,
        max_span: int = DEFAULT_MAX_SPAN,
        topics: Topics | None = None,
    ) -> None:
        if max_span < 1:
            raise ValueError("max_span must be at least 1")
        self.w3 = w3
        self.address = Web3.to_checksum_address(address)
        self.topics: list[str | list[str] | None] | None = None
        if topics is not None:
            self.topics = [t if t is None or isinstance(t, str) else list(t) for t in topics]
        self.max_span = max_span
        self.span = max_span
        self._streak = 0
        self.shrinks = 0
        self.answered = 0  # pages answered
        self.bloom_repairs = 0
        self.receipt_fallbacks = 0  # one-block pages refused and read from receipts instead
        self._block_receipts: bool | None = None  # eth_getBlockReceipts served? None: not asked

    def fetch(self, first: int, last: int) -> list[Any]:
        """Return every log of the address (matching ``topics``) in blocks ``first..last``,
        in chain order.

        Raises :class:`ChainError` if a one-block page is refused and its receipts cannot be
        read, or the chain is unreachable.
        """
        return [entry for page in self.pages(first, last) for entry in page]

    def pages(self, first: int, last: int) -> Iterator[list[Any]]:
        """Yield the logs of blocks ``first..last`` page by page, in chain order (a page is
        asked for only when the previous one was taken).

        A one-block page the provider refuses is read from the block's receipts. Raises
        :class:`ChainError` if those cannot be read either, or the chain is unreachable.
        """
        start = first
        while start <= last:
            end = min(last, start + self.span - 1)
            try:
                page = self.w3.eth.get_logs(self._query(fromBlock=start, toBlock=end))
            except (Web3RPCError, ValueError) as exc:
                if end == start:
                    page = self._from_receipts(start, exc)
                else:
                    self._shrink(start, end, exc)
                    continue
            except ChainError:
                raise
            except Exception as exc:
                raise ChainError(f"cannot read logs {start}..{end}: {exc}") from exc
            self.answered += 1
            start = end + 1
            self._streak += 1
            if self._streak >= GROW_AFTER and self.span < self.max_span:
                self.span = min(self.max_span, self.span * 2)
                self._streak = 0
            yield list(page)

    def _shrink(self, start: int, end: int, exc: Exception) -> None:
        """Halve the span after the provider refused the page ``start..end``."""
        self.span = max(1, (end - start + 1) // 2)
        self.shrinks += 1
        self._streak = 0
        log.info("eth_getLogs %d..%d refused (%s); span now %d", start, end, exc, self.span)

    def _from_receipts(self, number: int, refused: Exception, block_hash: Any = None) -> list[Any]:
        """Return the logs of block ``number`` that match the address and ``topics``, read
        from the block's transaction receipts: the provider refused ``eth_getLogs`` for this
        one block (``refused``), e.g. because it caps results below the block's events.

        With ``block_hash``, the block must be that one. Raises :class:`ChainError` if the
        block or any of its receipts cannot be read (a lagging backend answers null: retry
        later, never an empty page) or the block changed while it was read.
        """
        try:
            block = self.w3.eth.get_block(number)
            if block_hash is not None and as_hex(block["hash"]) != as_hex(block_hash):
                raise ChainError(f"block {number} changed while its logs were read; will retry")
            receipts = self._receipts_of(block)
        except ChainError:
            raise
        except (BlockNotFound, TransactionNotFound) as exc:
            raise ChainError(
                f"block {number} or one of its receipts is not available (lagging backend?): "
                f"{exc}; will retry"
            ) from exc
        except Exception as exc:
            raise ChainError(
                f"cannot read the logs of block {number}: the provider refused eth_getLogs "
                f"({refused}) and its receipts cannot be read either ({exc}); use a provider "
                "that answers eth_getLogs for one block's events (no result cap below them) "
                "or serves eth_getBlockReceipts / eth_getTransactionReceipt"
            ) from exc
        logs = sorted(
            (entry for receipt in receipts for entry in receipt["logs"] if self._matches(entry)),
            key=lambda e: int(e["logIndex"]),
        )
        self.receipt_fallbacks += 1
        log.warning(
            "provider caps eth_getLogs results below one block's %d events: read from "
            "receipts (block %d, %d transactions; refused: %s)",
            len(logs),
            number,
            len(receipts),
            refused,
        )
        return logs

    def _receipts_of(self, block: Any) -> list[Any]:
        """Return the receipts of every transaction of ``block``: one ``eth_getBlockReceipts``
        by block hash where the provider serves it, else one ``eth_getTransactionReceipt`` per
        transaction. Raises if a receipt is missing or of another block."""
        want = as_hex(block["hash"])
        transactions = [as_hex(tx) for tx in block["transactions"]]
        receipts: list[Any] | None = None
        if self._block_receipts is not False:
            try:
                receipts = list(self.w3.eth.get_block_receipts(want))  # type: ignore[arg-type]
                self._block_receipts = True
            except BlockNotFound:
                raise  # a backend without the block: retry, never an empty page
            except (Web3RPCError, ValueError) as exc:  # not served: one receipt at a time
                log.info("eth_getBlockReceipts refused (%s): reading receipts one by one", exc)
                self._block_receipts = False
        if receipts is None:
            receipts = [self.w3.eth.get_transaction_receipt(tx) for tx in transactions]  # type: ignore[arg-type]
        got = [as_hex(r["transactionHash"]) for r in receipts if r is not None]
        if got != transactions or any(as_hex(r["blockHash"]) != want for r in receipts):
            raise ChainError(
                f"the receipts of block {int(block['number'])} do not match its "
                f"{len(transactions)} transactions (a lagging backend or a reorg); will retry"
            )
        return receipts

    def _matches(self, entry: Any) -> bool:
        """Return whether log ``entry`` is of the address and matches ``topics`` position by
        position (``None``: any; a topic: that one; a list: any of those; hex compared
        case-insensitively), as ``eth_getLogs`` would have selected it."""
        if str(entry["address"]).lower() != self.address.lower():
            return False
        have = [as_hex(topic) for topic in entry["topics"]]
        for position, want in enumerate(self.topics or ()):
            if want is None:
                continue
            choices = {as_hex(want)} if isinstance(want, str) else {as_hex(t) for t in want}
            if not choices:
                continue  # an empty list: any, as a node reads it
            if position >= len(have) or have[position] not in choices:
                return False
        return True

    def _query(self, **where: Any) -> Any:
        """Return the ``eth_getLogs`` filter of the address and ``topics`` with ``where``."""
        query: dict[str, Any] = {"address": self.address, **where}
        if self.topics is not None:
            query["topics"] = self.topics
        return query

    def check_blooms(self, logs: list[Any], blocks: Mapping[int, Any]) -> list[Any]:
        """Return ``logs`` completed from the blocks whose bloom names the address (and the
        fixed ``topics``) but that gave no log (asked again by hash); raise ChainError if such
        a block is unknown."""
        have = {int(entry["blockNumber"]) for entry in logs}
        extra: list[Any] = []
        for number, block in sorted(blocks.items()):
            if number in have:
                continue
            bloom = block.get("logsBloom")
            if not bloom or not self._bloom_may_match(bytes(HexBytes(bloom))):
                continue
            try:
                page = self.w3.eth.get_logs(self._query(blockHash=block["hash"]))
            except (Web3RPCError, ValueError) as exc:  # refused, e.g. a result cap
                page = self._from_receipts(number, exc, block_hash=block["hash"])
            except Exception as exc:
                raise ChainError(f"cannot read logs of block {number} by hash: {exc}") from exc
            if page:
                log.warning(
                    "eth_getLogs missed %d logs of block %d (lagging backend)", len(page), number
                )
                self.bloom_repairs += 1
                extra.extend(page)
        if not extra:
            return logs
        merged = list(logs) + extra
        merged.sort(key=lambda e: (int(e["blockNumber"]), int(e["logIndex"])))
        return merged

    def _bloom_may_match(self, bloom: bytes) -> bool:
        """Return whether a block with ``bloom`` may hold a log of the address and topics
        (a position with several alternatives is not checked)."""
        fixed = [bytes(HexBytes(t)) for t in self.topics or () if isinstance(t, str)]
        return all(bloom_may_contain(bloom, item) for item in [self._address_bytes, *fixed])

    @property
    def _address_bytes(self) -> bytes:
        return bytes(HexBytes(self.address))


def bloom_may_contain(bloom: bytes, item: bytes) -> bool:
    """Return whether a 2048-bit log bloom may contain ``item`` (yellow paper, M3:2048)."""
    if len(bloom) > BLOOM_BYTES:
        return True  # unknown format: assume it may
    # a bloom is a 2048-bit number: some backends (eth-tester) drop its leading zero bytes
    bloom = bloom.rjust(BLOOM_BYTES, b"\x00")
    digest = keccak(item)
    for i in (0, 2, 4):
        bit = ((digest[i] << 8) | digest[i + 1]) & 2047
        if not bloom[BLOOM_BYTES - 1 - bit // 8] & (1 << (bit % 8)):
            return False
    return True


def sorted_logs(logs: Sequence[Any]) -> list[Any]:
    """Return ``logs`` in chain order (block number, log index)."""
    return sorted(logs, key=lambda e: (int(e["blockNumber"]), int(e["logIndex"])))
