"""One signed transaction on the wire: nonces and fees read, a broadcast's outcome, receipts.

The reads and answers :class:`~node.chain.nonces.NonceManager` decides on, each a function
of a ``Web3``: the account's nonce at ``latest`` or ``pending`` (:func:`read_nonce`), the
EIP-1559 fees to offer and to bump to (:func:`read_fees`, :func:`bump_fees`), what
``eth_sendRawTransaction`` answered (:func:`broadcast`, :func:`classify_send_error`), and
whether one of our hashes was mined (:func:`find_receipt`). A transport failure surfaces as
``ChainError``.
"""

from __future__ import annotations

import logging
from typing import Final

from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import TransactionNotFound
from web3.types import BlockIdentifier, TxReceipt

from node.errors import ChainError

log = logging.getLogger("node.chain.nonces")  # the nonce manager's log, as before the split

GWEI: Final = 10**9
DEFAULT_PRIORITY_FEE: Final = 1 * GWEI
"""Tip when the endpoint has no ``eth_maxPriorityFeePerGas``."""


def read_nonce(w3: Web3, address: str, block: BlockIdentifier) -> int:
    """Return the transaction count of ``address`` at ``block`` (``latest``, ``pending``)."""
    try:
        return int(w3.eth.get_transaction_count(address, block))  # type: ignore[arg-type]
    except ChainError:
        raise
    except Exception as exc:
        raise ChainError(f"cannot read the nonce of {address}: {exc}") from exc


def read_base_fee(w3: Web3) -> int:
    """Return the latest block's base fee (0 before EIP-1559)."""
    try:
        block = w3.eth.get_block("latest")
    except ChainError:
        raise
    except Exception as exc:
        raise ChainError(f"cannot read the latest block: {exc}") from exc
    return int(block.get("baseFeePerGas", 0) or 0)


def read_fees(w3: Web3, max_fee_per_gas: int) -> tuple[int, int]:
    """Return (tip, max fee): the endpoint's tip, and twice the latest base fee plus it,
    capped at ``max_fee_per_gas``."""
    try:
        tip = int(w3.eth.max_priority_fee)
    except ChainError:
        raise
    except Exception:  # noqa: BLE001 -- endpoints without eth_maxPriorityFeePerGas
        tip = DEFAULT_PRIORITY_FEE
    base_fee = read_base_fee(w3)
    max_fee = min(2 * base_fee + tip, max_fee_per_gas)
    return min(tip, max_fee), max_fee


def bump_fees(
    tip: int, max_fee: int, *, bump_percent: int, base_fee: int, max_fee_per_gas: int
) -> tuple[int, int]:
    """Return fees for a replacement: +``bump_percent``, and at least twice ``base_fee`` plus
    the tip; capped at ``max_fee_per_gas`` (at the cap: the fees unchanged)."""
    factor = 100 + bump_percent
    new_tip = -(-tip * factor // 100) + 1
    new_fee = max(-(-max_fee * factor // 100) + 1, 2 * base_fee + new_tip)
    new_fee = min(new_fee, max_fee_per_gas)
    new_tip = min(new_tip, new_fee)
    if new_fee <= max_fee:
        return tip, max_fee
    return new_tip, new_fee


def broadcast(w3: Web3, raw: bytes) -> str:
    """Send ``raw``; return "ok", "known", "nonce", "underpriced", "basefee", "funds",
    "lost" (no answer: it may or may not have arrived) or "refused:<message>"."""
    try:
        w3.eth.send_raw_transaction(raw)
        return "ok"
    except ChainError as exc:  # transport: the request may have been applied
        log.info("broadcast got no answer (%s); will look for the receipt", exc)
        return "lost"
    except Exception as exc:  # noqa: BLE001 -- classify the node's refusal
        return classify_send_error(str(exc))


def classify_send_error(message: str) -> str:
    """Return the kind of an ``eth_sendRawTransaction`` refusal (geth, anvil, besu wording)."""
    text = message.lower()
    if any(
        m in text
        for m in ("already known", "known transaction", "alreadyknown", "already imported")
    ):
        return "known"
    if "nonce too low" in text or "nonce has already been used" in text or "oldnonce" in text:
        return "nonce"
    if "insufficient funds" in text or "insufficient balance" in text:
        return "funds"
    if "underpriced" in text or "replacement" in text:
        return "underpriced"
    if "base fee" in text or "basefee" in text or "fee cap" in text:
        return "basefee"
    return "refused:" + message


def is_known(w3: Web3, tx_hash: HexBytes) -> bool:
    """Return whether the endpoint knows ``tx_hash`` (a refusal worded as we do not
    expect may hide a transaction that did arrive: never lose track of it)."""
    try:
        return w3.eth.get_transaction(tx_hash) is not None
    except Exception:  # noqa: BLE001 -- unknown, or unreadable: refused it is
        return False


def is_mined(w3: Web3, tx_hash: HexBytes) -> bool:
    """Return whether the endpoint knows ``tx_hash`` as mined (in a block)."""
    try:
        tx = w3.eth.get_transaction(tx_hash)
    except Exception:  # noqa: BLE001 -- unknown or unreadable: not known to be mined
        return False
    return tx is not None and tx.get("blockNumber") is not None


def find_receipt(w3: Web3, hashes: list[HexBytes]) -> TxReceipt | None:
    """Return the receipt of the newest of ``hashes`` that was mined, or None."""
    for tx_hash in reversed(hashes):
        try:
            receipt = w3.eth.get_transaction_receipt(tx_hash)
        except TransactionNotFound:
            continue
        except ChainError:
            return None  # unreachable now; the loop asks again
        except Exception:  # noqa: BLE001 -- some nodes answer errors for unknown hashes
            continue
        if receipt is not None and receipt.get("blockNumber") is not None:
            return receipt
    return None
