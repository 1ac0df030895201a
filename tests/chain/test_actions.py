"""Signed, relayed registry actions (EIP-712, nonce, deadline) and join requests, on
eth-tester and anvil: a wallet with no ether acts through a relayer that pays the gas."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from node.chain.actions import Action, check_action, recover_signer, sign_action, typed_data
from node.chain.registry import Registry
from node.errors import ValidationError
from tests.chain.test_registry import rejects

if TYPE_CHECKING:
    from tests.chain.conftest import Deployment


def signed(
    reg: Registry, who: LocalAccount, action: str, *, deadline: int | None = None, **fields: str
) -> tuple[Action, str]:
    """Return ``action`` by ``who`` with its next nonce, and its signature."""
    act = Action(
        action=action,
        signer=who.address,
        nonce=reg.nonce_of(who.address),
        deadline=int(time.time()) + 600 if deadline is None else deadline,
        **fields,
    )
    return act, sign_action(act, reg.w3.eth.chain_id, reg.address, who)


def test_digest_matches_the_contract(deployment: Deployment) -> None:
    reg = deployment.registry
    who = Account.create()
    act, sig = signed(reg, who, "requestJoin", subsystem="s", data="hello")
    assert recover_signer(act, reg.w3.eth.chain_id, reg.address, sig) == who.address
    full = typed_data(act, reg.w3.eth.chain_id, reg.address)
    signable = encode_typed_data(full_message=full)
    digest = keccak(b"\x19" + signable.version + signable.header + signable.body)
    assert reg.action_digest(act) == digest


def test_a_wallet_with_no_ether_creates_joins_and_is_approved(deployment: Deployment) -> None:
    relayer = deployment.registry  # the deployer pays the gas
    owner, newcomer = Account.create(), Account.create()
    assert relayer.w3.eth.get_balance(owner.address) == 0
    relayer.relay(*signed(relayer, owner, "createSubsystem", subsystem="shop"))
    assert relayer.is_subsystem_admin("shop", owner.address)
    assert relayer.subsystem_admins("shop") == [owner.address]
    assert relayer.is_participant("shop", owner.address)

    relayer.relay(*signed(relayer, newcomer, "requestJoin", subsystem="shop", data="let me in"))
    assert relayer.join_requests("shop") == [newcomer.address]
    assert relayer.join_request("shop", newcomer.address) == (True, "let me in")
    rejects(
        lambda: relayer.relay(*signed(relayer, newcomer, "requestJoin", subsystem="shop")),
        "JoinAlreadyPending",
    )
    relayer.relay(
        *signed(relayer, owner, "addParticipant", subsystem="shop", account=newcomer.address)
    )
    assert relayer.is_participant("shop", newcomer.address)
    assert relayer.join_requests("shop") == []
    assert relayer.nonce_of(owner.address) == 2
    assert relayer.w3.eth.get_balance(newcomer.address) == 0


def test_deny_and_cancel(deployment: Deployment) -> None:
    reg = deployment.registry
    owner, asker = Account.create(), Account.create()
    reg.relay(*signed(reg, owner, "createSubsystem", subsystem="club"))
    reg.relay(*signed(reg, asker, "requestJoin", subsystem="club"))
    rejects(
        lambda: reg.relay(*signed(reg, asker, "denyJoin", subsystem="club", account=asker.address)),
        "NotSubsystemAdmin",
        "club",
        asker.address,
    )
    reg.relay(*signed(reg, owner, "denyJoin", subsystem="club", account=asker.address))
    assert reg.join_requests("club") == []
    assert not reg.is_participant("club", asker.address)
    reg.relay(*signed(reg, asker, "requestJoin", subsystem="club", data="again"))
    reg.relay(*signed(reg, asker, "cancelJoin", subsystem="club"))
    assert reg.join_request("club", asker.address) == (False, "")
    rejects(lambda: reg.relay(*signed(reg, asker, "cancelJoin", subsystem="club")), "NoJoinRequest")
    # a wallet with ether may still call directly
    direct = deployment.chain.new_account()
    deployment.at(direct).request_join("club", "direct")
    assert reg.join_requests("club") == [direct.address]


def test_replay_expiry_forgery_and_non_admin_are_refused(deployment: Deployment) -> None:
    reg = deployment.registry
    owner, stranger = Account.create(), Account.create()
    act, sig = signed(reg, owner, "createSubsystem", subsystem="mine")
    reg.relay(act, sig)
    rejects(lambda: reg.relay(act, sig), "InvalidNonce", owner.address, 1, 0)

    late, late_sig = signed(reg, owner, "createSubsystem", subsystem="late", deadline=1)
    error = rejects(lambda: reg.relay(late, late_sig), "SignatureExpired")
    assert error.error_args[0] == 1

    # a relayer swaps the account of a signed action: the signature no longer recovers
    act, sig = signed(reg, owner, "addParticipant", subsystem="mine", account=stranger.address)
    forged = Action(**{**act.as_dict(), "account": reg.address})
    error = rejects(lambda: reg.relay(forged, sig), "InvalidActionSignature")
    assert error.error_args[0] == owner.address
    # high-s and short signatures recover to nobody
    rejects(lambda: reg.relay(act, "0x" + "11" * 64), "InvalidActionSignature", owner.address,
            "0x" + "00" * 20)  # fmt: skip

    rejects(
        lambda: reg.relay(
            *signed(reg, stranger, "addParticipant", subsystem="mine", account=stranger.address)
        ),
        "NotSubsystemAdmin",
        "mine",
        stranger.address,
    )
    rejects(
        lambda: reg.relay(*signed(reg, stranger, "addSystemAdmin", account=stranger.address)),
        "NotSystemAdmin",
        stranger.address,
    )
    rejects(
        lambda: reg.relay(*signed(reg, owner, "createSubsystem", subsystem="x", data="junk")),
        "UnknownAction",
    )
    # nothing half-written: the failed actions used no nonce
    assert reg.nonce_of(stranger.address) == 0
    assert reg.nonce_of(owner.address) == 1
    assert reg.subsystems().count("x") == 0


def test_system_admin_and_frontend_actions(deployment: Deployment) -> None:
    reg = deployment.registry
    operator = Account.create()
    reg.add_system_admin(operator.address)
    helper = Account.create()
    reg.relay(*signed(reg, operator, "addSystemAdmin", account=helper.address))
    reg.relay(*signed(reg, operator, "setFrontend", data="bafkqaaa"))
    assert reg.frontend_cid() == "bafkqaaa"
    reg.relay(*signed(reg, operator, "createSubsystem", subsystem="ui"))
    reg.relay(*signed(reg, operator, "setSubsystemFrontend", subsystem="ui", data="bafkqaaa"))
    assert reg.subsystem_frontend("ui") == "bafkqaaa"
    reg.relay(*signed(reg, operator, "addSubsystemAdmin", subsystem="ui", account=helper.address))
    reg.relay(*signed(reg, helper, "removeSubsystemAdmin", subsystem="ui",
                      account=operator.address))  # fmt: skip
    assert not reg.is_subsystem_admin("ui", operator.address)
    assert reg.subsystem_admins("ui") == [helper.address]
    reg.relay(*signed(reg, helper, "removeSystemAdmin", account=operator.address))
    assert not reg.is_system_admin(operator.address)


def test_check_action_refuses_bad_shapes() -> None:
    who = Account.create().address
    with pytest.raises(ValidationError, match="unknown action"):
        check_action(Action("mint", who, 0, 1))
    with pytest.raises(ValidationError, match="needs a subsystem"):
        check_action(Action("createSubsystem", who, 0, 1))
    with pytest.raises(ValidationError, match="takes no account"):
        check_action(Action("createSubsystem", who, 0, 1, subsystem="s", account=who))
    with pytest.raises(ValidationError, match="at most 280"):
        check_action(Action("requestJoin", who, 0, 1, subsystem="s", data="x" * 281))
    assert check_action(Action("requestJoin", who.lower(), 0, 1, subsystem="s")).signer == who
