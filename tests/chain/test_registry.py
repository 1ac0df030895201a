"""The Registry contract through its Python facade, on eth-tester and on anvil (no mocks)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from hexbytes import HexBytes
from web3.logs import DISCARD

from node.chain.registry import (
    SEED_DOMAIN,
    Registry,
    RegistryError,
    RegistryRejected,
    compute_roles,
    compute_roles_mask,
    compute_seed,
    compute_subsystem_id,
)
from node.chain.registry.anchors import ANCHOR_GAS_LIMIT
from node.errors import ChainError

if TYPE_CHECKING:
    from tests.chain.conftest import ChainUnderTest, Deployment

ROOT_A = keccak(b"root a")
ROOT_B = keccak(b"root b")
SEED = keccak(b"a seed no epoch has")
ZERO_ADDRESS = "0x" + "00" * 20
ALL_ROLES = 0b1111
BLOCKHASH_WINDOW = 256


def rejects(call: Callable[[], Any], error: str, *args: Any) -> RegistryRejected:
    """Assert that ``call`` is rejected with custom error ``error(args)``; return the error."""
    with pytest.raises(RegistryRejected) as info:
        call()
    assert info.value.error_name == error, str(info.value)
    if args:
        assert info.value.error_args == args, str(info.value)
    return info.value


def register(dep: Deployment, home: str = "", capacity: int = 2) -> tuple[LocalAccount, Registry]:
    """Return a fresh account registered as a node, with its facade."""
    account = dep.chain.new_account()
    reg = dep.at(account)
    reg.register_node(f"http://127.0.0.1:{8000 + len(dep.chain.accounts)}", capacity, 5, home)
    return account, reg


# ---------------------------------------------------------------- system admins and front-end


def test_deployer_is_first_system_admin(deployment: Deployment) -> None:
    reg = deployment.registry
    assert reg.system_admins() == [deployment.admin.address]
    assert reg.is_system_admin(deployment.admin.address)


def test_system_admins_are_managed_by_admins_only(deployment: Deployment) -> None:
    reg, chain = deployment.registry, deployment.chain
    other, outsider = chain.new_account(), chain.new_account()
    reg.add_system_admin(other.address)
    assert reg.is_system_admin(other.address)
    assert reg.system_admins() == [deployment.admin.address, other.address]
    rejects(lambda: reg.add_system_admin(other.address), "AlreadySystemAdmin", other.address)
    rejects(lambda: reg.add_system_admin(ZERO_ADDRESS), "ZeroAddress")
    as_outsider = deployment.at(outsider)
    rejects(
        lambda: as_outsider.add_system_admin(outsider.address), "NotSystemAdmin", outsider.address
    )
    rejects(
        lambda: as_outsider.remove_system_admin(other.address), "NotSystemAdmin", outsider.address
    )
    rejects(
        lambda: reg.remove_system_admin(outsider.address), "SystemAdminNotFound", outsider.address
    )
    # the new admin removes the deployer; then the last admin cannot go
    deployment.at(other).remove_system_admin(deployment.admin.address)
    assert reg.system_admins() == [other.address]
    rejects(lambda: reg.add_system_admin(outsider.address), "NotSystemAdmin")
    rejects(
        lambda: deployment.at(other).remove_system_admin(other.address),
        "LastSystemAdmin",
        other.address,
    )


def test_frontend_is_set_by_system_admin_only(deployment: Deployment) -> None:
    reg = deployment.registry
    assert reg.frontend_cid() == ""
    cid = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    reg.set_frontend(cid)
    assert reg.frontend_cid() == cid
    outsider = deployment.chain.new_account()
    rejects(lambda: deployment.at(outsider).set_frontend("x"), "NotSystemAdmin", outsider.address)
    rejects(lambda: reg.set_frontend("x" * 129), "InvalidCid", 129)
    assert reg.frontend_cid() == cid


def test_revert_message_names_the_custom_error(deployment: Deployment) -> None:
    outsider = deployment.chain.new_account()
    with pytest.raises(ChainError) as info:
        deployment.at(outsider).anchor("", ROOT_A, 1, 1, "cid")
    assert str(info.value) == f"registry rejected the call: NotRegisteredNode({outsider.address})"
    assert isinstance(info.value, RegistryRejected)


def test_read_only_facade_cannot_write(deployment: Deployment) -> None:
    reader = deployment.at(None)
    assert reader.node_count() == 0
    with pytest.raises(RegistryError, match="only read"):
        reader.create_subsystem("acme")


def test_deploy_rejects_a_zero_epoch_period(chain: ChainUnderTest) -> None:
    rejects(lambda: Registry.deploy(chain.w3, chain.new_account(), 0), "InvalidEpochPeriod", 0)


# ---------------------------------------------------------------- nodes


def test_register_update_and_read_a_node(deployment: Deployment) -> None:
    chain = deployment.chain
    account = chain.new_account()
    reg = deployment.at(account)
    assert not reg.is_node(account.address)
    result = reg.register_node("http://127.0.0.1:8001", 3, 0b0101, "acme")
    info = reg.get_node(account.address)
    assert info.endpoint == "http://127.0.0.1:8001"
    assert (info.capacity, info.roles_mask, info.home) == (3, 0b0101, "acme")
    assert info.active and info.registered_at == result.block_number
    assert info.roles == ("fe_system", "be_system")
    assert reg.is_node(account.address) and reg.node_count() == 1
    assert reg.node_at(0) == account.address
    rejects(
        lambda: reg.register_node("http://x", 1, 1, ""), "NodeAlreadyRegistered", account.address
    )
    reg.update_node("http://127.0.0.1:9001", 5, ALL_ROLES, "beta")
    info = reg.get_node(account.address)
    assert (info.endpoint, info.capacity, info.roles_mask, info.home) == (
        "http://127.0.0.1:9001",
        5,
        ALL_ROLES,
        "beta",
    )
    assert info.registered_at == result.block_number
    assert reg.nodes() == [info]


def test_node_arguments_are_checked(deployment: Deployment) -> None:
    reg = deployment.at(deployment.chain.new_account())
    rejects(lambda: reg.register_node("http://x", 0, 1, ""), "InvalidCapacity", 0)
    rejects(lambda: reg.register_node("http://x", 1, 0, ""), "InvalidRoles", 0)
    rejects(lambda: reg.register_node("http://x", 1, 16, ""), "InvalidRoles", 16)
    rejects(lambda: reg.register_node("", 1, 1, ""), "InvalidEndpoint", 0)
    rejects(lambda: reg.register_node("http://x", 1, 1, "h" * 65), "InvalidSubsystemName", 65)
    assert reg.node_count() == 0


def test_only_registered_nodes_update_or_leave(deployment: Deployment) -> None:
    outsider = deployment.chain.new_account()
    reg = deployment.at(outsider)
    rejects(lambda: reg.update_node("http://x", 1, 1, ""), "NotRegisteredNode", outsider.address)
    rejects(reg.leave_node, "NotRegisteredNode", outsider.address)


def test_leave_keeps_the_active_list_enumerable(deployment: Deployment) -> None:
    a, reg_a = register(deployment)
    b, _ = register(deployment)
    c, _ = register(deployment)
    reg = deployment.registry
    assert [n.address for n in reg.nodes()] == [a.address, b.address, c.address]
    reg_a.leave_node()  # swap-and-pop: c takes a's slot
    assert [n.address for n in reg.nodes()] == [c.address, b.address]
    assert not reg.is_node(a.address)
    assert reg.get_node(a.address).active is False
    rejects(reg_a.leave_node, "NotRegisteredNode", a.address)
    rejects(lambda: reg.node_at(2), "IndexOutOfRange", 2, 2)
    reg_a.register_node("http://127.0.0.1:7000", 1, 1, "")
    assert [n.address for n in reg.nodes()] == [c.address, b.address, a.address]


def test_roles_mask_helpers() -> None:
    assert compute_roles_mask(["fe_system", "be_subsystem"]) == 0b1001
    assert compute_roles(0b0110) == ("fe_subsystem", "be_system")
    with pytest.raises(RegistryError, match="unknown role"):
        compute_roles_mask(["db"])


# ---------------------------------------------------------------- subsystems


def test_create_subsystem_makes_the_caller_admin_and_participant(deployment: Deployment) -> None:
    creator = deployment.chain.new_account()
    reg = deployment.at(creator)
    assert not reg.subsystem_exists("acme")
    result = reg.create_subsystem("acme")
    assert reg.subsystem_exists("acme")
    assert reg.is_subsystem_admin("acme", creator.address)
    assert reg.is_participant("acme", creator.address)
    assert reg.participants("acme") == [creator.address]
    assert reg.subsystem_count() == 1 and reg.subsystem_at(0) == "acme"
    rejects(lambda: reg.create_subsystem("acme"), "SubsystemAlreadyExists", "acme")
    reg.create_subsystem("b" * 64)
    assert reg.subsystems() == ["acme", "b" * 64]
    rejects(lambda: reg.create_subsystem(""), "InvalidSubsystemName", 0)
    rejects(lambda: reg.create_subsystem("c" * 65), "InvalidSubsystemName", 65)
    rejects(lambda: reg.subsystem_at(2), "IndexOutOfRange", 2, 2)
    (event,) = reg.contract.events.SubsystemCreated().process_receipt(
        deployment.chain.w3.eth.get_transaction_receipt(result.tx_hash), errors=DISCARD
    )
    assert event["args"]["id"] == compute_subsystem_id("acme")
    assert event["args"]["creator"] == creator.address


def test_participants_are_managed_by_subsystem_admins_only(deployment: Deployment) -> None:
    chain = deployment.chain
    admin, alice, bob, outsider = (chain.new_account() for _ in range(4))
    reg = deployment.at(admin)
    reg.create_subsystem("acme")
    reg.add_participant("acme", alice.address)
    reg.add_participant("acme", bob.address)
    assert reg.participants("acme") == [admin.address, alice.address, bob.address]
    rejects(
        lambda: reg.add_participant("acme", alice.address),
        "AlreadyParticipant",
        "acme",
        alice.address,
    )
    rejects(lambda: reg.add_participant("acme", ZERO_ADDRESS), "ZeroAddress")
    rejects(
        lambda: deployment.at(outsider).add_participant("acme", outsider.address),
        "NotSubsystemAdmin",
        "acme",
        outsider.address,
    )
    rejects(
        lambda: deployment.at(alice).remove_participant("acme", bob.address),
        "NotSubsystemAdmin",
        "acme",
        alice.address,
    )
    reg.remove_participant("acme", alice.address)
    assert not reg.is_participant("acme", alice.address)
    assert reg.participants("acme") == [admin.address, bob.address]
    rejects(
        lambda: reg.remove_participant("acme", alice.address),
        "ParticipantNotFound",
        "acme",
        alice.address,
    )
    rejects(lambda: reg.add_participant("nope", alice.address), "UnknownSubsystem", "nope")
    rejects(lambda: reg.participants("nope"), "UnknownSubsystem", "nope")


def test_subsystem_admins_are_managed_by_subsystem_admins_only(deployment: Deployment) -> None:
    chain = deployment.chain
    admin, second, outsider = (chain.new_account() for _ in range(3))
    reg = deployment.at(admin)
    reg.create_subsystem("acme")
    rejects(
        lambda: deployment.at(outsider).add_subsystem_admin("acme", outsider.address),
        "NotSubsystemAdmin",
        "acme",
        outsider.address,
    )
    reg.add_subsystem_admin("acme", second.address)
    assert reg.is_subsystem_admin("acme", second.address)
    assert not reg.is_participant("acme", second.address)
    rejects(
        lambda: reg.add_subsystem_admin("acme", second.address),
        "AlreadySubsystemAdmin",
        "acme",
        second.address,
    )
    rejects(
        lambda: reg.remove_subsystem_admin("acme", outsider.address),
        "SubsystemAdminNotFound",
        "acme",
        outsider.address,
    )
    deployment.at(second).remove_subsystem_admin("acme", admin.address)
    assert not reg.is_subsystem_admin("acme", admin.address)
    rejects(
        lambda: reg.add_participant("acme", outsider.address),
        "NotSubsystemAdmin",
        "acme",
        admin.address,
    )
    rejects(
        lambda: deployment.at(second).remove_subsystem_admin("acme", second.address),
        "LastSubsystemAdmin",
        "acme",
        second.address,
    )
    # the system admin has no say inside a subsystem
    rejects(
        lambda: deployment.registry.add_participant("acme", outsider.address), "NotSubsystemAdmin"
    )


def test_subsystem_frontend(deployment: Deployment) -> None:
    chain = deployment.chain
    admin, outsider = chain.new_account(), chain.new_account()
    reg = deployment.at(admin)
    reg.create_subsystem("acme")
    assert reg.subsystem_frontend("acme") == ""
    reg.set_subsystem_frontend("acme", "QmVr26fY1tKyspEJBniVhqxQeEjhF78XerGiqWAwraVLQH")
    assert reg.subsystem_frontend("acme") == "QmVr26fY1tKyspEJBniVhqxQeEjhF78XerGiqWAwraVLQH"
    rejects(
        lambda: deployment.at(outsider).set_subsystem_frontend("acme", "x"),
        "NotSubsystemAdmin",
        "acme",
        outsider.address,
    )
    rejects(lambda: reg.subsystem_frontend("nope"), "UnknownSubsystem", "nope")


# ---------------------------------------------------------------- anchors


def test_only_registered_nodes_anchor(deployment: Deployment) -> None:
    outsider = deployment.chain.new_account()
    rejects(
        lambda: deployment.at(outsider).anchor("", ROOT_A, 1, 1, "cid"),
        "NotRegisteredNode",
        outsider.address,
    )
    node, reg = register(deployment)
    reg.leave_node()
    rejects(lambda: reg.anchor("", ROOT_A, 1, 1, "cid"), "NotRegisteredNode", node.address)
    assert reg.anchor_count() == 0


def test_anchor_appends_and_reads_back(deployment: Deployment) -> None:
    node, reg = register(deployment)
    reg.create_subsystem("acme")
    first = reg.anchor("", ROOT_A, 10, 10, "bafy-system")
    second = reg.anchor("acme", ROOT_B, 14, 4, "bafy-acme")
    assert (first.index, second.index) == (0, 1)
    assert reg.anchor_count() == 2
    anchor = reg.get_anchor(1)
    assert anchor.root == ROOT_B and (anchor.tree_size, anchor.count) == (14, 4)
    assert (anchor.batch_cid, anchor.subsystem) == ("bafy-acme", "acme")
    assert anchor.node == node.address and anchor.block_number == second.block_number
    assert [a.root for a in reg.anchors()] == [ROOT_A, ROOT_B]
    receipt = deployment.chain.w3.eth.get_transaction_receipt(second.tx_hash)
    (event,) = reg.contract.events.Anchored().process_receipt(receipt, errors=DISCARD)
    assert dict(event["args"]) == {
        "index": 1,
        "root": ROOT_B,
        "node": node.address,
        "subsystem": "acme",
        "treeSize": 14,
        "count": 4,
        "batchCid": "bafy-acme",
    }
    rejects(lambda: reg.get_anchor(2), "IndexOutOfRange", 2, 2)


def test_own_anchors_are_read_from_the_node_topic_of_the_logs(deployment: Deployment) -> None:
    """``own_anchors`` yields one node's anchors (the ``Anchored`` logs of its ``node``
    topic), in index order, with the transaction of each; a block range narrows them."""
    node, reg = register(deployment)
    other, other_reg = register(deployment)
    reg.create_subsystem("acme")
    made = []
    for i, (who, subsystem) in enumerate(
        [(reg, ""), (other_reg, ""), (reg, "acme"), (other_reg, "")]
    ):
        made.append(who.anchor(subsystem, keccak(b"%d" % i), 2 * i + 1, 1, f"bafy-{i}"))
    mine = list(reg.own_anchors(node.address))
    assert [a.index for a in mine] == [0, 2]
    assert [bytes(a.tx_hash) for a in mine] == [bytes(made[0].tx_hash), bytes(made[2].tx_hash)]
    assert [a.block_number for a in mine] == [made[0].block_number, made[2].block_number]
    assert [a.root for a in mine] == [reg.get_anchor(0).root, reg.get_anchor(2).root]
    assert [(a.tree_size, a.count, a.batch_cid, a.subsystem, a.node) for a in mine] == [
        (1, 1, "bafy-0", "", node.address),
        (5, 1, "bafy-2", "acme", node.address),
    ]
    assert [a.index for a in reg.own_anchors(other.address.lower())] == [1, 3]
    assert [a.index for a in reg.own_anchors(node.address, made[0].block_number + 1)] == [2]
    assert list(reg.own_anchors(node.address, 0, made[0].block_number - 1)) == []
    assert list(reg.own_anchors(deployment.chain.new_account().address)) == []


def test_a_topic_filtered_pager_checks_blooms_for_its_topics(deployment: Deployment) -> None:
    """A lagging backend's short answer is repaired by a block's bloom (``check_blooms``);
    with topics, only a block whose bloom also holds them is asked again by hash."""
    from node.chain.logpager import LogPager

    node, reg = register(deployment)
    other, other_reg = register(deployment)
    mine = reg.anchor("", ROOT_A, 1, 1, "bafy-mine")
    theirs = other_reg.anchor("", ROOT_B, 1, 1, "bafy-theirs")
    w3 = deployment.chain.w3
    event = reg.contract.events.Anchored()
    node_topic = "0x" + "00" * 12 + node.address[2:].lower()
    topics = ["0x" + bytes(HexBytes(event.topic)).hex(), None, None, node_topic]
    pager = LogPager(w3, reg.address, topics=topics)
    blocks = {n: w3.eth.get_block(n) for n in (mine.block_number, theirs.block_number)}
    assert pager.check_blooms([], {theirs.block_number: blocks[theirs.block_number]}) == []
    if deployment.chain.kind != "anvil":
        return  # eth-tester knows no blockHash filter (the embedded chain's provider does)
    (repaired,) = pager.check_blooms([], blocks)
    assert int(repaired["blockNumber"]) == mine.block_number and pager.bloom_repairs == 1
    assert [int(e["blockNumber"]) for e in pager.fetch(0, theirs.block_number)] == [
        mine.block_number
    ]


def test_the_largest_anchor_fits_the_embedded_gas_limit_fourfold(deployment: Deployment) -> None:
    """On the embedded chain anchors are sent with ``ANCHOR_GAS_LIMIT`` instead of an estimate:
    the largest one (64-byte subsystem, 128-byte CID, a first anchor) uses a quarter at most."""
    _, reg = register(deployment)
    name = "s" * 64
    reg.create_subsystem(name)
    largest = reg.anchor(name, ROOT_A, 2**63, 2**63, "b" * 128)
    assert largest.gas_used * 4 <= ANCHOR_GAS_LIMIT, largest.gas_used
    assert reg.get_anchor(largest.index).batch_cid == "b" * 128


def test_an_anchor_the_contract_refuses_unestimated_still_names_its_error(
    deployment: Deployment,
) -> None:
    """Without an estimate (the embedded chain's anchors) a refused anchor is mined as a
    failed transaction; replaying it still gives the contract's own error."""
    _, reg = register(deployment)
    call = reg.contract.functions.anchor("nope", ROOT_A, 1, 1, "cid")
    rejects(lambda: reg._transact(call, gas=ANCHOR_GAS_LIMIT), "UnknownSubsystem", "nope")
    assert reg.anchor_count() == 0


def test_anchor_arguments_are_checked(deployment: Deployment) -> None:
    _, reg = register(deployment)
    rejects(lambda: reg.anchor("nope", ROOT_A, 1, 1, "cid"), "UnknownSubsystem", "nope")
    rejects(lambda: reg.anchor("", bytes(32), 1, 1, "cid"), "InvalidAnchor", bytes(32), 1, 1)
    rejects(lambda: reg.anchor("", ROOT_A, 1, 2, "cid"), "InvalidAnchor", ROOT_A, 1, 2)


def test_one_account_from_many_threads(deployment: Deployment) -> None:
    _, reg = register(deployment)
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for j in range(3):
                reg.anchor("", keccak(f"{k}/{j}".encode()), 1, 1, "cid")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert reg.anchor_count() == 12


# ---------------------------------------------------------------- epochs and seeds


def test_epoch_schedule_starts_at_deployment(deployment: Deployment) -> None:
    reg, chain = deployment.registry, deployment.chain
    start = reg.periods()[0].start_block
    receipt = chain.w3.eth.get_transaction_receipt(
        chain.w3.eth.get_block(start, full_transactions=False)["transactions"][-1]
    )
    assert receipt["contractAddress"] == reg.address
    assert reg.epoch_period() == deployment.epoch_period
    assert reg.current_epoch() == 0
    assert [reg.epoch_start_block(e) for e in range(3)] == [
        start,
        start + deployment.epoch_period,
        start + 2 * deployment.epoch_period,
    ]
    chain.mine_to(start + deployment.epoch_period - 1)
    assert reg.current_epoch() == 0
    chain.mine(1)
    assert reg.current_epoch() == 1


def test_seed_is_not_fixable_before_the_boundary(deployment: Deployment) -> None:
    reg, chain = deployment.registry, deployment.chain
    boundary = reg.epoch_start_block(1)
    chain.mine_to(boundary - 1)  # the next tx would land in the boundary block itself
    error = rejects(lambda: reg.fix_seed(1), "EpochNotStarted")
    assert error.error_args[:2] == (1, boundary)
    rejects(lambda: reg.fix_seed(5), "EpochNotStarted")
    assert reg.seed(1) is None and reg.seed_info(1) is None
    chain.mine(1)
    result = reg.fix_seed(1)
    assert result.block_number == boundary + 1
    assert reg.seed(1) is not None


def test_seed_is_fixed_once_and_stays_forever(deployment: Deployment) -> None:
    reg, chain = deployment.registry, deployment.chain
    outsider = deployment.at(chain.new_account())  # anyone may fix a seed
    result = outsider.fix_seed(0)
    info = reg.seed_info(0)
    assert info is not None
    assert info.source_block == reg.epoch_start_block(0)
    assert info.fixed_at == result.block_number
    source_hash = bytes(chain.w3.eth.get_block(info.source_block)["hash"])
    assert info.seed == compute_seed(0, source_hash)
    assert reg.verify_seed(0)
    (event,) = reg.contract.events.SeedFixed().process_receipt(
        chain.w3.eth.get_transaction_receipt(result.tx_hash), errors=DISCARD
    )
    assert (event["args"]["seed"], event["args"]["sourceBlock"]) == (info.seed, info.source_block)
    rejects(lambda: reg.fix_seed(0), "SeedAlreadyFixed", 0)
    chain.mine(BLOCKHASH_WINDOW + 10)  # past the BLOCKHASH window: still stored, still checkable
    assert reg.seed(0) == info.seed and reg.seed_info(0) == info
    assert reg.verify_seed(0)
    rejects(lambda: reg.fix_seed(0), "SeedAlreadyFixed", 0)


def test_two_fixes_of_one_seed_in_one_block_name_the_loser_s_error(deployment: Deployment) -> None:
    """Both estimates pass, both transactions land in one block: the second reverts, and the
    replay on the state before the block (where it would pass) is followed by one after it,
    which names ``SeedAlreadyFixed`` (the epoch service takes that as "someone was first")."""
    chain = deployment.chain
    if chain.kind != "anvil":
        return  # eth-tester mines each transaction in its own block
    deployment.chain.mine_to(deployment.registry.epoch_start_block(1) + 1)
    fixers = [deployment.at(chain.new_account()) for _ in range(2)]
    outcomes: list[Any] = []

    def fix(registry: Registry) -> None:
        try:
            outcomes.append(registry.fix_seed(1))
        except RegistryRejected as exc:
            outcomes.append(exc)

    w3 = chain.w3
    w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        threads = [threading.Thread(target=fix, args=(r,)) for r in fixers]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while len(w3.provider.make_request("txpool_content", [])["result"]["pending"]) < 2:  # type: ignore[arg-type]
            assert time.monotonic() < deadline, "both fixes never reached the pool"
            time.sleep(0.05)
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        for t in threads:
            t.join(30)
    finally:
        w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
    errors = [o for o in outcomes if isinstance(o, RegistryRejected)]
    assert len(outcomes) == 2 and len(errors) == 1, outcomes
    assert errors[0].error_name == "SeedAlreadyFixed" and errors[0].error_args == (1,)


def test_seed_fallback_after_the_blockhash_window(deployment: Deployment) -> None:
    reg, chain = deployment.registry, deployment.chain
    boundary = reg.epoch_start_block(1)
    chain.mine_to(boundary + BLOCKHASH_WINDOW + 5)
    result = reg.fix_seed(1)
    info = reg.seed_info(1)
    assert info is not None
    assert info.source_block == result.block_number - 1  # the documented fallback
    assert reg.verify_seed(1)


def test_seed_domain_matches_the_contract(deployment: Deployment) -> None:
    reg = deployment.registry
    assert reg.contract.functions.SEED_DOMAIN().call() == SEED_DOMAIN
    args = (7, ROOT_A)
    assert reg.contract.functions.computeSeed(*args).call() == compute_seed(*args)


# ---------------------------------------------------------------- attestations


def test_attestation_rules(deployment: Deployment) -> None:
    reg, chain = deployment.registry, deployment.chain
    node, as_node = register(deployment)
    other, as_other = register(deployment)
    outsider = chain.new_account()
    rejects(
        lambda: deployment.at(outsider).attest(0, SEED, ROOT_A),
        "NotRegisteredNode",
        outsider.address,
    )
    rejects(lambda: as_node.attest(0, SEED, ROOT_A), "SeedNotFixed", 0)
    rejects(lambda: as_node.attest(1, SEED, ROOT_A), "EpochInFuture", 1, 0)
    rejects(lambda: as_node.attest(0, SEED, bytes(32)), "ZeroRoot")
    reg.fix_seed(0)
    seed = reg.seed_info(0).seed  # type: ignore[union-attr]
    # a root computed from another seed (a fork a reorg replaced) is refused
    rejects(lambda: as_node.attest(0, SEED, ROOT_A), "SeedMismatch", 0, seed, SEED)
    result = as_node.attest(0, seed, ROOT_A)
    assert reg.attestation_of(0, node.address) == ROOT_A
    assert reg.attestation_of(0, other.address) is None
    rejects(lambda: as_node.attest(0, seed, ROOT_B), "AlreadyAttested", 0, node.address)
    assert reg.attestation_of(0, node.address) == ROOT_A
    as_other.attest(0, seed, ROOT_B)
    assert reg.attestation_of(0, other.address) == ROOT_B
    (event,) = reg.contract.events.Attested().process_receipt(
        chain.w3.eth.get_transaction_receipt(result.tx_hash), errors=DISCARD
    )
    assert dict(event["args"]) == {"epoch": 0, "node": node.address, "root": ROOT_A}


# ---------------------------------------------------------------- epoch period vote


def test_period_change_needs_a_majority_of_active_nodes(deployment: Deployment) -> None:
    reg, chain = deployment.registry, deployment.chain
    nodes = [register(deployment) for _ in range(3)]
    (a, as_a), (b, as_b), (_, as_c) = nodes
    outsider = chain.new_account()
    rejects(
        lambda: deployment.at(outsider).propose_epoch_period(5),
        "NotRegisteredNode",
        outsider.address,
    )
    rejects(lambda: as_a.propose_epoch_period(0), "InvalidEpochPeriod", 0)
    proposal = as_a.propose_epoch_period(5)
    assert (proposal.id, proposal.executed) == (0, False)
    assert reg.get_proposal(0).votes == 1 and reg.has_voted(0, a.address)
    rejects(lambda: as_a.vote_epoch_period(0), "AlreadyVoted", 0, a.address)
    rejects(lambda: deployment.at(outsider).vote_epoch_period(0), "NotRegisteredNode")
    rejects(lambda: as_a.vote_epoch_period(9), "UnknownProposal", 9)
    rejects(lambda: reg.execute_epoch_period(0), "NoMajority", 0, 1, 3)
    as_b.vote_epoch_period(0)  # 2 of 3 > half: executed
    assert reg.get_proposal(0).executed and reg.has_voted(0, b.address)
    rejects(lambda: as_c.vote_epoch_period(0), "ProposalAlreadyExecuted", 0)
    rejects(lambda: reg.execute_epoch_period(0), "ProposalAlreadyExecuted", 0)
    assert [p.length for p in reg.periods()] == [deployment.epoch_period, 5]


def test_votes_of_nodes_that_left_do_not_count(deployment: Deployment) -> None:
    reg = deployment.registry
    nodes = [register(deployment) for _ in range(4)]
    nodes[0][1].propose_epoch_period(3)
    nodes[1][1].vote_epoch_period(0)  # 2 of 4: no majority
    assert not reg.get_proposal(0).executed
    rejects(lambda: reg.execute_epoch_period(0), "NoMajority", 0, 2, 4)
    nodes[1][1].leave_node()  # a voter leaves: 1 of 3
    assert reg.get_proposal(0).votes == 1
    nodes[3][1].leave_node()  # a non-voter leaves: 1 of 2, still no majority
    rejects(lambda: reg.execute_epoch_period(0), "NoMajority", 0, 1, 2)
    nodes[2][1].vote_epoch_period(0)  # 2 of 2
    assert reg.get_proposal(0).executed


def test_execute_by_anyone_once_the_majority_holds(deployment: Deployment) -> None:
    reg = deployment.registry
    nodes = [register(deployment) for _ in range(4)]
    nodes[0][1].propose_epoch_period(3)
    nodes[1][1].vote_epoch_period(0)
    nodes[3][1].leave_node()  # 2 of 3 now
    reg.execute_epoch_period(0)  # the admin is not a node: anyone may execute
    assert reg.get_proposal(0).executed
    assert reg.periods()[-1].length == 3


def test_epoch_schedule_stays_continuous_across_period_changes(deployment: Deployment) -> None:
    reg, chain = deployment.registry, deployment.chain
    _, node = register(deployment)  # alone: its proposal is a majority at once
    start = reg.periods()[0].start_block
    chain.mine_to(start + 2 * deployment.epoch_period + 3)  # inside epoch 2
    reg.fix_seed(2)
    seed2 = reg.seed(2)
    before = [reg.epoch_start_block(e) for e in range(4)]
    proposal = node.propose_epoch_period(5)
    assert proposal.executed
    boundary3 = start + 3 * deployment.epoch_period
    assert [reg.epoch_start_block(e) for e in range(4)] == before  # started epochs keep theirs
    assert reg.epoch_start_block(4) == boundary3 + 5
    assert reg.current_epoch() == 2 and reg.epoch_period() == deployment.epoch_period
    # a second change in the same epoch replaces the pending one
    second = node.propose_epoch_period(4)
    assert second.executed and second.id == 1
    periods = reg.periods()
    assert [(p.start_epoch, p.start_block, p.length) for p in periods] == [
        (0, start, deployment.epoch_period),
        (3, boundary3, 4),
    ]
    chain.mine_to(boundary3 - 1)
    assert reg.current_epoch() == 2
    chain.mine(1)
    assert reg.current_epoch() == 3 and reg.epoch_period() == 4
    chain.mine_to(boundary3 + 4)
    assert reg.current_epoch() == 4
    assert reg.epoch_start_block(4) == boundary3 + 4
    assert reg.seed(2) == seed2
    reg.fix_seed(4)
    info = reg.seed_info(4)
    assert info is not None and info.source_block == boundary3 + 4
    assert reg.verify_seed(4)


# ---------------------------------------------------------------- liveness


def test_liveness_window_is_two_periods_in_force(deployment: Deployment) -> None:
    reg, chain = deployment.registry, deployment.chain
    _, node = register(deployment)
    start = reg.periods()[0].start_block
    assert reg.liveness_window(start) == 2 * deployment.epoch_period
    chain.mine_to(start + 3)
    assert node.propose_epoch_period(3).executed  # from epoch 1
    boundary1 = reg.epoch_start_block(1)
    assert reg.liveness_window(boundary1 - 1) == 2 * deployment.epoch_period
    assert reg.liveness_window(boundary1) == 2 * 3


def test_heartbeat_is_for_registered_nodes_and_refreshes_last_seen(
    deployment: Deployment,
) -> None:
    chain = deployment.chain
    outsider = chain.new_account()
    rejects(deployment.at(outsider).heartbeat, "NotRegisteredNode", outsider.address)
    assert deployment.registry.last_seen(outsider.address) == 0
    account = chain.new_account()
    reg = deployment.at(account)
    registered = reg.register_node("http://127.0.0.1:8001", 2, 5, "")
    assert reg.last_seen(account.address) == registered.block_number
    chain.mine(3)
    beat = reg.heartbeat()
    assert beat.block_number > registered.block_number
    assert reg.last_seen(account.address) == beat.block_number
    assert reg.get_node(account.address).registered_at == registered.block_number
    (event,) = reg.contract.events.Heartbeat().process_receipt(
        chain.w3.eth.get_transaction_receipt(beat.tx_hash), errors=DISCARD
    )
    assert dict(event["args"]) == {"node": account.address}
    chain.mine(2)
    updated = reg.update_node("http://127.0.0.1:8001", 3, 5, "")
    assert reg.last_seen(account.address) == updated.block_number
    reg.leave_node()
    rejects(reg.heartbeat, "NotRegisteredNode", account.address)


def test_attest_refreshes_last_seen(deployment: Deployment) -> None:
    reg, chain = deployment.registry, deployment.chain
    node, as_node = register(deployment)
    chain.mine_to(reg.epoch_start_block(1) + 1)
    reg.fix_seed(1)
    result = as_node.attest(1, reg.seed_info(1).seed, ROOT_A)  # type: ignore[union-attr]
    assert reg.last_seen(node.address) == result.block_number


def test_a_node_is_live_for_one_window_after_it_was_last_seen(deployment: Deployment) -> None:
    reg, chain = deployment.registry, deployment.chain
    a, as_a = register(deployment)
    b, _ = register(deployment)
    window = reg.liveness_window(chain.w3.eth.block_number)
    seen_a, seen_b = reg.last_seen(a.address), reg.last_seen(b.address)
    assert seen_b > seen_a
    # live from registration (the block itself included) until the window has passed
    assert reg.is_live_at(a.address, seen_a)
    assert reg.is_live_at(a.address, seen_a + window - 1)
    assert not reg.is_live_at(a.address, seen_a + window)
    assert reg.live_nodes_at(seen_a + window - 1) == ([a.address, b.address], False)
    assert reg.live_nodes_at(seen_a + window) == ([b.address], False)
    # nobody live: every active node is kept (the assignment never goes to nobody)
    assert reg.live_nodes_at(seen_b + window) == ([a.address, b.address], True)
    assert not reg.is_live_at(deployment.admin.address, seen_a)  # not a node
    # a heartbeat makes a live again; b, not seen since, drops out
    chain.mine_to(seen_b + window)
    beat = as_a.heartbeat()
    assert reg.live_nodes_at(beat.block_number) == ([a.address], False)
    # the answer depends on the state read and the block argument only: at an older state
    # (an eth_call at block `seen_b`), a was last seen at registration
    old = reg.contract.functions.liveNodesAt(seen_b + window).call(block_identifier=seen_b)
    assert (list(old[0]), old[1]) == ([a.address, b.address], True)
    # a node that left is never live
    as_a.leave_node()
    assert not reg.is_live_at(a.address, beat.block_number)
    assert reg.live_nodes_at(beat.block_number) == ([b.address], True)


def test_no_active_node_means_an_empty_live_set(deployment: Deployment) -> None:
    assert deployment.registry.live_nodes_at(deployment.chain.w3.eth.block_number) == ([], False)
