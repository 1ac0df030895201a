"""The embedded chain: py-evm in-process, persisted in a directory, served through web3.py.

Layers, bottom up (only :mod:`node.chain.backend` imports this module):

* :class:`SqliteDB` -- a py-evm ``BaseDB`` over one sqlite3 table ``kv(key BLOB PRIMARY KEY,
  value BLOB)`` in WAL mode.
* :class:`SqliteAtomicDB` -- py-evm's ``AtomicDB`` over it; every ``atomic_batch`` is applied
  inside one sqlite transaction and committed once, and :meth:`SqliteAtomicDB.hold` widens
  that to one commit per RPC request (so one ``fsync`` per request, and a response is only
  returned once everything it reports is on disk).
* :class:`CollegiumDevChain` -- a post-merge ``MiningChain`` (Prague rules, like eth-tester's
  ``setup_tester_chain``) with its own chain id; ``CollegiumDevChain(db)`` resumes at the
  stored canonical head.
* :class:`PersistentPyEVMBackend` -- eth-tester's ``PyEVMBackend`` around that chain, without
  its in-memory ``reset_to_genesis``.
* :class:`LockedEthereumTesterProvider` -- web3's ``EthereumTesterProvider`` that serialises
  requests with a lock (FastAPI runs sync endpoints in a thread pool).
* :class:`EmbeddedChain` -- opens / creates a chain directory and ties the above together;
  :meth:`EmbeddedChain.json_rpc` answers in standard JSON-RPC for outside clients (the
  provider itself speaks eth-tester's dialect: snake_case keys, int quantities).

Crash safety. py-evm writes content-addressed trie nodes first and moves the canonical head
last, in its own ``atomic_batch``; each batch lands in one sqlite transaction, so after a
crash the database holds a prefix of the committed batches: the head is either the old block
or the new one, with everything it references. The pending block lives in memory only and
is rebuilt from the head on the next open. With ``synchronous=FULL`` (the default) a commit
is on stable storage before the RPC response leaves, so an acknowledged transaction survives
``kill -9`` and power loss; ``synchronous=NORMAL`` in WAL mode survives ``kill -9`` (the WAL
is in the OS page cache) but may lose the last commits on power loss -- never consistency.

Chain directory layout (constants below): ``chain.sqlite3`` (+ ``-wal``/``-shm``),
``chain.json`` (metadata), ``dev-key.hex`` (the genesis-funded dev key, mode 0600),
``LOCK`` (an ``flock`` held while the chain is open).
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final, Literal

from eth.abc import AtomicWriteBatchAPI, BlockHeaderAPI
from eth.chains.base import MiningChain
from eth.db.atomic import AtomicDB
from eth.db.backends.base import BaseDB
from eth.exceptions import HeaderNotFound, TransactionNotFound
from eth.typing import AccountDetails
from eth.vm.forks import PragueVM
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_keys.datatypes import PrivateKey
from eth_tester import EthereumTester
from eth_tester.backends.pyevm import PyEVMBackend
from eth_tester.backends.pyevm.main import (
    get_default_genesis_params,
    serialize_transaction,
    serialize_transaction_receipt,
)
from eth_typing import Address, BlockNumber, ChecksumAddress, Hash32
from eth_utils import to_canonical_address, to_checksum_address
from web3 import EthereumTesterProvider, Web3
from web3.types import RPCEndpoint, RPCResponse, Wei

from node.chain.constants import EMBEDDED_CHAIN_ID, JSONRPC_SERVER_ERROR
from node.errors import ChainError, ConfigError

# --- Constants -------------------------------------------------------------------------------

COLLEGIUM_DEV_CHAIN_ID: Final = EMBEDDED_CHAIN_ID
"""Chain id of every embedded Collegium chain (EIP-155 replay domain of dev chains)."""

CHAIN_SCHEMA_VERSION: Final = 1
"""Version of the chain directory layout and of ``chain.json``."""

CHAIN_DB_FILENAME: Final = "chain.sqlite3"
CHAIN_META_FILENAME: Final = "chain.json"
DEV_KEY_FILENAME: Final = "dev-key.hex"
LOCK_FILENAME: Final = "LOCK"

GENESIS_GAS_LIMIT: Final = 30_029_122
"""Block gas limit, kept constant (eth-tester's value: mainnet's at the London fork)."""

GENESIS_FUND_WEI: Final = 1_000_000 * 10**18
"""Balance given to every address asked for (at genesis, or later by a dev-key transfer)."""

DEV_GENESIS_WEI: Final = 10**12 * 10**18
"""Genesis balance of the dev key: a million later fundings of :data:`GENESIS_FUND_WEI`."""

SQLITE_CACHE_KIB: Final = 64 * 1024
"""sqlite page cache per connection (KiB); trie reads are random, so a large cache pays."""

READ_CACHE_ENTRIES: Final = 50_000
"""Key/value pairs kept in a dict in front of sqlite (write-through; cleared when full).
Saves a SELECT per trie-node read (~70 per transfer); at most ~25 MB of trie nodes."""

DEFAULT_BLOCK_SECONDS: Final = 1.0
"""How often a node's block clock (:class:`BlockClock`) looks for a block to produce."""

DEFAULT_MAX_LEAD: Final = 5
"""Seconds a node's newest block may be stamped ahead of the wall clock (docs/operations.md):
a transaction that would make a block further ahead waits (at most this lead in a burst of
more than one transaction per second)."""

Synchronous = Literal["FULL", "NORMAL"]


# --- Storage ---------------------------------------------------------------------------------


class SqliteDB(BaseDB):
    """A py-evm key-value ``BaseDB`` over one sqlite3 table, in WAL mode.

    Writes go into an open sqlite transaction that :meth:`commit` ends; reads on the same
    connection see uncommitted writes. Not thread-safe by itself: callers serialise access
    (the provider lock of :class:`EmbeddedChain`).
    """

    def __init__(self, path: Path, synchronous: Synchronous = "FULL") -> None:
        self.path = path
        self._cache: dict[bytes, bytes] = {}
        # isolation_level=None: no implicit transactions, BEGIN/COMMIT are ours.
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(f"PRAGMA synchronous={synchronous}")
        self._conn.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB NOT NULL) "
            "WITHOUT ROWID"
        )

    @property
    def conn(self) -> sqlite3.Connection:
        """Return the open connection; raise ChainError once closed."""
        if self._conn is None:
            raise ChainError(f"chain database {self.path} is closed")
        return self._conn

    def _begin(self) -> sqlite3.Connection:
        conn = self.conn
        if not conn.in_transaction:
            conn.execute("BEGIN")
        return conn

    def __getitem__(self, key: bytes) -> bytes:
        value = self._cache.get(key)
        if value is not None:
            return value
        row = self.conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        value = bytes(row[0])
        self._remember(key, value)
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._begin().execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, value))
        self._remember(key, bytes(value))

    def __delitem__(self, key: bytes) -> None:
        self._cache.pop(key, None)
        cursor = self._begin().execute("DELETE FROM kv WHERE key = ?", (key,))
        if cursor.rowcount == 0:
            raise KeyError(key)

    def _exists(self, key: bytes) -> bool:
        if key in self._cache:
            return True
        row = self.conn.execute("SELECT 1 FROM kv WHERE key = ?", (key,)).fetchone()
        return row is not None

    def _remember(self, key: bytes, value: bytes) -> None:
        if len(self._cache) >= READ_CACHE_ENTRIES:
            self._cache.clear()
        self._cache[key] = value

    def commit(self) -> None:
        """Commit the open transaction, if any (one fsync with ``synchronous=FULL``)."""
        conn = self.conn
        if conn.in_transaction:
            conn.execute("COMMIT")

    def close(self) -> None:
        """Commit pending writes and close the connection; idempotent."""
        if self._conn is not None:
            self.commit()
            self._conn.close()
            self._conn = None
            self._cache.clear()


class SqliteAtomicDB(AtomicDB):
    """py-evm's ``AtomicDB`` whose batches each commit once, atomically, in sqlite.

    ``AtomicDB`` applies a finished batch key by key to the wrapped db; here those writes
    share one sqlite transaction, committed right after the batch -- or, inside
    :meth:`hold`, when the outermost hold ends. Writes outside any batch commit at once
    unless held.
    """

    wrapped_db: SqliteDB

    def __init__(self, wrapped_db: SqliteDB) -> None:
        super().__init__(wrapped_db)
        self._hold_depth = 0
        self.commits = 0

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.wrapped_db[key] = value
        self._commit_unless_held()

    def __delitem__(self, key: bytes) -> None:
        del self.wrapped_db[key]
        self._commit_unless_held()

    @contextmanager
    def atomic_batch(self) -> Iterator[AtomicWriteBatchAPI]:
        """Yield a write batch; on clean exit apply it in one sqlite transaction and commit."""
        with super().atomic_batch() as batch:
            yield batch
        self._commit_unless_held()

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Defer commits until the outermost ``hold`` exits, then commit once (also on error).

        An error leaves py-evm's in-memory state pointing at what was already written, so
        the written prefix is committed rather than rolled back; it is consistent anyway.
        """
        self._hold_depth += 1
        try:
            yield
        finally:
            self._hold_depth -= 1
            self._commit_unless_held()

    def _commit_unless_held(self) -> None:
        if self._hold_depth == 0 and self.wrapped_db.conn.in_transaction:
            self.wrapped_db.commit()
            self.commits += 1


# --- Chain -----------------------------------------------------------------------------------


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


class CallTimeout(Exception):  # noqa: N818 -- it is what the caller sees: the call timed out
    """A read-only call ran past its time cap and was stopped (raised by interrupt_after)."""


@contextmanager
def interrupt_after(seconds: float) -> Iterator[None]:
    """Raise CallTimeout in this thread if the block still runs after ``seconds``.

    py-evm (and py_ecc behind its pairing precompiles) is pure Python and has no way to
    stop a computation from outside; CPython can raise an exception in another thread at its
    next bytecode boundary (``PyThreadState_SetAsyncExc``), which unwinds py-evm's frames
    like any error. The caller catches CallTimeout around this block: the exception can
    land anywhere inside it, or in its exit, never after (a pending one is withdrawn under
    the same lock that guards raising it). Use it only around code that writes nothing.
    """
    thread_id = ctypes.c_ulong(threading.get_ident())
    guard = threading.Lock()
    armed = True

    def fire() -> None:
        with guard:
            if armed:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(thread_id, ctypes.py_object(CallTimeout))

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        with guard:
            armed = False
            ctypes.pythonapi.PyThreadState_SetAsyncExc(thread_id, None)  # withdraw, if pending
        timer.cancel()


# --- Metadata and files ----------------------------------------------------------------------


@dataclass(frozen=True)
class ChainMeta:
    """The contents of ``chain.json``."""

    schema_version: int
    chain_id: int
    genesis_hash: str

    def to_json(self) -> str:
        """Return the canonical JSON text of this metadata."""
        return json.dumps(
            {
                "schema_version": self.schema_version,
                "chain_id": self.chain_id,
                "genesis_hash": self.genesis_hash,
            },
            indent=2,
            sort_keys=True,
        )


def read_chain_meta(path: Path) -> ChainMeta:
    """Return the metadata stored at ``path``; raise ConfigError if unreadable or malformed."""
    try:
        raw = json.loads(path.read_text())
        return ChainMeta(
            schema_version=int(raw["schema_version"]),
            chain_id=int(raw["chain_id"]),
            genesis_hash=str(raw["genesis_hash"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot read chain metadata {path}: {exc}") from exc


def _write_file_atomically(path: Path, data: str, mode: int = 0o644) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _load_or_create_dev_key(path: Path, create: bool) -> LocalAccount:
    """Return the dev account kept at ``path``, creating a random one if ``create``."""
    if not path.exists():
        if not create:
            raise ConfigError(f"chain directory lacks its dev key {path}")
        _write_file_atomically(path, "0x" + secrets.token_hex(32) + "\n", mode=0o600)
    try:
        account: LocalAccount = Account.from_key(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read dev key {path}: {exc}") from exc
    return account


# --- Standard JSON-RPC answers ----------------------------------------------------------------

JSONRPC_EXECUTION_REVERTED: Final = 3
JSONRPC_METHOD_NOT_FOUND: Final = -32601
JSONRPC_INVALID_PARAMS: Final = -32602
JSONRPC_LIMIT_EXCEEDED: Final = -32005  # EIP-1474 "limit exceeded"
CALL_SLOT_WAIT: Final = 0.5
"""Seconds an outside eth_call waits for the one running before it (short ones take ms)."""
LOGS_BLOOM_BYTES: Final = 256


def compute_json_rpc_value(value: Any) -> Any:
    """Return ``value`` as standard JSON-RPC: ints as 0x quantities, bytes as 0x data,
    remaining snake_case keys in camelCase; bools, strings, floats and None unchanged."""
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        return value
    if isinstance(value, int):
        return hex(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "0x" + bytes(value).hex()
    if isinstance(value, Mapping):
        out = {_camel(str(k)): compute_json_rpc_value(v) for k, v in value.items()}
        bloom = value.get("logsBloom", value.get("logs_bloom"))
        if isinstance(bloom, int) and not isinstance(bloom, bool):
            out["logsBloom"] = "0x" + bloom.to_bytes(LOGS_BLOOM_BYTES, "big").hex()
        return out
    if isinstance(value, list | tuple):
        return [compute_json_rpc_value(item) for item in value]
    return value


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


class GenesisMismatchError(ConfigError):
    """A chain directory holds a different chain than expected."""

    def __init__(self, chain_dir: Path, expected: str, actual: str) -> None:
        super().__init__(
            f"chain directory {chain_dir} holds genesis {actual}, expected {expected}; "
            "refusing to open it (wrong data dir, or a chain from another setup)"
        )
        self.expected = expected
        self.actual = actual


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
        lock_file = _acquire_dir_lock(chain_dir / LOCK_FILENAME)
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
        dev_account = _load_or_create_dev_key(chain_dir / DEV_KEY_FILENAME, create=creating)
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
                _write_file_atomically(meta_path, meta.to_json() + "\n")
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
            refusal = self._refuse_foreign_transaction(params)
            if refusal is not None:
                return {"jsonrpc": "2.0", "id": request_id, "error": refusal}
        if call_time_cap is None or method not in ("eth_call", "eth_estimateGas"):
            return self._json_rpc(method, params, request_id, None)
        if not self._call_slot.acquire(timeout=min(CALL_SLOT_WAIT, call_time_cap)):
            message = "the node is busy with another eth_call/eth_estimateGas; retry"
            error = {"code": JSONRPC_LIMIT_EXCEEDED, "message": message}
            return {"jsonrpc": "2.0", "id": request_id, "error": error}
        try:
            return self._json_rpc(method, params, request_id, call_time_cap)
        finally:
            self._call_slot.release()

    def _refuse_foreign_transaction(self, params: Any) -> dict[str, Any] | None:
        """Return the JSON-RPC error for a raw transaction not signed for this chain, or None.

        py-evm mines a transaction signed for any chain id, and a legacy one signed without
        any (pre-EIP-155): both could be replayed here from another chain.
        """
        from eth_utils import to_bytes

        try:
            raw = to_bytes(hexstr=str(params[0]))
            chain_id = self.backend.chain.get_vm().get_transaction_builder().decode(raw).chain_id
        except Exception as exc:  # noqa: BLE001 -- anything undecodable is refused
            return {"code": JSONRPC_INVALID_PARAMS, "message": f"not a signed transaction: {exc}"}
        if chain_id == self.chain_id:
            return None
        signed_for = "no chain id (pre-EIP-155)" if chain_id is None else f"chain id {chain_id}"
        message = (
            f"transaction signed for {signed_for}; this chain accepts only chain id "
            f"{self.chain_id} (EIP-155)"
        )
        return {"code": JSONRPC_INVALID_PARAMS, "message": message}

    def _json_rpc(
        self, method: str, params: Any, request_id: Any, time_cap: float | None
    ) -> dict[str, Any]:
        from web3.providers.eth_tester.middleware import request_formatters, result_formatters

        envelope: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id}
        try:
            args = list(params) if isinstance(params, list | tuple) else []
            if method in ("eth_call", "eth_estimateGas") and args and isinstance(args[0], dict):
                # eth-tester needs a sender that can pay for the call's gas: the dev key.
                args[0] = {"from": self.dev_address, **args[0]}
                if len(args) > 1 and args[1] == "pending":
                    # every transaction is mined at once: "pending" state equals "latest",
                    # and eth-tester has no pending estimate (it answers -32601)
                    args[1] = "latest"
            request_formatter = request_formatters.get(RPCEndpoint(method))
            if request_formatter is not None:
                args = list(request_formatter(args))
            response = self.provider.make_timed_request(RPCEndpoint(method), args, time_cap)
            if "error" in response:
                error = dict(response["error"])
                if str(error.get("message", "")).startswith("Unknown RPC Endpoint"):
                    error["code"] = JSONRPC_METHOD_NOT_FOUND
                envelope["error"] = error
                return envelope
            result = response.get("result")
            result_formatter = (result_formatters or {}).get(RPCEndpoint(method))
            if result_formatter is not None:
                result = result_formatter(result)
            result = compute_json_rpc_value(result)
            if method == "eth_getTransactionReceipt" and isinstance(result, dict):
                result.pop("stateRoot", None)  # eth-tester's placeholder; post-Byzantium: none
            envelope["result"] = result
        except ChainError:
            raise
        except CallTimeout:
            message = f"{method} stopped after {time_cap:g}s, this node's limit (rpc_call_timeout)"
            envelope["error"] = {"code": JSONRPC_LIMIT_EXCEEDED, "message": message}
        except Exception as exc:  # noqa: BLE001 -- every failure becomes a JSON-RPC error
            message = str(exc) or type(exc).__name__
            code = (
                JSONRPC_EXECUTION_REVERTED
                if message.startswith("execution reverted")
                else JSONRPC_SERVER_ERROR
            )
            envelope["error"] = {"code": code, "message": message}
        return envelope

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


class BlockClock:
    """A thread that produces the embedded chain's blocks on the wall clock.

    Every ``interval`` seconds it mines one empty block stamped now, unless a block already
    carries this second or a later one (:meth:`EmbeddedChain.tick`). With transactions mined
    as they come, the chain has a block for every second the node runs: an epoch of ``N``
    blocks lasts about ``N`` seconds, confirmations count seconds, and a restart resumes with
    one block stamped now (no burst). Stop it before closing the chain.
    """

    def __init__(self, chain: EmbeddedChain, interval: float = DEFAULT_BLOCK_SECONDS) -> None:
        if interval <= 0:
            raise ConfigError(f"block interval must be positive, got {interval}")
        self.chain = chain
        self.interval = interval
        self.blocks_mined = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="block-clock", daemon=True)

    def start(self) -> None:
        """Start producing blocks."""
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread and wait for it (idempotent)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.chain.tick():
                    self.blocks_mined += 1
            except ChainError:
                return  # closed under us
            except Exception:  # noqa: BLE001 -- a failed tick is retried on the next one
                import logging

                logging.getLogger(__name__).exception("block clock tick failed")
            self._stop.wait(self.interval)


def _genesis_hash_hex(chain: CollegiumDevChain) -> str:
    return "0x" + bytes(chain.get_canonical_block_header_by_number(BlockNumber(0)).hash).hex()


def _acquire_dir_lock(path: Path) -> IO[str]:
    """Return the open lock file of a chain dir; raise ConfigError if another process has it."""
    handle = open(path, "a+")  # noqa: SIM115 -- kept open while the chain is open
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        handle.close()
        raise ConfigError(f"chain directory {path.parent} is in use by another process") from exc
    return handle
