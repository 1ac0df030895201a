"""EIP-712 business transactions and their canonical RLP leaf."""

from __future__ import annotations

import dataclasses

import pytest
import rlp
from eth_account import Account

from node.errors import ValidationError
from node.ledger.transaction import (
    BusinessTx,
    Domain,
    compute_tx_id,
    decode_leaf,
    encode_leaf,
    sign_tx,
    typed_data,
    validate_amount,
    verify_signed_tx,
)


@pytest.fixture
def wallet():  # type: ignore[no-untyped-def]
    return Account.create()


@pytest.fixture
def domain() -> Domain:
    return Domain(1337, "0x" + "ab" * 20)


def make_tx(**changes: object) -> BusinessTx:
    tx = BusinessTx(
        subsystem="main",
        kind="invoice",
        parties=(Account.create().address,),
        amount="125.50".rstrip("0"),
        currency="EUR",
        memo="consulting, November",
        payload="",
        nonce=7,
        timestamp=1_764_000_000,
    )
    return dataclasses.replace(tx, **changes)  # type: ignore[arg-type]


def test_sign_recover_roundtrip(wallet, domain) -> None:  # type: ignore[no-untyped-def]
    tx = make_tx()
    signed = verify_signed_tx(domain, tx, sign_tx(domain, tx, wallet.key))
    assert signed.signer == wallet.address
    assert signed.tx_id == compute_tx_id(domain, tx)
    assert decode_leaf(signed.encode()) == signed


def test_tx_id_matches_eth_account_typed_data_hash(wallet, domain) -> None:  # type: ignore[no-untyped-def]
    tx = make_tx()
    signed = Account.sign_typed_data(wallet.key, full_message=typed_data(domain, tx))
    assert compute_tx_id(domain, tx) == "0x" + bytes(signed.message_hash).hex()


def test_domain_binds_chain_and_contract(wallet, domain) -> None:  # type: ignore[no-untyped-def]
    tx = make_tx()
    sig = sign_tx(domain, tx, wallet.key)
    other_chain = Domain(1, domain.verifying_contract)
    other_contract = Domain(domain.chain_id, "0x" + "cd" * 20)
    assert verify_signed_tx(other_chain, tx, sig).signer != wallet.address
    assert verify_signed_tx(other_contract, tx, sig).signer != wallet.address


def test_any_field_change_changes_signer(wallet, domain) -> None:  # type: ignore[no-untyped-def]
    tx = make_tx()
    sig = sign_tx(domain, tx, wallet.key)
    for change in ({"amount": "125.51"}, {"nonce": 8}, {"memo": "x"}, {"kind": "payment"}):
        assert verify_signed_tx(domain, make_tx(**change), sig).signer != wallet.address


@pytest.mark.parametrize(
    "amount", ["01", "1.50", "-1", "1e3", "1.", ".5", "", "1,5", "0.0", "NaN", "1" * 39]
)
def test_amount_rejects_non_canonical(amount: str) -> None:
    with pytest.raises(ValidationError):
        validate_amount(amount)


@pytest.mark.parametrize("amount", ["0", "1", "12.5", "0.000000000000000001", "99999999"])
def test_amount_accepts_exact_decimals(amount: str) -> None:
    assert format(validate_amount(amount), "f") == amount


@pytest.mark.parametrize(
    "change",
    [
        {"subsystem": ""},
        {"subsystem": "Has Space"},
        {"subsystem": "x" * 65},
        {"kind": "Invoice"},
        {"currency": "eur"},
        {"memo": "x" * 1025},
        {"parties": ("0x1234",)},
        {"parties": tuple(Account.create().address for _ in range(17))},
        {"nonce": 2**64},
    ],
)
def test_invalid_fields_rejected(wallet, domain, change) -> None:  # type: ignore[no-untyped-def]
    tx = make_tx(**change)
    with pytest.raises(ValidationError):
        verify_signed_tx(domain, tx, b"\x00" * 65)


def test_bad_signatures(domain) -> None:  # type: ignore[no-untyped-def]
    tx = make_tx()
    with pytest.raises(ValidationError, match="65 bytes"):
        verify_signed_tx(domain, tx, b"\x01" * 64)
    with pytest.raises(ValidationError, match="not valid"):
        verify_signed_tx(domain, tx, b"\xff" * 65)


def test_leaf_rejects_tampering(wallet, domain) -> None:  # type: ignore[no-untyped-def]
    tx = make_tx()
    sig = sign_tx(domain, tx, wallet.key)
    body = encode_leaf(domain, tx, sig)
    items = rlp.decode(body)
    items[0] = 2  # unknown version
    with pytest.raises(ValidationError, match="version"):
        decode_leaf(rlp.encode(items))
    with pytest.raises(ValidationError):
        decode_leaf(body[:-1])
    with pytest.raises(ValidationError, match="13 items"):
        decode_leaf(rlp.encode([1, 2]))
    flipped = bytearray(body)
    flipped[-70] ^= 0x01  # inside the timestamp/nonce/signature region
    try:
        tampered = decode_leaf(bytes(flipped))
    except ValidationError:
        return
    assert tampered.signer != wallet.address
