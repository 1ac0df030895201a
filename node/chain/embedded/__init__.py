"""The embedded chain: py-evm in-process, persisted in a directory, served through web3.py.

Layers, bottom up, one module each (only :mod:`node.chain.backend` imports this package;
this ``__init__`` re-exports every public name):

* ``db.py``: :class:`SqliteDB` -- a py-evm ``BaseDB`` over one sqlite3 table ``kv(key BLOB
  PRIMARY KEY, value BLOB)`` in WAL mode.
* :class:`SqliteAtomicDB` -- py-evm's ``AtomicDB`` over it; every ``atomic_batch`` is applied
  inside one sqlite transaction and committed once, and :meth:`SqliteAtomicDB.hold` widens
  that to one commit per RPC request (so one ``fsync`` per request, and a response is only
  returned once everything it reports is on disk).
* ``evm.py``: :class:`CollegiumDevChain` -- a post-merge ``MiningChain`` (Prague rules, like
  eth-tester's ``setup_tester_chain``) with its own chain id; ``CollegiumDevChain(db)``
  resumes at the stored canonical head.
* :class:`PersistentPyEVMBackend` -- eth-tester's ``PyEVMBackend`` around that chain, without
  its in-memory ``reset_to_genesis``.
* ``provider.py``: :class:`LockedEthereumTesterProvider` -- web3's ``EthereumTesterProvider``
  that serialises requests with a lock (FastAPI runs sync endpoints in a thread pool), waits
  for the wall clock past ``max_lead`` and resolves EIP-234 ``blockHash`` log queries;
  ``interrupt.py`` stops a read-only call past its time cap (:func:`interrupt_after`).
* ``jsonrpc.py``: the standard JSON-RPC answers for outside clients (``/rpc``; the provider
  itself speaks eth-tester's dialect: snake_case keys, int quantities) and their limits.
* ``directory.py``: the chain directory's layout, ``chain.json``, dev key and lock.
* ``facade.py``: :class:`EmbeddedChain` -- opens / creates a chain directory and ties the
  above together; :meth:`EmbeddedChain.json_rpc` answers through ``jsonrpc.py``.
* ``clock.py``: :class:`BlockClock` -- one empty block per second of wall time.

Crash safety. py-evm writes content-addressed trie nodes first and moves the canonical head
last, in its own ``atomic_batch``; each batch lands in one sqlite transaction, so after a
crash the database holds a prefix of the committed batches: the head is either the old block
or the new one, with everything it references. The pending block lives in memory only and
is rebuilt from the head on the next open. With ``synchronous=FULL`` (the default) a commit
is on stable storage before the RPC response leaves, so an acknowledged transaction survives
``kill -9`` and power loss; ``synchronous=NORMAL`` in WAL mode survives ``kill -9`` (the WAL
is in the OS page cache) but may lose the last commits on power loss -- never consistency.

Chain directory layout (constants in ``directory.py``): ``chain.sqlite3`` (+ ``-wal``/
``-shm``), ``chain.json`` (metadata), ``dev-key.hex`` (the genesis-funded dev key, mode
0600), ``LOCK`` (an ``flock`` held while the chain is open).
"""

from __future__ import annotations

from node.chain.embedded.clock import DEFAULT_BLOCK_SECONDS, DEFAULT_MAX_LEAD, BlockClock
from node.chain.embedded.db import (
    READ_CACHE_ENTRIES,
    SQLITE_CACHE_KIB,
    SqliteAtomicDB,
    SqliteDB,
    Synchronous,
)
from node.chain.embedded.directory import (
    CHAIN_DB_FILENAME,
    CHAIN_META_FILENAME,
    CHAIN_SCHEMA_VERSION,
    DEV_KEY_FILENAME,
    LOCK_FILENAME,
    ChainMeta,
    GenesisMismatchError,
    read_chain_meta,
)
from node.chain.embedded.evm import (
    COLLEGIUM_DEV_CHAIN_ID,
    DEV_GENESIS_WEI,
    GENESIS_FUND_WEI,
    GENESIS_GAS_LIMIT,
    CollegiumDevChain,
    PersistentPyEVMBackend,
    compute_genesis_params,
    compute_genesis_state,
)
from node.chain.embedded.facade import EmbeddedChain
from node.chain.embedded.interrupt import CallTimeout, interrupt_after
from node.chain.embedded.jsonrpc import (
    CALL_SLOT_WAIT,
    JSONRPC_EXECUTION_REVERTED,
    JSONRPC_INVALID_PARAMS,
    JSONRPC_LIMIT_EXCEEDED,
    JSONRPC_METHOD_NOT_FOUND,
    LOGS_BLOOM_BYTES,
    compute_json_rpc_value,
)
from node.chain.embedded.provider import LockedEthereumTesterProvider, compute_api_endpoints

__all__ = [
    "CALL_SLOT_WAIT",
    "CHAIN_DB_FILENAME",
    "CHAIN_META_FILENAME",
    "CHAIN_SCHEMA_VERSION",
    "COLLEGIUM_DEV_CHAIN_ID",
    "DEFAULT_BLOCK_SECONDS",
    "DEFAULT_MAX_LEAD",
    "DEV_GENESIS_WEI",
    "DEV_KEY_FILENAME",
    "GENESIS_FUND_WEI",
    "GENESIS_GAS_LIMIT",
    "JSONRPC_EXECUTION_REVERTED",
    "JSONRPC_INVALID_PARAMS",
    "JSONRPC_LIMIT_EXCEEDED",
    "JSONRPC_METHOD_NOT_FOUND",
    "LOCK_FILENAME",
    "LOGS_BLOOM_BYTES",
    "READ_CACHE_ENTRIES",
    "SQLITE_CACHE_KIB",
    "BlockClock",
    "CallTimeout",
    "ChainMeta",
    "CollegiumDevChain",
    "EmbeddedChain",
    "GenesisMismatchError",
    "LockedEthereumTesterProvider",
    "PersistentPyEVMBackend",
    "SqliteAtomicDB",
    "SqliteDB",
    "Synchronous",
    "compute_api_endpoints",
    "compute_genesis_params",
    "compute_genesis_state",
    "compute_json_rpc_value",
    "interrupt_after",
    "read_chain_meta",
]
