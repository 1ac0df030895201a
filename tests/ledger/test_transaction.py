"""EIP-712 business transactions and their canonical RLP leaf."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import coincurve
import pytest
import rlp
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.errors import ValidationError
from node.ledger.transaction import (
    PRIVATE_TYPE,
    SECP256K1_HALF_N,
    SECP256K1_N,
    BusinessTx,
    Domain,
    compute_digest,
    compute_payload_hash,
    compute_tx_id,
    decode_leaf,
    decode_leaf_payload,
    encode_leaf,
    recover_digest_signer,
    sign_tx,
    typed_data,
    validate_amount,
    validate_tx,
    verify_signed_tx,
)
from tests.support.transactions import (
    business_txs,
    domains,
    reference_digest,
    reference_leaf,
    reference_signer,
    sign_digest,
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


_PARTY = Account.create().address


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"amount": "1\n"}, "amount"),
        ({"currency": "EUR\n"}, "currency"),
        ({"kind": "invoice\n"}, "kind"),
        ({"subsystem": "main\n"}, "subsystem"),
        ({"parties": (_PARTY, _PARTY.lower())}, "more than once"),
        ({"parties": ("0x" + "00" * 20,)}, "zero address"),
        ({"nonce": 2**63}, "nonce"),
        ({"timestamp": 2**64 - 1}, "timestamp"),
    ],
)
def test_formats_are_exact(wallet, domain, change, needle) -> None:  # type: ignore[no-untyped-def]
    tx = make_tx(**change)
    with pytest.raises(ValidationError, match=needle):
        verify_signed_tx(domain, tx, sign_tx(domain, tx, wallet.key))


def test_private_payload_hash_is_matched_in_full(wallet, domain) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match="payload_hash"):
        verify_signed_tx(domain, make_private(payload_hash="0x" + "ab" * 32 + "\n"), b"\0" * 65)


def test_the_largest_index_integer_is_accepted(wallet, domain) -> None:  # type: ignore[no-untyped-def]
    from node.ledger.transaction import MAX_INDEX_INT

    tx = make_tx(nonce=MAX_INDEX_INT, timestamp=MAX_INDEX_INT)
    assert verify_signed_tx(domain, tx, sign_tx(domain, tx, wallet.key)).signer == wallet.address


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
    items[0] = 3  # unknown version
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


def make_private(**changes: object) -> BusinessTx:
    tx = BusinessTx(
        subsystem="main",
        kind="contract",
        parties=(),
        amount="",
        currency="",
        memo="",
        payload="bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
        nonce=9,
        timestamp=1_764_000_000,
        private=True,
        payload_hash=compute_payload_hash(b"\x01" * 16, b"secret terms"),
    )
    return dataclasses.replace(tx, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize("private", [False, True])
def test_fast_digest_equals_eth_account(wallet, domain, private) -> None:  # type: ignore[no-untyped-def]
    for nonce in range(5):
        tx = make_private(nonce=nonce) if private else make_tx(nonce=nonce, memo="é" * nonce)
        signed = Account.sign_typed_data(wallet.key, full_message=typed_data(domain, tx))
        assert compute_tx_id(domain, tx) == "0x" + bytes(signed.message_hash).hex()
        assert verify_signed_tx(domain, tx, bytes(signed.signature)).signer == wallet.address
        # only the canonical form: v as 0/1 and the high-s twin are refused (one encoding)
        low_v = bytes(signed.signature[:64]) + bytes([signed.signature[64] - 27])
        with pytest.raises(ValidationError, match="v must be 27 or 28"):
            verify_signed_tx(domain, tx, low_v)


def test_private_roundtrip_and_only_commitment_is_public(wallet, domain) -> None:  # type: ignore[no-untyped-def]
    tx = make_private()
    assert typed_data(domain, tx)["primaryType"] == PRIVATE_TYPE
    signed = verify_signed_tx(domain, tx, sign_tx(domain, tx, wallet.key))
    body = signed.encode()
    assert b"secret terms" not in body
    assert rlp.decode(body)[0] == b"\x02"
    assert decode_leaf(body) == signed
    # the public and private types never share a digest
    public = make_tx(payload=tx.payload, nonce=tx.nonce, parties=(), amount="0", currency="X")
    assert compute_tx_id(domain, public) != compute_tx_id(domain, tx)


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"amount": "1"}, "encrypted payload"),
        ({"parties": ("0x" + "11" * 20,)}, "encrypted payload"),
        ({"memo": "leak"}, "encrypted payload"),
        ({"payload": ""}, "ciphertext"),
        ({"payload_hash": "0x1234"}, "payload_hash"),
        ({"payload_hash": "0x" + "AB" * 32}, "payload_hash"),
    ],
)
def test_private_rejects_public_content(domain, change, needle) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match=needle):
        verify_signed_tx(domain, make_private(**change), b"\x00" * 65)


def test_public_rejects_payload_hash(domain) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match="only for private"):
        verify_signed_tx(domain, make_tx(payload_hash="0x" + "00" * 32), b"\x00" * 65)


def test_direct_recovery_matches_eth_keys_and_rejects_out_of_range(domain) -> None:  # type: ignore[no-untyped-def]
    from eth_utils import to_checksum_address

    from node.ledger.transaction import compute_checksum_address, recover_digest_signer

    for _ in range(5):
        address = Account.create().address
        raw = bytes.fromhex(address[2:])
        assert compute_checksum_address(raw) == to_checksum_address(address)
    tx = make_tx()
    wallet = Account.create()
    sig = sign_tx(domain, tx, wallet.key)
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    digest = bytes.fromhex(compute_tx_id(domain, tx)[2:])
    assert recover_digest_signer(digest, sig) == wallet.address
    for bad in (
        n.to_bytes(32, "big") + sig[32:],  # r = n
        sig[:32] + bytes(32) + sig[64:],  # s = 0
        sig[:64] + bytes([29]),  # v = 2
        sig[:64] + bytes([sig[64] - 27]),  # v = 0/1
        # the high-s twin (r, n - s, other v) recovers the same key: refused (EIP-2)
        sig[:32]
        + (n - int.from_bytes(sig[32:64], "big")).to_bytes(32, "big")
        + bytes([55 - sig[64]]),
    ):
        with pytest.raises(ValidationError, match="not valid"):
            recover_digest_signer(digest, bad)


def test_rlp_encoder_matches_pyrlp() -> None:
    import random

    from node.ledger.transaction import compute_rlp

    rng = random.Random(1234)

    def item(depth: int) -> object:
        kind = rng.randrange(4 if depth < 3 else 2)
        if kind == 0:
            return bytes(rng.randrange(256) for _ in range(rng.choice((0, 1, 1, 2, 55, 56, 300))))
        if kind == 1:
            return rng.choice((0, 1, 127, 128, 255, 256, 2**64 - 1, 2**200))
        return [item(depth + 1) for _ in range(rng.randrange(0, 6))]

    for _ in range(500):
        value = item(0)
        assert compute_rlp(value) == rlp.encode(value)  # type: ignore[arg-type]
    assert compute_rlp([b"x" * 60] * 3) == rlp.encode([b"x" * 60] * 3)


@pytest.mark.parametrize("private", [False, True])
def test_decode_leaf_payload_reads_the_payload_field(wallet, domain, private) -> None:  # type: ignore[no-untyped-def]
    cid = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    tx = make_private() if private else make_tx(payload=cid)
    body = encode_leaf(domain, tx, sign_tx(domain, tx, wallet.key))
    assert decode_leaf_payload(body) == decode_leaf(body).tx.payload == tx.payload
    for bad in (b"", b"\x80", rlp.encode([3, b"x"]), rlp.encode([1, 2, 3])):
        with pytest.raises(ValidationError):
            decode_leaf_payload(bad)


# -- the fast paths against the general libraries and the previous code, on random inputs --

SECRETS = st.integers(1, SECP256K1_N - 1).map(lambda k: k.to_bytes(32, "big"))
EDGE_WORDS = [
    0,
    1,
    SECP256K1_HALF_N,
    SECP256K1_HALF_N + 1,
    SECP256K1_N - 1,
    SECP256K1_N,
    2**256 - 1,
]
WORDS = st.sampled_from(EDGE_WORDS).map(lambda w: w.to_bytes(32, "big")) | st.binary(
    min_size=32, max_size=32
)


def outcome(compute: Callable[[], object]) -> tuple[str, object]:
    """Return ``("ok", value)`` or the exception's type name and message."""
    try:
        return "ok", compute()
    except Exception as exc:
        return type(exc).__name__, str(exc)


def previous_recover_digest_signer(digest: bytes, signature: bytes) -> str:
    """``recover_digest_signer`` as it was before the direct libsecp256k1 path (commit
    2382761): integer range checks, coincurve's ``PublicKey``, eth_utils' checksum."""
    if len(signature) != 65:
        raise ValidationError(f"signature must be 65 bytes, got {len(signature)}")
    if signature[64] not in (27, 28):
        raise ValidationError(f"signature is not valid: v must be 27 or 28, got {signature[64]}")
    v = signature[64] - 27
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    if not (0 < r < SECP256K1_N and 0 < s < SECP256K1_N):
        raise ValidationError("signature is not valid: r or s out of range")
    if s > SECP256K1_HALF_N:
        raise ValidationError(
            "signature is not valid: s is in the upper half of the curve order "
            "(EIP-2: only the low-s form is accepted)"
        )
    try:
        public = coincurve.PublicKey.from_signature_and_message(
            signature[:64] + bytes([v]), digest, hasher=None
        )
    except Exception as exc:
        raise ValidationError(f"signature is not valid: {exc}") from exc
    return str(to_checksum_address(keccak(public.format(compressed=False)[1:])[-20:]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(domains, business_txs, SECRETS)
def test_digest_signer_and_leaf_match_the_libraries(domain, tx, secret) -> None:  # type: ignore[no-untyped-def]
    validate_tx(tx)
    digest = compute_digest(domain, tx)
    assert digest == reference_digest(domain, tx)
    signature = sign_digest(digest, secret)
    assert recover_digest_signer(digest, signature) == reference_signer(digest, signature)
    assert encode_leaf(domain, tx, signature) == reference_leaf(domain, tx, signature)


@settings(max_examples=400, deadline=None)
@given(
    st.binary(min_size=32, max_size=32) | st.binary(max_size=40),
    WORDS,
    WORDS,
    st.sampled_from([0, 1, 25, 26, 27, 28, 29, 255]),
    st.sampled_from([63, 64, 65, 66]),
)
def test_recovery_matches_the_previous_code_on_any_signature(  # type: ignore[no-untyped-def]
    digest, r, s, v, length
) -> None:
    signature = (r + s + bytes([v]) + b"\x01")[:length]
    expected = outcome(lambda: previous_recover_digest_signer(digest, signature))
    assert outcome(lambda: recover_digest_signer(digest, signature)) == expected


@settings(max_examples=400, deadline=None)
@given(
    st.binary(min_size=32, max_size=32) | st.binary(max_size=40),
    WORDS,
    WORDS,
    st.integers(0, 5),
    st.sampled_from([64, 65, 66]),
)
def test_recover_public_key_matches_coincurve(digest, r, s, recovery_id, length) -> None:  # type: ignore[no-untyped-def]
    from node.ledger.transaction.signature import _recover_with_coincurve, recover_public_key

    signature = (r + s + bytes([recovery_id]) + b"\x00")[:length]
    expected = outcome(
        lambda: coincurve.PublicKey.from_signature_and_message(
            signature, digest, hasher=None
        ).format(compressed=False)
    )
    assert outcome(lambda: recover_public_key(digest, signature)) == expected
    assert outcome(lambda: _recover_with_coincurve(digest, signature)) == expected


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=32, max_size=32), SECRETS)
def test_recover_public_key_finds_the_signing_key(digest, secret) -> None:  # type: ignore[no-untyped-def]
    from node.ledger.transaction.signature import recover_public_key

    signature = sign_digest(digest, secret)
    key = recover_public_key(digest, signature[:64] + bytes([signature[64] - 27]))
    assert key == coincurve.PrivateKey(secret).public_key.format(compressed=False)


@settings(max_examples=1000)
@given(
    st.text(alphabet="0xX123456789abcdefABCDEFg \n", min_size=36, max_size=44)
    | st.text(max_size=50)
    | st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
)
def test_is_hex_address_matches_eth_utils(value: str) -> None:
    from eth_utils import is_hex_address as eth_is_hex_address

    from node.ledger.transaction import is_hex_address

    assert is_hex_address(value) == eth_is_hex_address(value)
    for other in (value.encode(), None, 0, ["0x" + "11" * 20]):
        assert is_hex_address(other) == eth_is_hex_address(other)


def test_recovery_without_the_binding_gives_the_same_signers_and_errors(  # type: ignore[no-untyped-def]
    domain, monkeypatch
) -> None:
    """If coincurve's binding module moved, its public ``PublicKey`` answers the same."""
    from node.ledger.transaction import signature as module

    cases = []
    for nonce in range(20):
        tx = make_tx(nonce=nonce)
        digest = compute_digest(domain, tx)
        good = sign_digest(digest, (nonce + 1).to_bytes(32, "big"))
        bad_r = (SECP256K1_N - 1 - nonce).to_bytes(32, "big") + good[32:]  # often no point
        cases += [(digest, good), (digest, bad_r), (digest[:31], good)]
    direct = [outcome(lambda d=d, s=s: recover_digest_signer(d, s)) for d, s in cases]
    monkeypatch.setattr(module, "_lib", None)
    assert [outcome(lambda d=d, s=s: recover_digest_signer(d, s)) for d, s in cases] == direct
    assert {kind for kind, _ in direct} == {"ok", "ValidationError"}


def test_a_party_without_its_0x_prefix_is_refused_before_the_leaf_is_encoded() -> None:
    # eth_utils' address pattern takes 40 hex digits bare; the leaf encodes a party's bytes
    # after "0x", so a bare one would become 19 bytes that no reader decodes
    from eth_account import Account

    from node.errors import ValidationError
    from node.ledger.transaction import BusinessTx, validate_tx

    bare = Account.create().address[2:]
    tx = BusinessTx("main", "invoice", (bare,), "1", "EUR", "", "", 1, 1_700_000_000)
    with pytest.raises(ValidationError, match="0x-prefixed"):
        validate_tx(tx)
    validate_tx(BusinessTx("main", "invoice", ("0X" + bare,), "1", "EUR", "", "", 1, 1))
