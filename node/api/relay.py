"""The checks of a relayed participant change: an admin-signed raw transaction (typed or
legacy) is decoded, must call this node's registry's add/removeParticipant of the subsystem
on this chain with the next nonce of its signer, and is sent once all of that holds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, NamedTuple

import rlp
from eth_account import Account
from eth_account.typed_transactions import TypedTransaction
from eth_tester.exceptions import ValidationError as TesterValidationError
from eth_utils import is_address, keccak, to_checksum_address
from fastapi import HTTPException
from hexbytes import HexBytes
from rlp.sedes import Binary, big_endian_int, binary
from web3.exceptions import TimeExhausted, Web3RPCError

from node.auth.errors import Forbidden
from node.errors import ChainError, ValidationError
from node.ledger.service import ReplayedTransaction

RELAY_FUNCTIONS: Final = {"addParticipant": "add", "removeParticipant": "remove"}
EIP155_V_OFFSET: Final = 35
RELAY_RECEIPT_TIMEOUT: Final = 120.0  # web3's default wait for a receipt, made explicit


class LegacyTransaction(rlp.Serializable):
    """A signed pre-EIP-2718 transaction, as RLP (the fields of eth-account's private
    ``_utils.legacy_transactions.Transaction``, declared here rather than imported from it)."""

    fields = [
        ("nonce", big_endian_int),
        ("gasPrice", big_endian_int),
        ("gas", big_endian_int),
        ("to", Binary.fixed_length(20, allow_empty=True)),
        ("value", big_endian_int),
        ("data", binary),
        ("v", big_endian_int),
        ("r", big_endian_int),
        ("s", big_endian_int),
    ]


class SignedTransaction(NamedTuple):
    """What the relay reads of a signed transaction."""

    to: Any
    data: Any
    chain_id: int | None
    nonce: int
    sender: str


def decode_signed_transaction(raw: bytes) -> SignedTransaction:
    """Return the target, call data, chain id, nonce and signer of a signed transaction
    (typed, EIP-2718, or legacy). Raises ``ValidationError`` if it is none."""
    try:
        if raw and raw[0] <= 0x7F:
            fields = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
            to, data = fields.get("to"), fields.get("data", b"")
            chain_id: int | None = int(fields["chainId"])
            nonce = int(fields["nonce"])
        else:
            legacy = rlp.decode(raw, LegacyTransaction)
            to, data, nonce = legacy.to, legacy.data, int(legacy.nonce)
            chain_id = legacy_chain_id(int(legacy.v))
        sender = str(Account.recover_transaction(raw))
    except Exception as exc:
        raise ValidationError(f"not a signed transaction: {exc}") from exc
    return SignedTransaction(to, data, chain_id, nonce, sender)


def check_relayed_call(
    node: Any, name: str, signed: SignedTransaction
) -> tuple[str, Mapping[str, Any]]:
    """Return the relayed action and the call's arguments.

    Raises ``ValidationError`` unless ``signed`` is for this chain and calls this node's
    registry's add/removeParticipant of ``name``; ``Forbidden`` unless its signer is an
    admin of ``name``.
    """
    registry = node.registry
    chain_id = signed.chain_id
    if chain_id != node.chain.chain_id:
        signed_for = "no chain id (pre-EIP-155)" if chain_id is None else f"chain id {chain_id}"
        raise ValidationError(
            f"the transaction is signed for {signed_for}, not this node's chain "
            f"{node.chain.chain_id}: sign it with chainId {node.chain.chain_id}"
        )
    to = signed.to
    if not to or not is_address(to) or to_checksum_address(to) != registry.address:
        raise ValidationError("the transaction does not call this node's registry")
    try:
        fn, args = registry.contract.decode_function_input(signed.data)
    except Exception as exc:
        raise ValidationError("the transaction does not call a registry function") from exc
    action = RELAY_FUNCTIONS.get(fn.fn_name)
    if action is None or args.get("name") != name:
        raise ValidationError(f"only add/removeParticipant of {name!r} are relayed")
    if not registry.is_subsystem_admin(name, signed.sender):
        raise Forbidden(f"{signed.sender} is not an admin of {name!r}")
    return action, args


def send_relayed(w3: Any, raw: bytes) -> tuple[Any, Any]:
    """Send ``raw`` and return its hash and receipt once mined.

    Raises 409 if the chain refuses its nonce, ``ValidationError`` if it refuses it
    otherwise or the registry reverts it, ``ChainError`` if it is not mined in time.
    """
    try:
        tx_hash = w3.eth.send_raw_transaction(raw)
    except (Web3RPCError, TesterValidationError, ValueError) as exc:  # the chain refused it
        if "nonce" in str(exc).lower() or "known" in str(exc).lower():
            raise HTTPException(409, f"the chain refused the transaction: {exc}") from exc
        raise ValidationError(f"the chain refused the transaction: {exc}") from exc
    try:
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RELAY_RECEIPT_TIMEOUT)
    except TimeExhausted as exc:
        raise ChainError(
            f"the relayed transaction 0x{bytes(tx_hash).hex()} was not mined within "
            f"{RELAY_RECEIPT_TIMEOUT:.0f} s"
        ) from exc
    if int(receipt["status"]) != 1:
        raise ValidationError("the registry rejected the transaction")
    return tx_hash, receipt


def legacy_chain_id(v: int) -> int | None:
    """Return the chain id a legacy transaction's ``v`` commits to (EIP-155: ``v = 35 +
    2 * chainId + parity``), or None if it commits to none (``v`` 27/28, replayable on any
    chain)."""
    return (v - EIP155_V_OFFSET) // 2 if v >= EIP155_V_OFFSET else None


def check_relay_nonce(w3: Any, raw: bytes, sender: str, nonce: int) -> None:
    """Raise 409 unless ``nonce`` is the next one of ``sender``: a used nonce is a replay
    (the same transaction again, or another one in its place), a later one would wait in the
    pool (or be refused by the chain) and leave the request hanging."""
    expected = int(w3.eth.get_transaction_count(sender, "pending"))
    if nonce < expected:
        tx_hash = keccak(raw)
        try:
            w3.eth.get_transaction(tx_hash)
            known = True
        except Exception:  # TransactionNotFound (the exception type varies by provider)
            known = False
        if known:
            raise ReplayedTransaction(
                f"this transaction (0x{tx_hash.hex()}) was already relayed: it is on the chain"
            )
        raise ReplayedTransaction(
            f"nonce {nonce} of {sender} was already used (the next one is {expected})"
        )
    if nonce > expected:
        raise HTTPException(
            409,
            f"nonce gap: the transaction has nonce {nonce} but the next nonce of {sender} is "
            f"{expected}; sign it with nonce {expected}",
        )
