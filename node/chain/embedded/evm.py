"""The embedded chain's rules and eth-tester backend: a post-merge py-evm chain that resumes
at its stored head, and eth-tester's ``PyEVMBackend`` around it without its in-memory reset.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Final

from eth.abc import BlockHeaderAPI
from eth.chains.base import MiningChain
from eth.exceptions import HeaderNotFound, TransactionNotFound
from eth.typing import AccountDetails
from eth.vm.forks import PragueVM
from eth_keys.datatypes import PrivateKey
from eth_tester.backends.pyevm import PyEVMBackend
from eth_tester.backends.pyevm.main import (
    get_default_genesis_params,
    serialize_transaction,
    serialize_transaction_receipt,
)
from eth_typing import Address, BlockNumber, Hash32
from eth_utils import to_canonical_address

from node.chain.constants import EMBEDDED_CHAIN_ID
from node.errors import ChainError

COLLEGIUM_DEV_CHAIN_ID: Final = EMBEDDED_CHAIN_ID
"""Chain id of every embedded Collegium chain (EIP-155 replay domain of dev chains)."""


GENESIS_GAS_LIMIT: Final = 30_029_122
"""Block gas limit, kept constant (eth-tester's value: mainnet's at the London fork)."""

GENESIS_FUND_WEI: Final = 1_000_000 * 10**18
"""Balance given to every address asked for (at genesis, or later by a dev-key transfer)."""

DEV_GENESIS_WEI: Final = 10**12 * 10**18
"""Genesis balance of the dev key: a million later fundings of :data:`GENESIS_FUND_WEI`."""


class CollegiumDevChain(MiningChain):
    """The embedded chain's rules: post-merge Prague from genesis, constant gas limit.

    Defined at module level so that a reopened database resumes with the very same class.
    """

    chain_id = COLLEGIUM_DEV_CHAIN_ID
    vm_configuration = ((BlockNumber(0), PragueVM),)

    def create_header_from_parent(
        self, parent_header: BlockHeaderAPI, **header_params: Any
    ) -> BlockHeaderAPI:
        """Return the child header of ``parent_header``, keeping its gas limit."""
        header_params["gas_limit"] = parent_header.gas_limit
        return super().create_header_from_parent(parent_header, **header_params)

    def get_transaction_builder(self) -> Any:
        """Return the transaction builder of the current VM (eth-tester calls this)."""
        return self.get_vm().get_transaction_builder()


def compute_genesis_params(timestamp: int) -> dict[str, Any]:
    """Return the genesis header parameters of a new dev chain created at ``timestamp``."""
    return get_default_genesis_params(
        overrides={"timestamp": timestamp, "gas_limit": GENESIS_GAS_LIMIT}
    )


def compute_genesis_state(
    dev_address: str, addresses: Sequence[str]
) -> dict[Address, AccountDetails]:
    """Return the genesis allocation: :data:`DEV_GENESIS_WEI` for the dev key and
    :data:`GENESIS_FUND_WEI` for each of ``addresses``."""
    balances = {Address(to_canonical_address(address)): GENESIS_FUND_WEI for address in addresses}
    balances[Address(to_canonical_address(dev_address))] = DEV_GENESIS_WEI
    return {
        address: {
            "balance": balance,
            "nonce": 0,
            "code": b"",
            "storage": {},
        }
        for address, balance in balances.items()
    }


class PersistentPyEVMBackend(PyEVMBackend):  # type: ignore[misc]
    """eth-tester's py-evm backend around an existing (persistent) chain.

    Differences from ``PyEVMBackend``: no in-memory genesis on construction, no
    ``reset_to_genesis``; transactions are found through py-evm's tx-hash index instead of a
    scan of every block; an empty pending block gets a fresh timestamp before it is used.
    """

    def __init__(self, chain: CollegiumDevChain, account_keys: Sequence[PrivateKey]) -> None:
        self.chain = chain
        self.account_keys = tuple(account_keys)

    def reset_to_genesis(self, *args: Any, **kwargs: Any) -> None:
        """Raise ChainError: a persistent chain is never reset in place."""
        raise ChainError("the embedded chain is persistent; delete its directory to reset it")

    # -- timestamps: a block carries the time it was filled, never older than parent + 1

    def _refresh_pending_timestamp(self) -> None:
        # An empty pending block (no gas used: every transaction uses >= 21000) may have
        # been created long ago, at the previous mining; it was already >= parent + 1.
        header = self.chain.header
        now = int(time.time())
        if header.gas_used == 0 and now > header.timestamp:
            self.chain.set_header_timestamp(now)

    def send_raw_transaction(self, raw_transaction: bytes) -> Hash32:
        """Apply a signed raw transaction to the pending block; return its hash."""
        self._refresh_pending_timestamp()
        return super().send_raw_transaction(raw_transaction)  # type: ignore[no-any-return]

    def send_signed_transaction(self, signed_transaction: Any, block_number: Any = "latest") -> Any:
        """Apply a signed transaction dict to the pending block; return its hash."""
        self._refresh_pending_timestamp()
        return super().send_signed_transaction(signed_transaction, block_number)

    def send_transaction(self, transaction: Any) -> Any:
        """Sign with a known dev key and apply to the pending block; return its hash."""
        self._refresh_pending_timestamp()
        return super().send_transaction(transaction)

    def mine_blocks(self, num_blocks: int = 1, coinbase: bytes = b"\x00" * 20) -> tuple[Any, ...]:
        """Mine ``num_blocks`` blocks; return their hashes."""
        self._refresh_pending_timestamp()
        return tuple(super().mine_blocks(num_blocks, coinbase))

    # -- lookups by transaction hash through the index (eth-tester scans every block)

    def _find_transaction(self, transaction_hash: bytes) -> tuple[Any, Any, int] | None:
        chain = self.chain
        try:
            block_number, index = chain.chaindb.get_transaction_index(Hash32(transaction_hash))
            block = chain.get_canonical_block_by_number(block_number)
        except (TransactionNotFound, HeaderNotFound):
            return None
        if index >= len(block.transactions) or block.transactions[index].hash != transaction_hash:
            return None
        return block, block.transactions[index], index

    def get_transaction_by_hash(self, transaction_hash: bytes) -> Any:
        """Return the serialized transaction ``transaction_hash`` (mined or pending)."""
        found = self._find_transaction(transaction_hash)
        if found is None:
            return super().get_transaction_by_hash(transaction_hash)
        block, transaction, index = found
        return serialize_transaction(block, transaction, index, False)

    def get_transaction_receipt(self, transaction_hash: bytes) -> Any:
        """Return the serialized receipt of ``transaction_hash`` (mined or pending)."""
        found = self._find_transaction(transaction_hash)
        if found is None:
            return super().get_transaction_receipt(transaction_hash)
        block, transaction, index = found
        receipts = block.get_receipts(self.chain.chaindb)
        return serialize_transaction_receipt(
            block, receipts, transaction, index, False, self.chain.get_vm()
        )
