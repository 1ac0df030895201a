"""Random business transactions (hypothesis strategies) and the reference spellings of what
verification computes, from the general libraries the node's fast paths replace: eth_account's
EIP-712 hash and recovery, pyrlp, the standard library's base32 and sha256, eth_utils' keccak.
Tests compare the node's output with these on many random inputs."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import rlp
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_keys import KeyAPI
from eth_utils import keccak, to_checksum_address
from hypothesis import strategies as st

from node.ledger.transaction import BusinessTx, Domain, typed_data

KEYS = KeyAPI()
V_OFFSET = 27

# field values: what validate_tx accepts, lengths to the limits, and spellings in any case
subsystems = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,63}", fullmatch=True)
kinds = st.from_regex(r"[a-z][a-z0-9_]{0,31}", fullmatch=True)
currencies = st.from_regex(r"[A-Z0-9]{1,16}", fullmatch=True)
amounts = st.from_regex(r"(0|[1-9][0-9]{0,19})(\.[0-9]{0,17}[1-9])?", fullmatch=True)
texts = st.text(max_size=80) | st.text(min_size=55, max_size=250)  # both RLP length forms
payloads = st.from_regex(r"(bafkrei[a-z2-7]{52})?", fullmatch=True)
uint63 = st.integers(0, 2**63 - 1) | st.integers(0, 300)


@st.composite
def addresses(draw: Any) -> str:
    """A non-zero address, 0x-prefixed, lower, upper or EIP-55 case."""
    raw = draw(st.binary(min_size=20, max_size=20).filter(any))
    spelled = draw(st.sampled_from(("lower", "upper", "checksum")))
    if spelled == "checksum":
        return str(to_checksum_address(raw))
    digits = raw.hex()
    return "0x" + (digits.upper() if spelled == "upper" else digits)


@st.composite
def public_txs(draw: Any) -> BusinessTx:
    """A valid public business transaction."""
    parties = draw(st.lists(addresses(), max_size=4, unique_by=str.lower))
    return BusinessTx(
        subsystem=draw(subsystems),
        kind=draw(kinds),
        parties=tuple(parties),
        amount=draw(amounts),
        currency=draw(currencies),
        memo=draw(texts),
        payload=draw(payloads),
        nonce=draw(uint63),
        timestamp=draw(uint63),
    )


@st.composite
def private_txs(draw: Any) -> BusinessTx:
    """A valid private business transaction."""
    return BusinessTx(
        subsystem=draw(subsystems),
        kind=draw(kinds),
        parties=(),
        amount="",
        currency="",
        memo="",
        payload=draw(payloads.filter(bool)),
        nonce=draw(uint63),
        timestamp=draw(uint63),
        private=True,
        payload_hash="0x" + draw(st.binary(min_size=32, max_size=32)).hex(),
    )


business_txs = public_txs() | private_txs()
domains = st.builds(
    Domain, st.integers(1, 2**64), st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
)


def sign_digest(digest: bytes, secret: bytes) -> bytes:
    """Return a wallet-style signature (v = 27/28, low s) of ``digest`` by key ``secret``."""
    vrs = KEYS.PrivateKey(secret).sign_msg_hash(digest)
    return vrs.to_bytes()[:64] + bytes([vrs.v + V_OFFSET])


def reference_digest(domain: Domain, tx: BusinessTx) -> bytes:
    """The EIP-712 digest as eth_account computes it from the typed-data document."""
    return bytes(_hash_eip191_message(encode_typed_data(full_message=typed_data(domain, tx))))


def reference_signer(digest: bytes, signature: bytes) -> str:
    """The signer eth_account recovers."""
    return str(Account._recover_hash(digest, signature=signature))


def reference_leaf(domain: Domain, tx: BusinessTx, signature: bytes) -> bytes:
    """The leaf as pyrlp encodes its list of fields (layouts: ``node.ledger.transaction``)."""
    head: list[Any] = [2 if tx.private else 1, domain.chain_id]
    head.append(bytes.fromhex(domain.verifying_contract[2:]))
    head += [tx.subsystem.encode(), tx.kind.encode()]
    if tx.private:
        fields = [tx.payload.encode(), bytes.fromhex(tx.payload_hash[2:])]
    else:
        parties = [bytes.fromhex(p[2:]) for p in tx.parties]
        fields = [parties] + [x.encode() for x in (tx.amount, tx.currency, tx.memo, tx.payload)]
    return bytes(rlp.encode(head + fields + [tx.nonce, tx.timestamp, signature]))


def reference_cid(body: bytes) -> str:
    """The raw CIDv1 of ``body`` through the standard library's base32."""
    digest = bytes([0x01, 0x55, 0x12, 0x20]) + hashlib.sha256(body).digest()
    return "b" + base64.b32encode(digest).decode("ascii").lower().rstrip("=")


def reference_leaf_hash(body: bytes) -> str:
    """The RFC 6962 leaf hash (0x00 prefix) through eth_utils' keccak, 0x-hex."""
    return "0x" + keccak(b"\x00" + body).hex()
