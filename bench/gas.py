"""Bench: gas used by each state-changing Registry call, on an in-memory eth-tester chain.

Deploys ``contracts/build/Registry.json`` and calls every state-changing function once (the
anchor several times: its first call also initialises the array's length slot), reading
``gasUsed`` from each receipt. Gas is deterministic for a given artifact, so one run is
enough; inputs are realistic sizes (CIDv1 of 59 characters, a 21-character endpoint).

Run: ``python bench/gas.py`` (a few seconds). It prints a table, then the headline figures
last, one per line, as ``metric: value unit``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import EthereumTesterProvider, Web3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from node.chain.contracts import TxResult  # noqa: E402
from node.chain.registry import AnchorReceipt, ProposalReceipt, Registry  # noqa: E402

EPOCH_PERIOD = 8
ANCHORS = 5
FUND_WEI = 10 * 10**18
CID_V1 = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
ENDPOINT = "http://127.0.0.1:8000"
HEADLINE = (
    "deploy",
    "register_node",
    "create_subsystem",
    "add_participant",
    "anchor",
    "anchor_subsystem",
    "fix_seed",
    "attest",
    "heartbeat",
    "propose_epoch_period",
    "vote_epoch_period_executes",
)


def new_account(w3: Web3) -> LocalAccount:
    """Return a fresh account funded from eth-tester's first prefunded account."""
    account: LocalAccount = Account.create()
    tx = w3.eth.send_transaction(
        {"from": w3.eth.accounts[0], "to": account.address, "value": FUND_WEI}
    )
    w3.eth.wait_for_transaction_receipt(tx)
    return account


def measure() -> dict[str, int]:
    """Return gas used per call name."""
    w3 = Web3(EthereumTesterProvider())
    admin = new_account(w3)
    gas: dict[str, int] = {}

    def record(name: str, result: TxResult | AnchorReceipt | ProposalReceipt) -> None:
        gas[name] = result.gas_used

    deploy_block = w3.eth.block_number + 1
    reg = Registry.deploy(w3, admin, EPOCH_PERIOD)
    (deploy_tx,) = w3.eth.get_block(deploy_block)["transactions"]
    gas["deploy"] = int(w3.eth.get_transaction_receipt(deploy_tx)["gasUsed"])

    other = new_account(w3)
    record("add_system_admin", reg.add_system_admin(other.address))
    record("remove_system_admin", reg.remove_system_admin(other.address))
    record("set_frontend", reg.set_frontend(CID_V1))

    nodes = [Registry(w3, reg.address, new_account(w3)) for _ in range(4)]
    record("register_node", nodes[0].register_node(ENDPOINT, 4, 0b1111, "acme"))
    for node in nodes[1:]:
        node.register_node(ENDPOINT, 2, 0b0101, "acme")
    record("update_node", nodes[0].update_node(ENDPOINT, 3, 0b0111, "beta"))

    owner = nodes[0]
    record("create_subsystem", owner.create_subsystem("acme"))
    participant = new_account(w3)
    record("add_participant", owner.add_participant("acme", participant.address))
    record("remove_participant", owner.remove_participant("acme", participant.address))
    record("add_subsystem_admin", owner.add_subsystem_admin("acme", other.address))
    record("remove_subsystem_admin", owner.remove_subsystem_admin("acme", other.address))
    record("set_subsystem_frontend", owner.set_subsystem_frontend("acme", CID_V1))

    anchors = [
        owner.anchor("", keccak(i.to_bytes(8, "big")), 100 * (i + 1), 100, CID_V1)
        for i in range(ANCHORS)
    ]
    record("anchor_first", anchors[0])
    gas["anchor"] = max(a.gas_used for a in anchors[1:])
    record("anchor_subsystem", owner.anchor("acme", keccak(b"acme"), 10, 10, CID_V1))

    record("fix_seed", reg.fix_seed(0))
    record("attest", owner.attest(0, owner.seed_info(0).seed, keccak(b"assignment root")))
    record("heartbeat", nodes[1].heartbeat())  # lastSeen shares the record's slot

    proposal = nodes[0].propose_epoch_period(12)  # 1 vote of 4
    record("propose_epoch_period", proposal)
    record("vote_epoch_period", nodes[1].vote_epoch_period(proposal.id))  # 2 of 4
    nodes[3].leave_node()  # 2 of 3 now: a majority, executed by anyone
    record("execute_epoch_period", reg.execute_epoch_period(proposal.id))
    second = nodes[0].propose_epoch_period(16)  # 1 of 3
    record("vote_epoch_period_executes", nodes[1].vote_epoch_period(second.id))  # 2 of 3
    record("leave_node", nodes[2].leave_node())
    return gas


def main() -> None:
    started = time.perf_counter()
    gas = measure()
    width = max(len(name) for name in gas)
    print(f"{'call':<{width}}  {'gas':>9}")
    print(f"{'-' * width}  {'-' * 9}")
    for name, used in gas.items():
        print(f"{name:<{width}}  {used:>9,}")
    print(f"total bench time: {time.perf_counter() - started:.1f} s")
    for name in HEADLINE:
        print(f"gas_{name}: {gas[name]} gas")


if __name__ == "__main__":
    main()
