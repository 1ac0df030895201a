"""The embedded chain's facade: :class:`EmbeddedChain` opens or creates a chain directory
and ties storage, py-evm backend, locked provider and JSON-RPC answers together.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from eth.exceptions import HeaderNotFound
from eth_account.signers.local import LocalAccount
from eth_keys.datatypes import PrivateKey
from eth_tester import EthereumTester
from eth_typing import BlockNumber, ChecksumAddress, Hash32
from eth_utils import to_checksum_address
from web3 import Web3
from web3.types import Wei

from node.chain.embedded.db import SqliteAtomicDB, SqliteDB, Synchronous
from node.chain.embedded.directory import (
    CHAIN_DB_FILENAME,
    CHAIN_META_FILENAME,
    CHAIN_SCHEMA_VERSION,
    DEV_KEY_FILENAME,
    LOCK_FILENAME,
    ChainMeta,
    GenesisMismatchError,
    acquire_dir_lock,
    load_or_create_dev_key,
    read_chain_meta,
    write_file_atomically,
)
from node.chain.embedded.evm import (
    COLLEGIUM_DEV_CHAIN_ID,
    GENESIS_FUND_WEI,
    CollegiumDevChain,
    PersistentPyEVMBackend,
    compute_genesis_params,
    compute_genesis_state,
)
from node.chain.embedded.jsonrpc import (
    CALL_SLOT_WAIT,
    JSONRPC_LIMIT_EXCEEDED,
    answer_json_rpc,
    compute_foreign_transaction_refusal,
)
from node.chain.embedded.provider import LockedEthereumTesterProvider
from node.errors import ChainError, ConfigError


class EmbeddedChain:
    """A persistent py-evm chain in a directory, with a thread-safe web3 provider.

    Use :meth:`open`; then :attr:`w3` for everything, :meth:`mine` / :meth:`fund` for dev
    and test chores, :meth:`close` at the end (also a context manager).
    """

    def __init__(
        self,
        chain_dir: Path,
        lock_file: IO[str],
        db: SqliteAtomicDB,
        chain: CollegiumDevChain,
        dev_account: LocalAccount,
        meta: ChainMeta,
    ) -> None:
        self.chain_dir = chain_dir
        self.meta = meta
        self.dev_account = dev_account
        self._lock_file: IO[str] | None = lock_file
        self._db = db
        self._lock = threading.RLock()
        self._call_slot = threading.Semaphore(1)  # outside eth_call/eth_estimateGas, one at a time
        self._open = True
        self.backend = PersistentPyEVMBackend(chain, [PrivateKey(bytes(dev_account.key))])
        self.tester = EthereumTester(backend=self.backend, auto_mine_transactions=True)
        self.provider = LockedEthereumTesterProvider(
            self.tester, self._lock, db, lambda: self._open, meta.chain_id
        )
        self.w3 = Web3(self.provider)

    # -- opening

    @classmethod
    def open(
        cls,
        chain_dir: Path,
        fund: Sequence[str] = (),
        *,
        expected_genesis_hash: str | None = None,
        synchronous: Synchronous = "FULL",
    ) -> EmbeddedChain:
        """Return the chain kept in ``chain_dir``, creating it from genesis on first use.

        On creation every address in ``fund`` gets :data:`GENESIS_FUND_WEI` (the dev key
        :data:`DEV_GENESIS_WEI`).
        On later opens, addresses in ``fund`` with a zero balance get the same from the dev
        key (one transfer each). Raise ConfigError if the directory is in use by another
        process, is incomplete, or holds another chain (:class:`GenesisMismatchError`: its
        genesis differs from ``chain.json`` or from ``expected_genesis_hash``).
        """
        chain_dir.mkdir(parents=True, exist_ok=True)
        lock_file = acquire_dir_lock(chain_dir / LOCK_FILENAME)
        try:
            self = cls._open_locked(chain_dir, lock_file, fund, synchronous)
        except BaseException:
            lock_file.close()
            raise
        try:
            if expected_genesis_hash is not None and (
                expected_genesis_hash.lower() != self.meta.genesis_hash
            ):
                raise GenesisMismatchError(
                    chain_dir, expected_genesis_hash.lower(), self.meta.genesis_hash
                )
            for address in fund:
                if self.w3.eth.get_balance(to_checksum_address(address)) == 0:
                    self.fund(to_checksum_address(address), GENESIS_FUND_WEI)
        except BaseException:
            self.close()
            raise
        return self

    @classmethod
    def _open_locked(
        cls,
        chain_dir: Path,
        lock_file: IO[str],
        fund: Sequence[str],
        synchronous: Synchronous,
    ) -> EmbeddedChain:
        db_path = chain_dir / CHAIN_DB_FILENAME
        meta_path = chain_dir / CHAIN_META_FILENAME
        creating = not meta_path.exists()
        if creating and db_path.exists() and db_path.stat().st_size > 0:
            raise ConfigError(
                f"{db_path} exists without {CHAIN_META_FILENAME} (interrupted creation or a "
                "foreign file); move the chain directory away to start a new chain"
            )
        dev_account = load_or_create_dev_key(chain_dir / DEV_KEY_FILENAME, create=creating)
        db = SqliteAtomicDB(SqliteDB(db_path, synchronous))
        try:
            if creating:
                created = CollegiumDevChain.from_genesis(
                    db,
                    compute_genesis_params(int(time.time())),
                    compute_genesis_state(dev_account.address, fund),
                )
                assert isinstance(created, CollegiumDevChain)
                chain = created
                db.wrapped_db.commit()
                meta = ChainMeta(
                    schema_version=CHAIN_SCHEMA_VERSION,
                    chain_id=COLLEGIUM_DEV_CHAIN_ID,
                    genesis_hash=_genesis_hash_hex(chain),
                )
                write_file_atomically(meta_path, meta.to_json() + "\n")
            else:
                meta = read_chain_meta(meta_path)
                if meta.schema_version != CHAIN_SCHEMA_VERSION:
                    raise ConfigError(
                        f"{meta_path}: schema version {meta.schema_version}, this node "
                        f"reads {CHAIN_SCHEMA_VERSION}"
                    )
                if meta.chain_id != COLLEGIUM_DEV_CHAIN_ID:
                    raise ConfigError(
                        f"{meta_path}: chain id {meta.chain_id}, expected {COLLEGIUM_DEV_CHAIN_ID}"
                    )
                try:
                    chain = CollegiumDevChain(db)
                except HeaderNotFound as exc:
                    raise ConfigError(f"{db_path} holds no chain: {exc}") from exc
                actual = _genesis_hash_hex(chain)
                if actual != meta.genesis_hash.lower():
                    raise GenesisMismatchError(chain_dir, meta.genesis_hash.lower(), actual)
        except BaseException:
            db.wrapped_db.close()
            raise
        return cls(chain_dir, lock_file, db, chain, dev_account, meta)

    # -- properties

    @property
    def chain_id(self) -> int:
        """Return the EIP-155 chain id."""
        return self.meta.chain_id

    @property
    def genesis_hash(self) -> str:
        """Return the genesis block hash as 0x-hex."""
        return self.meta.genesis_hash

    @property
    def dev_address(self) -> ChecksumAddress:
        """Return the address of the genesis-funded dev key."""
        return to_checksum_address(self.dev_account.address)

    @property
    def is_open(self) -> bool:
        """Return whether the chain is still open."""
        return self._open

    @property
    def commits(self) -> int:
        """Return how many sqlite commits this chain made since it was opened."""
        return self._db.commits

    # -- standard JSON-RPC (for serving the embedded chain to outside clients)

    def json_rpc(
        self,
        method: str,
        params: Any,
        request_id: Any = None,
        *,
        call_time_cap: float | None = None,
    ) -> dict[str, Any]:
        """Return the standard JSON-RPC 2.0 response object for one request.

        Hex params are decoded and results encoded as a real node would (camelCase keys, 0x
        quantities) -- the provider's own ``make_request`` speaks eth-tester's dialect
        (snake_case, ints). Failures become JSON-RPC errors, never exceptions: code 3 for a
        revert, -32601 for an unknown method, -32602 for a raw transaction not signed for
        this chain (EIP-155), -32005 for a call past ``call_time_cap``, -32000 otherwise.
        Raise ChainError only if the chain is closed.

        With ``call_time_cap`` (outside clients), ``eth_call`` and ``eth_estimateGas`` run one
        at a time and each is stopped once it has held the chain for that many seconds; one
        waiting more than :data:`CALL_SLOT_WAIT` for its turn is refused (-32005) instead of
        queueing, so that a queue of long calls never holds the chain lock back to back
        (Python's lock is not fair: a waiting ``/health`` could lose it to each next one).
        """
        self._ensure_open()
        if method == "eth_sendRawTransaction":
            refusal = compute_foreign_transaction_refusal(params, self.backend.chain, self.chain_id)
            if refusal is not None:
                return {"jsonrpc": "2.0", "id": request_id, "error": refusal}
        if call_time_cap is None or method not in ("eth_call", "eth_estimateGas"):
            return answer_json_rpc(
                self.provider.make_timed_request, self.dev_address, method, params, request_id, None
            )
        if not self._call_slot.acquire(timeout=min(CALL_SLOT_WAIT, call_time_cap)):
            message = "the node is busy with another eth_call/eth_estimateGas; retry"
            error = {"code": JSONRPC_LIMIT_EXCEEDED, "message": message}
            return {"jsonrpc": "2.0", "id": request_id, "error": error}
        try:
            return answer_json_rpc(
                self.provider.make_timed_request,
                self.dev_address,
                method,
                params,
                request_id,
                call_time_cap,
            )
        finally:
            self._call_slot.release()

    # -- dev chores

    def mine(self, blocks: int = 1) -> int:
        """Mine ``blocks`` empty blocks in one commit; return the new head block number."""
        if blocks < 0:
            raise ChainError(f"cannot mine {blocks} blocks")
        with self._lock:
            self._ensure_open()
            with self._db.hold():
                if blocks:
                    self.tester.mine_blocks(blocks)
                return int(self.backend.chain.get_canonical_head().block_number)

    @property
    def max_lead(self) -> float | None:
        """Return how far ahead of the wall clock a new block may be stamped (None: no bound).

        A transaction mines its block at once, stamped ``max(now, parent + 1)``; several per
        second push stamps ahead, so past this lead a transaction waits for the clock. A node
        sets it (``Settings.chain_max_lead``); a bare chain (tests, benchmarks) has no bound.
        :meth:`mine` ignores it (a dev chore that moves time on by as many seconds).
        """
        return self.provider.max_lead

    @max_lead.setter
    def max_lead(self, seconds: float | None) -> None:
        self.provider.max_lead = seconds

    def head_timestamp(self) -> int:
        """Return the timestamp of the newest block (unix seconds)."""
        with self._lock:
            self._ensure_open()
            return int(self.backend.chain.get_canonical_head().timestamp)

    def tick(self) -> bool:
        """Mine one empty block stamped now if the newest block is older; return whether a
        block was mined. Never stamps ahead of the wall clock."""
        with self._lock:
            self._ensure_open()
            stamp = int(time.time())
            if stamp <= int(self.backend.chain.get_canonical_head().timestamp):
                return False
            with self._db.hold():
                self.backend.chain.set_header_timestamp(stamp)
                self.tester.mine_blocks(1)
            return True

    def fund(self, address: ChecksumAddress, wei: int) -> Hash32:
        """Send ``wei`` from the dev key to ``address``; return the mined transaction hash.

        Raise ChainError if the transfer fails (e.g. the dev key ran dry).
        """
        try:
            tx_hash = self.w3.eth.send_transaction(
                {"from": self.dev_address, "to": address, "value": Wei(wei)}
            )
            receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
        except ChainError:
            raise
        except Exception as exc:
            raise ChainError(f"cannot fund {address} with {wei} wei: {exc}") from exc
        if receipt["status"] != 1:
            raise ChainError(f"funding transfer to {address} reverted")
        return Hash32(bytes(tx_hash))

    # -- closing

    def _ensure_open(self) -> None:
        if not self._open:
            raise ChainError("the embedded chain is closed")

    def close(self) -> None:
        """Commit, close the database and release the directory lock; idempotent."""
        with self._lock:
            if not self._open:
                return
            self._open = False
            self._db.wrapped_db.close()
            if self._lock_file is not None:
                self._lock_file.close()
                self._lock_file = None

    def __enter__(self) -> EmbeddedChain:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _genesis_hash_hex(chain: CollegiumDevChain) -> str:
    return "0x" + bytes(chain.get_canonical_block_header_by_number(BlockNumber(0)).hash).hex()
