"""Subsystem encryption end to end on a real embedded content store: participants read, others
cannot, a removed participant cannot read what is sealed after removal, tampering is rejected."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from node.crypto import (
    KEY_ANNOUNCEMENT_TEMPLATE,
    DecryptionFailed,
    InvalidSignature,
    MalformedObject,
    NotARecipient,
    Recipient,
    compute_address,
    compute_public_key,
    ecies,
    get_envelope,
    make_envelope,
    new_content_key,
    open_envelope,
    put_envelope,
    put_sealed,
    read_sealed,
    recover_participant_key,
    recover_public_key,
    rotate_envelope,
    unseal,
)
from node.crypto.sealed import decode_sealed, seal
from node.storage import EmbeddedStore

SUBSYSTEM = "atelier"
PAYLOAD = b'{"salary": 4200, "employee": "alice"}'


def announce(account: LocalAccount) -> Recipient:
    """Return the recipient a node learns from ``account``'s signed key announcement."""
    message = KEY_ANNOUNCEMENT_TEMPLATE.format(address=account.address, subsystem=SUBSYSTEM)
    signed = account.sign_message(encode_defunct(text=message))
    return Recipient(
        account.address, recover_participant_key(account.address, message, signed.signature)
    )


def key_of(account: LocalAccount) -> bytes:
    return bytes(account.key)


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedStore:
    return EmbeddedStore(tmp_path / "ipfs")


def test_public_key_is_recovered_from_any_personal_sign_signature() -> None:
    account = Account.create()
    siwe_like = "127.0.0.1 wants you to sign in with your Ethereum account:\n" + account.address
    signature = account.sign_message(encode_defunct(text=siwe_like)).signature

    public_key = recover_public_key(siwe_like, signature)

    assert public_key == compute_public_key(key_of(account))
    assert compute_address(public_key) == account.address
    assert recover_public_key(siwe_like, "0x" + bytes(signature).hex()) == public_key


def test_key_announcement_signed_by_someone_else_is_rejected() -> None:
    alice, mallory = Account.create(), Account.create()
    message = KEY_ANNOUNCEMENT_TEMPLATE.format(address=alice.address, subsystem=SUBSYSTEM)
    forged = mallory.sign_message(encode_defunct(text=message)).signature
    with pytest.raises(InvalidSignature):
        recover_participant_key(alice.address, message, forged)
    with pytest.raises(InvalidSignature):
        recover_public_key(message, b"\x00" * 10)


def test_ecies_round_trip_and_binding() -> None:
    alice, bob = Account.create(), Account.create()
    blob = ecies.encrypt(compute_public_key(key_of(alice)), b"secret", b"ctx")
    assert ecies.decrypt(key_of(alice), blob, b"ctx") == b"secret"
    assert blob != ecies.encrypt(compute_public_key(key_of(alice)), b"secret", b"ctx")  # fresh
    with pytest.raises(DecryptionFailed):
        ecies.decrypt(key_of(bob), blob, b"ctx")  # another private key
    with pytest.raises(DecryptionFailed):
        ecies.decrypt(key_of(alice), blob, b"other context")
    with pytest.raises(MalformedObject):
        ecies.decrypt(key_of(alice), blob[:20], b"ctx")


def test_participants_read_non_participant_cannot(store: EmbeddedStore) -> None:
    alice, bob, carol = Account.create(), Account.create(), Account.create()
    key = new_content_key()
    envelope = make_envelope(SUBSYSTEM, 1, key, [announce(alice), announce(bob)])
    envelope_cid = put_envelope(store, envelope)

    cid = put_sealed(store, key, envelope_cid, envelope, PAYLOAD)

    assert read_sealed(store, cid, key_of(alice)) == PAYLOAD
    assert read_sealed(store, cid, key_of(bob)) == PAYLOAD
    with pytest.raises(NotARecipient):
        read_sealed(store, cid, key_of(carol))
    assert PAYLOAD not in store.cat(cid)  # the store (any node, e.g. be_system) holds ciphertext
    # carol copying alice's wrapped key into her own slot still fails to authenticate
    forged = json.loads(store.cat(envelope_cid))
    forged["recipients"][0]["address"] = carol.address
    forged["recipients"][0]["public_key"] = compute_public_key(key_of(carol)).hex()
    with pytest.raises(DecryptionFailed):
        open_envelope(get_envelope(store, put_bytes(store, forged)), key_of(carol))
    with pytest.raises(DecryptionFailed):
        unseal(new_content_key(), decode_sealed(store.cat(cid)))  # a wrong content key


def put_bytes(store: EmbeddedStore, document: dict[str, object]) -> str:
    return store.add_bytes(json.dumps(document, sort_keys=True, separators=(",", ":")).encode())


@pytest.mark.parametrize("field", ["ciphertext", "nonce", "subsystem", "key_version", "commitment"])
def test_tampered_sealed_object_is_rejected(store: EmbeddedStore, field: str) -> None:
    alice = Account.create()
    key = new_content_key()
    envelope = make_envelope(SUBSYSTEM, 1, key, [announce(alice)])
    sealed = json.loads(seal(key, SUBSYSTEM, 1, put_envelope(store, envelope), PAYLOAD).encode())
    if field in ("ciphertext", "nonce"):
        raw = bytearray(base64.b64decode(sealed[field]))
        raw[0] ^= 1
        sealed[field] = base64.b64encode(bytes(raw)).decode()
    elif field == "subsystem":
        sealed[field] = "other"
    elif field == "key_version":
        sealed[field] = 2
    else:
        sealed[field] = "00" * 32

    with pytest.raises((DecryptionFailed, MalformedObject)) as info:
        read_sealed(store, put_bytes(store, sealed), key_of(alice))
    if field in ("ciphertext", "nonce", "commitment"):
        assert info.type is DecryptionFailed
    with pytest.raises(DecryptionFailed):
        unseal(key, decode_sealed(json.dumps(sealed).encode()))


def test_removed_participant_cannot_read_data_sealed_after_rotation(store: EmbeddedStore) -> None:
    alice, bob = Account.create(), Account.create()
    key1 = new_content_key()
    v1 = make_envelope(SUBSYSTEM, 1, key1, [announce(alice), announce(bob)])
    v1_cid = put_envelope(store, v1)
    before = put_sealed(store, key1, v1_cid, v1, b"before removal")

    key2, v2 = rotate_envelope(v1, v1_cid, [announce(alice)])  # bob removed
    v2_cid = put_envelope(store, v2)
    after = put_sealed(store, key2, v2_cid, v2, b"after removal")

    assert (v2.key_version, v2.previous, v2.addresses) == (2, v1_cid, (alice.address,))
    assert read_sealed(store, after, key_of(alice)) == b"after removal"
    assert read_sealed(store, before, key_of(alice)) == b"before removal"
    with pytest.raises(NotARecipient):
        read_sealed(store, after, key_of(bob))
    with pytest.raises(DecryptionFailed):  # bob's old key does not open new data
        unseal(open_envelope(v1, key_of(bob)), decode_sealed(store.cat(after)))
    assert read_sealed(store, before, key_of(bob)) == b"before removal"  # documented


def test_envelope_refuses_a_key_that_is_not_the_participants(store: EmbeddedStore) -> None:
    alice, bob = Account.create(), Account.create()
    with pytest.raises(MalformedObject):
        make_envelope(
            SUBSYSTEM, 1, new_content_key(), [Recipient(alice.address, announce(bob).public_key)]
        )
