"""Bench: a node joining a registry with a long history (issue 15, item 4).

Run by hand (not a test)::

    PYTHONPATH=. python bench/long_history.py             # quick: 500 anchors, 2,000 blocks
    PYTHONPATH=. python bench/long_history.py --anchors 100000 --blocks 1000000  # issue's size

1. **History.** A real anvil on 127.0.0.1; an operator deploys the registry
   (``Registry.deploy``, as ``node/devnet.py`` does) and ``--writers`` throwaway wallets register
   as nodes. With anvil's automine off, ``--anchors`` ``anchor("", root, treeSize, count, cid)``
   transactions are signed locally (eth-account, fixed gas, consecutive nonces per writer, no
   estimate), sent ``--per-block`` at a time in one JSON-RPC batch request, mined into one block
   with ``evm_mine``, and followed by ``anvil_mine`` of empty blocks so that the anchors are
   spread evenly over ``--blocks`` blocks. The CIDs are well-formed (CIDv1 of random bytes) but
   nothing stands behind them: no node serves those batches.
2. **Start-up recovery, side by side.** What a node joining with a fresh data dir does before
   it serves (``node.ledger.recovery.adopt_own_anchors``: find this node's own anchors on-chain),
   each run in a child process of its own against the history (a new key, a fresh SQLite
   index, a real store): this tree's function (``Anchored`` logs of the node's topic), then
   the function of ``--baseline-commit`` (main's 8687694, loaded from git: one ``getAnchor``
   call per anchor on-chain), then this tree's again. Each child reports the step's seconds,
   its JSON-RPC requests by method, its RSS before the step and its peak RSS (``VmHWM``).
   ``--no-baseline-recovery`` skips the old function (minutes at 10,000s of anchors).
3. **Join.** A fresh node: ``collegium init --registry … --chain <anvil>`` then
   ``collegium up`` as a real process (automine back on so its registration is mined). Its
   ``/health`` is polled every ``--poll`` seconds and ``VmRSS``/``VmHWM`` read from
   ``/proc/<pid>/status`` until the chain follower's ``index.lag`` is at most
   ``--caught-up-lag`` blocks.

   With ``--baseline-tree DIR`` (a checkout of older code) a node of that code joins the same
   chain first, measured until its first ``/health`` only.

Printed: the generation time, the recovery step (both versions), the time to the first
``/health``, the time to index to the head,
the node's peak RSS (``VmHWM``) and RSS after catching up, the ``/health`` samples (``index``,
``status``, ``reasons``, ``sync``) and the node's log lines about the follower. ``--json`` writes
the same as JSON. Everything started is stopped at the end (``--keep`` leaves the data dir).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import types
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from eth_abi import encode
from eth_account import Account
from eth_utils import function_signature_to_4byte_selector

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from node.devnet import ANVIL_BIN, free_port, get_json  # noqa: E402

ANCHOR_GAS = 250_000  # an anchor uses ~175-190k (docs/benchmarks.md, "Gas per registry call")
GAS_PRICE = 10**9 * 20
BLOCK_GAS_LIMIT = 30_000_000  # anvil's default
FUNDS = 10**24
EPOCH_PERIOD = 100  # node.config.DEFAULT_EPOCH_PERIOD
ANCHOR_SIGNATURE = "anchor(string,bytes32,uint64,uint64,string)"
ANCHOR_SELECTOR = function_signature_to_4byte_selector(ANCHOR_SIGNATURE)
LEAVES_PER_ANCHOR = 8
#: anvil keeps an in-memory state per block unless pruned, and its mining slows with each one
#: kept (quadratic in the history: 10,000 empty blocks took minutes); the joining node reads
#: blocks, logs and the latest state only
ANVIL_KEPT_STATES = 64
REPO = Path(__file__).resolve().parents[1]
BASELINE_COMMIT = "8687694"  # main before the recovery read logs (one getAnchor per anchor)


def anvil_rpc(url: str, method: str, params: list[Any] | None = None) -> Any:
    """Call ``method`` on anvil and return the result (a long timeout: ``anvil_mine`` of many
    blocks takes a while, see the module docstring)."""
    return rpc_batch(url, [(method, params or [])])[0]


def rpc_batch(url: str, calls: list[tuple[str, list[Any]]]) -> list[Any]:
    """Send ``calls`` as one JSON-RPC batch request; return the results in order."""
    body = json.dumps(
        [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
    )
    request = urllib.request.Request(url, body.encode(), {"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=3600) as response:  # noqa: S310 - loopback
        replies = sorted(json.loads(response.read()), key=lambda r: r["id"])
    errors = [r["error"] for r in replies if "error" in r]
    if errors:
        raise RuntimeError(f"{len(errors)} of {len(calls)} calls failed, e.g. {errors[0]}")
    return [r["result"] for r in replies]


def fake_cid(data: bytes) -> str:
    """Return a well-formed CID of ``data`` (raw leaf, sha-256) that no store holds."""
    from node.ledger.verifier import compute_leaf_cid

    return str(compute_leaf_cid(data))


def start_anvil(port: int, gas_limit: int) -> subprocess.Popen[bytes]:
    args = [str(ANVIL_BIN), "--host", "127.0.0.1", "--port", str(port), "--silent",
            "--gas-limit", str(gas_limit), "--prune-history", str(ANVIL_KEPT_STATES)]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            anvil_rpc(f"http://127.0.0.1:{port}", "eth_chainId")
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("anvil did not start")


def deploy(url: str, writers: int) -> tuple[str, list[Any]]:
    """Deploy the registry and register ``writers`` nodes; return its address and the writers."""
    from web3 import Web3

    from node.chain.registry import Registry

    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 60}))
    operator = Account.create()
    anvil_rpc(url, "anvil_setBalance", [operator.address, hex(FUNDS)])
    registry = Registry.deploy(w3, operator, EPOCH_PERIOD)
    accounts = [Account.create() for _ in range(writers)]
    for i, account in enumerate(accounts):
        anvil_rpc(url, "anvil_setBalance", [account.address, hex(FUNDS)])
        # an endpoint nobody answers on: the joining node's syncer finds no batch there
        Registry(w3, registry.address, account).register_node(
            f"http://127.0.0.1:9/writer{i}", 1, 1, "main"
        )
    return str(registry.address), accounts


def make_history(
    url: str, registry: str, writers: list[Any], anchors: int, blocks: int, per_block: int
) -> dict[str, Any]:
    """Anchor ``anchors`` batches spread over about ``blocks`` blocks; return timings."""
    chain_id = int(anvil_rpc(url, "eth_chainId"), 16)
    anvil_rpc(url, "evm_setAutomine", [False])
    nonces = [int(anvil_rpc(url, "eth_getTransactionCount", [w.address, "pending"]), 16)
              for w in writers]  # fmt: skip
    tree_sizes = [0] * len(writers)
    start_block = int(anvil_rpc(url, "eth_blockNumber"), 16)
    chunks = -(-anchors // per_block)
    gap = max(0, (blocks - start_block - chunks) // max(chunks, 1))
    sign_s = send_s = mine_s = 0.0
    t0 = time.monotonic()
    done = 0
    for chunk in range(chunks):
        t = time.monotonic()
        raws = []
        for _ in range(min(per_block, anchors - done)):
            w = done % len(writers)
            tree_sizes[w] += LEAVES_PER_ANCHOR
            root = secrets.token_bytes(32)
            cid = fake_cid(b"batch %d " % done + root)
            data = ANCHOR_SELECTOR + encode(
                ["string", "bytes32", "uint64", "uint64", "string"],
                ["", root, tree_sizes[w], LEAVES_PER_ANCHOR, cid],
            )
            tx = {"nonce": nonces[w], "gasPrice": GAS_PRICE, "gas": ANCHOR_GAS, "to": registry,
                  "value": 0, "data": data, "chainId": chain_id}  # fmt: skip
            nonces[w] += 1
            raws.append("0x" + bytes(writers[w].sign_transaction(tx).raw_transaction).hex())
            done += 1
        sign_s += time.monotonic() - t
        t = time.monotonic()
        rpc_batch(url, [("eth_sendRawTransaction", [raw]) for raw in raws])
        send_s += time.monotonic() - t
        t = time.monotonic()
        anvil_rpc(url, "evm_mine")
        while int(anvil_rpc(url, "txpool_status")["pending"], 16):
            anvil_rpc(url, "evm_mine")  # the block was full: mine the rest
        if gap and chunk < chunks - 1:
            anvil_rpc(url, "anvil_mine", [hex(gap)])
        mine_s += time.monotonic() - t
        if chunk % 50 == 0 or chunk == chunks - 1:
            head = int(anvil_rpc(url, "eth_blockNumber"), 16)
            print(f"  history: {done}/{anchors} anchors, head {head}, "
                  f"{time.monotonic() - t0:.0f}s", flush=True)  # fmt: skip
    head = int(anvil_rpc(url, "eth_blockNumber"), 16)
    if head < blocks:
        anvil_rpc(url, "anvil_mine", [hex(blocks - head)])
    anvil_rpc(url, "evm_setAutomine", [True])
    return {
        "seconds": round(time.monotonic() - t0, 1),
        "sign_seconds": round(sign_s, 1),
        "send_seconds": round(send_s, 1),
        "mine_seconds": round(mine_s, 1),
        "head": int(anvil_rpc(url, "eth_blockNumber"), 16),
        "empty_blocks_between": gap,
    }


def count_anchors(url: str, registry: str) -> int:
    selector = "0x" + function_signature_to_4byte_selector("anchorCount()").hex()
    return int(anvil_rpc(url, "eth_call", [{"to": registry, "data": selector}, "latest"]), 16)


def proc_status(pid: int) -> dict[str, int]:
    """Return ``VmRSS`` and ``VmHWM`` of ``pid`` in KiB (empty if it is gone)."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def load_baseline_recovery(commit: str) -> types.ModuleType:
    """Return ``node/ledger/recovery.py`` as it was at ``commit`` (from git), as a module."""
    source = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{commit}:node/ledger/recovery.py"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    module = types.ModuleType(f"recovery_at_{commit}")
    module.__file__ = f"{commit}:node/ledger/recovery.py"
    exec(compile(source, module.__file__, "exec"), module.__dict__)  # noqa: S102 - our own code
    return module


def recovery_child(variant: str, url: str, registry: str, commit: str) -> dict[str, Any]:
    """Time one start-up recovery of a new node (fresh index) in this process; ``variant``
    is "tree" (this tree's function) or "baseline" (``commit``'s)."""
    from sqlalchemy.orm import Session

    from node.chain.backend import open_rpc
    from node.chain.registry import Registry
    from node.db.session import create_db_engine, make_session_factory, upgrade_database
    from node.ledger import recovery
    from node.storage import open_store

    base = Path(tempfile.mkdtemp(prefix="collegium-recovery-"))
    try:
        db_url = f"sqlite:///{base / 'index.sqlite'}"
        upgrade_database(db_url)
        sessions = make_session_factory(create_db_engine(db_url))
        store = open_store(base / "blocks")
        module = recovery if variant == "tree" else load_baseline_recovery(commit)
        chain = open_rpc(url)  # the node's own provider (FailoverProvider), counted
        provider: Any = chain.w3.provider
        counts: Counter[str] = Counter()
        send = provider.request_bytes

        def counted(method: str, body: bytes) -> bytes:
            counts[method] += 1
            return bytes(send(method, body))

        provider.request_bytes = counted  # every request of the provider passes here
        node_address = Account.create().address

        def own_log(_session: Session) -> list[bytes]:
            return []

        rss_before = proc_status(os.getpid())
        t0 = time.perf_counter()
        with sessions() as session:
            adopted = module.adopt_own_anchors(
                session, registry=Registry(chain.w3, registry), store=store,
                node_address=node_address, own_log=own_log,
            )  # fmt: skip
        seconds = time.perf_counter() - t0
        after = proc_status(os.getpid())
        return {
            "variant": variant if variant == "tree" else f"baseline {commit}",
            "seconds": round(seconds, 2),
            "adopted": adopted,
            "requests": dict(counts),
            "rss_before_mib": round(rss_before.get("VmRSS", 0) / 1024, 1),
            "vmhwm_mib": round(after.get("VmHWM", 0) / 1024, 1),
            "load": os.getloadavg(),
        }
    finally:
        shutil.rmtree(base, ignore_errors=True)


def measure_recovery(url: str, registry: str, commit: str, baseline: bool) -> list[dict[str, Any]]:
    """Run the recovery step in child processes: this tree's, the baseline's, this tree's."""
    variants = ["tree", "baseline", "tree"] if baseline else ["tree"]
    results = []
    for variant in variants:
        out = subprocess.run(
            [sys.executable, __file__, "--recovery-child", variant, url, registry,
             "--baseline-commit", commit],
            capture_output=True, text=True, timeout=7200,
        )  # fmt: skip
        if out.returncode:
            raise RuntimeError(f"recovery child {variant} failed: {out.stderr[-2000:]}")
        result = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"  recovery ({result['variant']}): {result['seconds']} s, requests "
              f"{result['requests']}, RSS {result['rss_before_mib']} MiB before, VmHWM "
              f"{result['vmhwm_mib']} MiB, load {result['load']}", flush=True)  # fmt: skip
        results.append(result)
    return results


def join(
    url: str,
    registry: str,
    base: Path,
    *,
    poll: float,
    caught_up_lag: int,
    timeout: float,
    tree: Path | None = None,
    until_health: bool = False,
    wait_sync_round: bool = True,
) -> dict[str, Any]:
    """Start a fresh node joining ``registry``; measure it until it has indexed to the head
    (``until_health``: until its first ``/health``), then (``wait_sync_round``) until its peer
    sync finished a round. ``tree``: run that checkout's code."""
    sync_round_wanted = wait_sync_round and not until_health
    env = dict(os.environ)
    env["COLLEGIUM_PASSWORD"] = secrets.token_hex(12)
    if tree is not None:  # and run from it: `python -m` puts the working directory first
        env["PYTHONPATH"] = str(tree)
    name = "joiner" if tree is None else "baseline-joiner"
    data_dir = base / name
    init = subprocess.run(
        [sys.executable, "-m", "node.cli.main", "init", "--data-dir", str(data_dir), "--home",
         "main", "--capacity", "1", "--chain", url, "--registry", registry],
        env=env, capture_output=True, timeout=300, cwd=tree or REPO,
    )  # fmt: skip
    if init.returncode:
        raise RuntimeError(f"collegium init failed: {init.stderr.decode()[-2000:]}")
    port = free_port()
    node_url = f"http://127.0.0.1:{port}"
    log_path = base / f"{name}.log"
    with log_path.open("ab") as log:
        t0 = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "node.cli.main", "up", "--data-dir", str(data_dir), "--port",
             str(port), "--chain", url, "--public-url", node_url, "--log-level", "info"],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tree or REPO,
        )  # fmt: skip
    samples: list[dict[str, Any]] = []
    first_health: float | None = None
    caught_up: float | None = None
    peak_rss = 0
    try:
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the node exited with {proc.returncode}; see {log_path}")
            elapsed = time.monotonic() - t0
            try:
                health = get_json(node_url + "/health", timeout=10)
            except OSError:
                time.sleep(poll)
                continue
            status = proc_status(proc.pid)  # serving: past the keystore's scrypt
            peak_rss = max(peak_rss, status.get("VmRSS", 0))
            if first_health is None:
                first_health = elapsed
                if until_health:
                    break
            index = health.get("index") or {}
            sync = health.get("sync") or {}
            sample = {
                "t": round(elapsed, 1),
                "rss_mib": round(status.get("VmRSS", 0) / 1024, 1),
                "index": index,
                "status": health.get("status"),
                "reasons": health.get("reasons"),
                "sync": {k: sync.get(k) for k in ("have", "want", "missing", "syncing")},
            }
            samples.append(sample)
            print(f"  t={sample['t']:7.1f}s rss={sample['rss_mib']:7.1f} MiB index={index} "
                  f"status={sample['status']} sync={sample['sync']}", flush=True)  # fmt: skip
            lag = index.get("lag")
            if lag is not None and lag <= caught_up_lag:
                caught_up = elapsed
                break
            time.sleep(poll)
        # then until the peer sync has finished a round over the wants (every anchor's batch,
        # none of which any peer serves): what the node reports once caught up
        after: dict[str, Any] | None = None
        sync_round: float | None = None
        while caught_up is not None and sync_round_wanted and time.monotonic() < deadline:
            peak_rss = max(peak_rss, proc_status(proc.pid).get("VmRSS", 0))
            try:
                after = get_json(node_url + "/health", timeout=30)
            except OSError:
                time.sleep(poll)
                continue
            if (after.get("sync") or {}).get("rounds"):
                sync_round = time.monotonic() - t0
                break
            time.sleep(poll)
        final = proc_status(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
    log_lines = log_path.read_text(errors="replace").splitlines()
    follower_lines = [line for line in log_lines if "chain follower:" in line]
    waits = sum("waits for the store" in line for line in log_lines)
    return {
        "first_health_seconds": None if first_health is None else round(first_health, 1),
        "indexed_seconds": None if caught_up is None else round(caught_up, 1),
        "first_sync_round_seconds": None if sync_round is None else round(sync_round, 1),
        # VmHWM includes the keystore's scrypt at start-up (n=2**18, r=8: 256 MiB, freed at
        # once); the sampled peak is what the node holds while it indexes and syncs
        "vmhwm_mib": round(final.get("VmHWM", 0) / 1024, 1),
        "peak_rss_mib": round(peak_rss / 1024, 1),
        "rss_after_mib": round(final.get("VmRSS", 0) / 1024, 1),
        "samples": samples,
        "health_after": after,
        "log_lines": len(log_lines),
        "store_wait_lines": waits,
        "follower_log": follower_lines[:5]
        + (["..."] if len(follower_lines) > 10 else [])
        + follower_lines[-5:],
        "log_path": str(log_path),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--anchors", type=int, default=500)
    parser.add_argument("--blocks", type=int, default=2_000)
    parser.add_argument("--writers", type=int, default=4, help="nodes whose anchors these are")
    parser.add_argument("--per-block", type=int, default=100, help="anchors per non-empty block")
    parser.add_argument("--gas-limit", type=int, default=BLOCK_GAS_LIMIT, help="of a block")
    parser.add_argument("--poll", type=float, default=2.0, help="seconds between /health samples")
    parser.add_argument("--caught-up-lag", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to catch up")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--join", nargs=2, metavar=("CHAIN_URL", "REGISTRY"),
                        help="only join this registry (a history built before)")  # fmt: skip
    parser.add_argument("--baseline-commit", default=BASELINE_COMMIT,
                        help="the older code whose recovery step is timed alongside")  # fmt: skip
    parser.add_argument("--no-baseline-recovery", action="store_true",
                        help="time this tree's recovery step only")  # fmt: skip
    parser.add_argument("--baseline-tree", type=Path,
                        help="older code checkout: its node joins first (to /health)")  # fmt: skip
    parser.add_argument("--no-sync-round", action="store_true",
                        help="stop once indexed (not after the first peer sync round)")  # fmt: skip
    parser.add_argument("--recovery-child", nargs=3, metavar=("VARIANT", "CHAIN_URL", "REGISTRY"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args()
    if args.recovery_child:
        variant, url, registry = args.recovery_child
        print(json.dumps(recovery_child(variant, url, registry, args.baseline_commit)))
        return 0
    if args.per_block * ANCHOR_GAS > args.gas_limit:
        parser.error(f"--per-block at most {args.gas_limit // ANCHOR_GAS} (see --gas-limit)")

    base = Path(tempfile.mkdtemp(prefix="collegium-long-history-"))
    if args.join:
        url, registry = args.join
        head = int(anvil_rpc(url, "eth_blockNumber"), 16)
        result: dict[str, Any] = {"load_before": os.getloadavg()}
        result["history"] = {"head": head, "anchor_count": count_anchors(url, registry),
                             "seconds": None}  # fmt: skip
        join_measured(args, url, registry, base, result)
        result["load_after"] = os.getloadavg()
        return report(args, result)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    anvil = start_anvil(port, args.gas_limit)
    result = {"anchors": args.anchors, "blocks": args.blocks, "load_before": os.getloadavg()}
    try:
        print(f"anvil on {url}; data in {base}", flush=True)
        registry, writers = deploy(url, args.writers)
        print(f"registry {registry}; {len(writers)} writer nodes", flush=True)
        result["history"] = make_history(
            url, registry, writers, args.anchors, args.blocks, args.per_block
        )
        result["history"]["anchor_count"] = count_anchors(url, registry)
        result["anvil_rss_mib"] = round(proc_status(anvil.pid).get("VmRSS", 0) / 1024, 1)
        print(f"history: {result['history']}", flush=True)
        join_measured(args, url, registry, base, result)
        result["load_after"] = os.getloadavg()
    finally:
        anvil.terminate()
        try:
            anvil.wait(timeout=30)
        except subprocess.TimeoutExpired:
            anvil.kill()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    return report(args, result)


def join_measured(
    args: argparse.Namespace, url: str, registry: str, base: Path, result: dict[str, Any]
) -> None:
    """Time the recovery step (both versions), then the baseline's join (with
    ``--baseline-tree``), then this tree's join; store them in ``result``."""
    result["recovery"] = measure_recovery(
        url, registry, args.baseline_commit, not args.no_baseline_recovery
    )
    if args.baseline_tree is not None:
        result["baseline_join"] = join(url, registry, base, poll=args.poll,
                                       caught_up_lag=args.caught_up_lag, timeout=args.timeout,
                                       tree=args.baseline_tree, until_health=True)  # fmt: skip
        print(f"baseline ({args.baseline_tree}) first /health: "
              f"{result['baseline_join']['first_health_seconds']} s", flush=True)  # fmt: skip
    result["join"] = join(url, registry, base, poll=args.poll,
                          caught_up_lag=args.caught_up_lag, timeout=args.timeout,
                          wait_sync_round=not args.no_sync_round)  # fmt: skip


def report(args: argparse.Namespace, result: dict[str, Any]) -> int:
    """Print the results (and write them as JSON with ``--json``)."""
    join_result = result["join"]
    after = join_result.get("health_after") or {}
    print()
    history = result["history"]
    print(f"scale: {history['anchor_count']} anchors over {history['head']} blocks")
    print(f"history built in: {result['history']['seconds']} s")
    for step in result.get("recovery", []):
        print(f"recovery step ({step['variant']}): {step['seconds']} s, requests "
              f"{step['requests']}, VmHWM {step['vmhwm_mib']} MiB "
              f"(RSS before {step['rss_before_mib']} MiB), load {step['load']}")  # fmt: skip
    baseline = result.get("baseline_join")
    if baseline is not None:
        print(f"baseline tree: first /health: {baseline['first_health_seconds']} s")
    print(f"first /health: {join_result['first_health_seconds']} s")
    print(f"indexed to head: {join_result['indexed_seconds']} s")
    print(f"first sync round done: {join_result['first_sync_round_seconds']} s")
    print(f"peak RSS sampled (indexing, sync): {join_result['peak_rss_mib']} MiB")
    print(f"VmHWM (incl. the keystore's scrypt at start): {join_result['vmhwm_mib']} MiB")
    print(f"RSS after: {join_result['rss_after_mib']} MiB")
    print(f"health after: status={after.get('status')} reasons={after.get('reasons')} "
          f"index={after.get('index')} sync={after.get('sync')}")  # fmt: skip
    print(f"load average before/after: {result['load_before']} / {result.get('load_after')}")
    waits = join_result["store_wait_lines"]
    print(f"log: {join_result['log_lines']} lines, {waits} 'waits for the store'")
    print("follower log:", *join_result["follower_log"], sep="\n  ")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
