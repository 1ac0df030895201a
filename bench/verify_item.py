"""Per-item verification CPU: ``check_items`` (and each of its stages) of an older commit vs
this tree, side by side in one run.

The code of ``--base`` is exported with ``git archive`` into a temporary directory (no worktree
is touched). The same signed transactions (``--items``, each from its own wallet, one party
each, a few with defects that must fail the same way) are written once as JSON; then a fresh
interpreter per tree and round (``old``, ``new``, ``new``, ``old``, … for ``--rounds`` pairs)
loads them and times, on one thread, in CPU time of its process (``time.process_time``: the
machine is shared, waiting for a core does not count):

* ``check_items``: the whole per-item verification (fields, EIP-712 digest, signer recovery,
  leaf body, CID and leaf hash) over the valid items; ``cold`` is the first pass (empty
  caches: every signer's and party's checksum spelled anew), ``warm`` the best later pass;
* each stage alone over the same items (best of ``REPEATS`` passes): ``validate_tx``,
  ``compute_digest``, ``recover_digest_signer``, ``encode_leaf``, the leaf hash (0x-hex),
  ``compute_leaf_cid``, ``is_cid`` of the leaf CIDs (the syncer's check), the API's address
  check (``node.api.schemas._checksum``) and the EIP-55 spelling of a new address (the
  checksum cache bypassed).

Both trees must give byte-identical results for every item (signers, digests, bodies, CIDs,
leaf hashes, error types and messages): the run stops if they differ. Prints a table of µs
per item (the best round of each tree), the ratio and the load average before and after.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.trees import export  # noqa: E402

DEFAULT_BASE = "2382761"  # main before the per-item verification work (session 10)
ITEMS = 2_000
ROUNDS = 2
REPEATS = 5
DOMAIN = (31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
STAGES = (
    "check_items cold",
    "check_items warm",
    "validate_tx",
    "compute_digest",
    "recover_digest_signer",
    "encode_leaf",
    "leaf hash",
    "compute_leaf_cid",
    "is_cid (leaf CIDs)",
    "api _checksum",
    "EIP-55 of a new address",
)

# runs in a fresh interpreter: argv = tree, items file; prints one JSON line
MEASURE = r"""
import hashlib, json, sys, time
sys.path.insert(0, sys.argv[1])
import node
assert node.__file__.startswith(sys.argv[1]), node.__file__  # this tree's code, not another
from node.api import schemas
from node.ledger.hasher import hash_leaf
from node.ledger.transaction import (BusinessTx, Domain, compute_checksum_address,
    compute_digest, encode_leaf, recover_digest_signer, validate_tx)
from node.ledger.verifier import check_items, compute_leaf_cid
from node.storage.cids import is_cid

spec = json.load(open(sys.argv[2]))
domain = Domain(*spec["domain"])
items = [(BusinessTx(**{**t, "parties": tuple(t["parties"])}), bytes.fromhex(s))
         for t, s in spec["items"]]
valid = [items[i] for i in spec["valid"]]
addresses = [bytes.fromhex(a[2:]) for a in spec["fresh"]]
repeats = spec["repeats"]

def per_item(run, count):  # CPU time of this process: waiting for a core does not count
    start = time.process_time()
    run()
    return (time.process_time() - start) / count * 1e6

def best(run, count):
    return min(per_item(run, count) for _ in range(repeats))

def loop(f, args):
    def run():
        for a in args:
            f(*a)
    return run

times = {"check_items cold": per_item(lambda: check_items(domain, valid), len(valid))}
times["check_items warm"] = best(lambda: check_items(domain, valid), len(valid))
digests = [(compute_digest(domain, tx), sig) for tx, sig in valid]
bodies = [(encode_leaf(domain, tx, sig),) for tx, sig in valid]
times["validate_tx"] = best(loop(validate_tx, [(tx,) for tx, _ in valid]), len(valid))
times["compute_digest"] = best(loop(compute_digest, [(domain, tx) for tx, _ in valid]), len(valid))
times["recover_digest_signer"] = best(loop(recover_digest_signer, digests), len(valid))
times["encode_leaf"] = best(loop(encode_leaf, [(domain, tx, sig) for tx, sig in valid]), len(valid))
times["leaf hash"] = best(loop(lambda b: "0x" + bytes(hash_leaf(b)).hex(), bodies), len(valid))
times["compute_leaf_cid"] = best(loop(compute_leaf_cid, bodies), len(valid))
spelled = [(tx.parties[0],) for tx, _ in valid]
cids = [(compute_leaf_cid(b),) for (b,) in bodies]
times["is_cid (leaf CIDs)"] = best(loop(is_cid, cids), len(cids))
times["api _checksum"] = best(loop(schemas._checksum, spelled), len(valid))
uncached = compute_checksum_address.__wrapped__
times["EIP-55 of a new address"] = best(loop(uncached, [(a,) for a in addresses]), len(addresses))

out = hashlib.sha256()
for result in check_items(domain, items):
    if isinstance(result, Exception):
        out.update(repr((type(result).__name__, str(result))).encode())
    else:
        out.update(repr(result).encode())
for a in addresses:
    out.update(uncached(a).encode())
print(json.dumps({"times": times, "results": out.hexdigest()}))
"""


def make_items(count: int) -> dict[str, Any]:
    """Return ``count`` signed transactions (each from its own deterministic wallet) with a
    few defective ones, as JSON-ready data, and the indexes of the valid ones."""
    sys.path.insert(0, str(ROOT))
    from eth_keys import KeyAPI

    from node.ledger.transaction import BusinessTx, Domain, compute_digest

    keys, domain = KeyAPI(), Domain(*DOMAIN)
    items, valid = [], []
    for i in range(count):
        seed = hashlib.sha256(f"verify-item {i}".encode()).digest()
        key = keys.PrivateKey(seed)
        party = keys.PrivateKey(hashlib.sha256(seed).digest()).public_key.to_checksum_address()
        fields = {
            "subsystem": "main", "kind": "invoice", "parties": [party], "amount": f"{i}.5",
            "currency": "EUR", "memo": f"bench {i}", "payload": "", "nonce": i,
            "timestamp": 1_765_000_000 + i,
        }  # fmt: skip
        tx = BusinessTx(**{**fields, "parties": (party,)})  # type: ignore[arg-type]
        vrs = key.sign_msg_hash(compute_digest(domain, tx))
        signature = vrs.to_bytes()[:64] + bytes([vrs.v + 27])
        if i % 97 == 13:  # a defect: flip a byte of s, or of the amount
            signature = signature[:40] + bytes([signature[40] ^ 0xFF]) + signature[41:]
        elif i % 97 == 41:
            fields["amount"] = f"{i}.50"
        else:
            valid.append(i)
        items.append((fields, signature.hex()))
    fresh = ["0x" + hashlib.sha256(f"fresh {i}".encode()).digest()[:20].hex() for i in range(count)]
    return {"domain": DOMAIN, "items": items, "valid": valid, "fresh": fresh, "repeats": REPEATS}


def measure(tree: Path, items_file: Path) -> dict[str, Any]:
    """Run the measurement in a fresh interpreter on ``tree``; return its JSON answer."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(tree), str(items_file)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=tree,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def load_average() -> str:
    """Return the 1, 5 and 15 minute load averages."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=DEFAULT_BASE, help="the 'old' commit")
    parser.add_argument("--items", type=int, default=ITEMS)
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="alternated pairs")
    args = parser.parse_args()
    print(f"load average before: {load_average()}")
    best: dict[str, dict[str, float]] = {"old": {}, "new": {}}
    with tempfile.TemporaryDirectory(prefix="verify-item-") as tmp:
        old_tree = export(args.base, Path(tmp) / "old")
        items_file = Path(tmp) / "items.json"
        items_file.write_text(json.dumps(make_items(args.items)))
        results: dict[str, str] = {}
        started = time.perf_counter()
        for pair in range(args.rounds):
            order = ("old", "new") if pair % 2 == 0 else ("new", "old")
            for name in order:
                answer = measure(old_tree if name == "old" else ROOT, items_file)
                results.setdefault(name, answer["results"])
                for stage, value in answer["times"].items():
                    best[name][stage] = min(best[name].get(stage, value), value)
    if results["old"] != results["new"]:
        raise SystemExit(f"results differ: old {results['old']} != new {results['new']}")
    print(
        f"items: {args.items}, rounds: {args.rounds} pairs, {time.perf_counter() - started:.0f} s"
    )
    print(f"results identical: sha256 {results['new'][:16]}")
    print(f"load average after: {load_average()}")
    print(f"{'µs per item':<26}{'old':>9}{'new':>9}{'old/new':>9}")
    for stage in STAGES:
        old, new = best["old"][stage], best["new"][stage]
        print(f"{stage:<26}{old:9.2f}{new:9.2f}{old / new:8.2f}×")
    for stage in ("check_items cold", "check_items warm"):
        print(f"{stage.replace(' ', '_')}: {best['old'][stage]:.1f} -> {best['new'][stage]:.1f} us")


if __name__ == "__main__":
    main()
