"""The checks before any write (node/ledger/checks.py): no index, no chain, in-memory fakes."""

from __future__ import annotations

import dataclasses
import time

import pytest
from eth_account import Account

from node.ledger.checks import (
    AdmissionPolicy,
    FutureTimestamp,
    NotAParticipant,
    SignerMismatch,
    UnknownSubsystem,
    UsedKeys,
    compute_nonce_key,
    compute_replay_error,
)
from node.ledger.participants import ParticipantCache
from node.ledger.transaction import BusinessTx, Domain, SignedBusinessTx, sign_tx, verify_signed_tx

DOMAIN = Domain(1337, "0x" + "11" * 20)
WALLET = Account.create()


class Members:
    def __init__(self, *members: str) -> None:
        self.members = set(members)

    def subsystem_exists(self, name: str) -> bool:
        return name == "main"

    def is_participant(self, name: str, account: str) -> bool:
        return account in self.members


def signed(**changes: object) -> SignedBusinessTx:
    tx = BusinessTx("main", "payment", (), "10", "EUR", "", "", 1, 1_764_000_000)
    tx = dataclasses.replace(tx, **changes)
    return verify_signed_tx(DOMAIN, tx, sign_tx(DOMAIN, tx, WALLET.key))


def policy(*members: str, require: bool = True) -> AdmissionPolicy:
    return AdmissionPolicy(ParticipantCache(Members(*members)), require_participant=require)


def test_a_participant_passes_and_each_failure_has_its_error() -> None:
    good = signed()
    assert policy(WALLET.address).check(good, WALLET.address.lower()) is good
    assert policy(require=False).check(good, None) is good
    with pytest.raises(SignerMismatch):
        policy(WALLET.address).check(good, Account.create().address)
    with pytest.raises(FutureTimestamp):
        policy(WALLET.address).check(signed(timestamp=int(time.time()) + 3600), None)
    with pytest.raises(UnknownSubsystem):
        policy(WALLET.address).check(signed(subsystem="nowhere"), None)
    with pytest.raises(NotAParticipant):
        policy().check(good, None)


def test_the_cached_check_answers_only_from_the_cache_and_as_the_full_one() -> None:
    """``check_cached`` (the fast path's, on the event loop) reads no registry: None on a
    cold cache; once ``check`` has read the answers, the same result or the same error."""
    good, outsider = signed(), signed(subsystem="nowhere")
    members = Members(WALLET.address)
    admission = AdmissionPolicy(ParticipantCache(members), require_participant=True)
    members.is_participant = lambda *_: pytest.fail("the cached check read the registry")  # type: ignore[method-assign]
    assert admission.check_cached(good, None) is None  # the subsystem is not cached either
    with pytest.raises(SignerMismatch):  # no registry answer needed for these
        admission.check_cached(good, Account.create().address)
    with pytest.raises(FutureTimestamp):
        admission.check_cached(signed(timestamp=int(time.time()) + 3600), None)
    members.is_participant = lambda name, account: account in {WALLET.address}  # type: ignore[method-assign]
    assert admission.check(good, None) is good
    with pytest.raises(UnknownSubsystem):
        admission.check(outsider, None)
    members.is_participant = lambda *_: pytest.fail("the cached check read the registry")  # type: ignore[method-assign]
    assert admission.check_cached(good, None) is good
    with pytest.raises(UnknownSubsystem):
        admission.check_cached(outsider, None)
    assert admission.check_cached(signed(nonce=2), None) is not None  # same signer: cached
    stranger = AdmissionPolicy(admission.participants, require_participant=True)
    other = verify_signed_tx(DOMAIN, good.tx, sign_tx(DOMAIN, good.tx, Account.create().key))
    assert stranger.check_cached(other, None) is None  # this signer's answer is not cached
    assert (
        AdmissionPolicy(admission.participants, require_participant=False).check_cached(other, None)
        is other
    )


def test_used_keys_hold_a_transaction_by_id_or_by_signer_and_nonce() -> None:
    first, other_nonce = signed(nonce=1), signed(nonce=2)
    same_nonce = signed(nonce=1, amount="11")  # another transaction, the same nonce
    by_id = UsedKeys({first.tx_id}, set())
    by_nonce = UsedKeys(set(), {compute_nonce_key(first)})
    assert by_id.holds(first) and not by_id.holds(same_nonce)
    assert by_nonce.holds(first) and by_nonce.holds(same_nonce)
    assert not by_nonce.holds(other_nonce)
    assert "nonce 1" in str(compute_replay_error(first))
