"""The embedded chain's web3 provider: web3's eth-tester provider behind one lock.

One request at a time (FastAPI runs sync endpoints in a thread pool), one sqlite commit per
request; a request that mines waits for the wall clock past ``max_lead``; ``eth_getLogs``
with an EIP-234 ``blockHash`` is resolved to that block's number; read-only calls may be
stopped after a time cap (:mod:`node.chain.embedded.interrupt`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from eth.exceptions import HeaderNotFound
from eth_tester import EthereumTester
from eth_typing import Hash32
from web3 import EthereumTesterProvider
from web3.types import RPCEndpoint, RPCResponse

from node.chain.constants import JSONRPC_SERVER_ERROR
from node.chain.embedded.db import SqliteAtomicDB
from node.chain.embedded.interrupt import interrupt_after
from node.chain.embedded.jsonrpc import JSONRPC_INVALID_PARAMS
from node.errors import ChainError


def compute_api_endpoints(chain_id: int) -> dict[str, dict[str, Callable[..., Any]]]:
    """Return web3's eth-tester endpoint table with ``eth_chainId``/``net_version`` = ``chain_id``.

    web3's table answers a fixed chain id whatever the chain says.
    """
    from web3.providers.eth_tester.defaults import API_ENDPOINTS

    def answer_chain_id(*_args: Any, **_kwargs: Any) -> int:
        return chain_id

    def answer_net_version(*_args: Any, **_kwargs: Any) -> str:
        return str(chain_id)

    endpoints = {namespace: dict(table) for namespace, table in API_ENDPOINTS.items()}
    endpoints["eth"]["chainId"] = answer_chain_id
    endpoints["net"]["version"] = answer_net_version
    return endpoints


class LockedEthereumTesterProvider(EthereumTesterProvider):
    """web3's eth-tester provider, one request at a time, one sqlite commit per request."""

    def __init__(
        self,
        ethereum_tester: EthereumTester,
        lock: threading.RLock,
        db: SqliteAtomicDB,
        is_open: Callable[[], bool],
        chain_id: int,
    ) -> None:
        super().__init__(ethereum_tester, api_endpoints=compute_api_endpoints(chain_id))
        self._lock = lock
        self._db = db
        self._is_open = is_open
        self.max_lead: float | None = None  # see EmbeddedChain.max_lead
        self.lead_waits = 0  # transactions that waited for the wall clock

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        """Run one JSON-RPC request under the lock; raise ChainError if the chain is closed."""
        return self.make_timed_request(method, params, None)

    def make_timed_request(
        self, method: RPCEndpoint, params: Any, seconds: float | None
    ) -> RPCResponse:
        """Run one request under the lock, stopped with CallTimeout once it has held the lock
        for ``seconds`` (None: no limit). Only for requests that change nothing (eth_call,
        eth_estimateGas): they are interrupted at any Python instruction.

        With :attr:`max_lead`, a request that mines a block first waits (lock released) until
        the block it makes is stamped at most ``max_lead`` seconds after the wall clock."""
        if self.max_lead is not None and method in _MINING_METHODS:
            self._wait_for_clock(self.max_lead)
        with self._lock:
            if not self._is_open():
                raise ChainError("the embedded chain is closed")
            if method == "eth_getLogs":
                params, refused = self._resolve_block_hash(params)
                if refused is not None:
                    return refused
            with self._db.hold():
                if seconds is None:
                    return super().make_request(method, params)
                with interrupt_after(seconds):
                    return super().make_request(method, params)

    def _resolve_block_hash(self, params: Any) -> tuple[Any, RPCResponse | None]:
        """Return ``eth_getLogs`` params with an EIP-234 ``blockHash`` turned into that block's
        number range (eth-tester knows only ranges), or the error for an unknown, non-canonical
        or ambiguous block; other params unchanged. Call under the lock."""
        if not params or not isinstance(params[0], Mapping):
            return params, None
        query = dict(params[0])
        block_hash = query.pop("blockHash", query.pop("block_hash", None))
        if block_hash is None:
            return params, None
        if {"fromBlock", "toBlock", "from_block", "to_block"} & query.keys():
            message = "blockHash cannot be combined with fromBlock or toBlock (EIP-234)"
            return params, _rpc_error(JSONRPC_INVALID_PARAMS, message)
        tester = self.ethereum_tester
        assert tester is not None
        chain = tester.backend.chain
        try:
            if isinstance(block_hash, bytes | bytearray):
                wanted = Hash32(bytes(block_hash))
            else:
                wanted = Hash32(bytes.fromhex(str(block_hash).removeprefix("0x")))
            header = chain.chaindb.get_block_header_by_hash(wanted)
            canonical = chain.chaindb.get_canonical_block_hash(header.block_number) == wanted
        except (HeaderNotFound, ValueError):
            canonical = False
        if not canonical:
            shown = "0x" + bytes(block_hash).hex() if isinstance(block_hash, bytes) else block_hash
            return params, _rpc_error(JSONRPC_SERVER_ERROR, f"unknown block {shown}")
        query["from_block"] = query["to_block"] = int(header.block_number)
        return [query, *params[1:]], None

    def _wait_for_clock(self, max_lead: float) -> None:
        # The lock is released while waiting: concurrent senders may each pass the check
        # once, so the lead can exceed the bound by their number, briefly.
        tester = self.ethereum_tester
        assert tester is not None
        while self._is_open():
            with self._lock:
                head = tester.backend.chain.get_canonical_head()
            lead = int(head.timestamp) + 1 - time.time()
            if lead <= max_lead:
                return
            self.lead_waits += 1
            time.sleep(min(lead - max_lead, 1.0))


def _rpc_error(code: int, message: str) -> RPCResponse:
    return {"jsonrpc": "2.0", "id": 0, "error": {"code": code, "message": message}}


_MINING_METHODS: Final = frozenset(
    {"eth_sendRawTransaction", "eth_sendTransaction", "evm_mine", "eth_sendSignedTransaction"}
)
