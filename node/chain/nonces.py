"""The nonce manager: the one way every transaction of a node's wallet reaches the chain.

``NonceManager.of(w3, account).send(tx) -> receipt`` signs ``tx`` (to, data, value, gas) with
the account's next nonce and EIP-1559 fees, broadcasts it and waits for its receipt, one
transaction at a time per account (a lock; anchors, attestations, heartbeats and relays queue
behind each other). It keeps every promise a flaky provider threatens:

* **No lost or doubled transaction.** Its hash is computed locally before it is sent; a
  send whose answer was lost (timeout, dropped connection) is simply repeated with the same
  bytes, and "already known" / "nonce too low" answers are resolved by looking for the
  receipt of one of *our* hashes for that nonce. Once signed, a nonce is never given to
  another payload while its transaction may still be mined: a nonce the chain counts as
  used is taken for another transaction's (:class:`NonceConsumed`) only when none of our
  hashes is known as mined for ``CONSUMED_GRACE_SECONDS`` (a lagging backend answers a null
  receipt for a few blocks; taking that for a used nonce sent the payload twice).
* **No stuck nonce.** A transaction not mined after ``bump_after`` seconds is replaced
  (same nonce, same payload) with both fees raised by ``bump_percent`` (at least the 10 %
  nodes require) and ``maxFeePerGas`` at least twice the latest base fee plus the tip, up to
  ``max_fee_per_gas``; at the cap it is re-broadcast as is. Any of the replacements' receipts
  ends the wait.
* **A gap after a reorg.** A reorg drops mined transactions (they are not put back in the
  pool): a transaction waiting at a higher nonce can then never be mined. At each bump the
  manager looks for such a gap below its nonce and fills it with zero-value transfers to
  self; the lost payloads are the callers' to send again (the ledger and the epoch service
  do, on the chain follower's report of the reorg).
* **Restart.** :meth:`NonceManager.recover` (the runtime calls it before the ledger adopts its
  on-chain anchors) waits for transactions a previous process left in the pool
  (``pending`` nonce above ``latest``) and cancels those still stuck with a zero-value
  transfer to self at a higher fee: afterwards no earlier transaction can land behind the
  ledger's back.
* **Empty wallet.** "insufficient funds" at the first broadcast raises
  :class:`InsufficientFunds` (the nonce is not used; :attr:`NonceManager.last_error` says so
  for ``/health``); the caller's retry succeeds once the wallet is funded. A wallet that runs
  dry while a transaction waits in the pool (it cannot be mined, its replacement is refused)
  keeps waiting at the same fees, with ``last_error`` saying so, until it is funded.

The reads and answers it decides on (nonces, fees, a broadcast's outcome, receipts) are
:mod:`node.chain.broadcast`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, cast

from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.types import TxParams, TxReceipt

from node.chain.broadcast import DEFAULT_PRIORITY_FEE as DEFAULT_PRIORITY_FEE  # re-exported
from node.chain.broadcast import (
    GWEI,
    broadcast,
    bump_fees,
    find_receipt,
    is_known,
    is_mined,
    read_base_fee,
    read_fees,
    read_nonce,
)
from node.chain.broadcast import classify_send_error as classify_send_error  # re-exported
from node.errors import ChainError

log = logging.getLogger(__name__)

DEFAULT_BUMP_AFTER_SECONDS: Final = 15.0
"""A transaction not mined after this long is replaced with higher fees."""
DEFAULT_BUMP_PERCENT: Final = 25
"""Fee increase of a replacement (nodes refuse a replacement under +10 %)."""
DEFAULT_MAX_FEE_PER_GAS: Final = 1_000 * GWEI
"""The highest ``maxFeePerGas`` the node ever offers (operators raise it on expensive chains)."""
POLL_SECONDS: Final = 0.2
RECOVER_WAIT_SECONDS: Final = 5.0
"""How long :meth:`NonceManager.recover` lets a previous process's transactions land before
cancelling them."""
CANCEL_GAS: Final = 21_000
NONCE_RETRIES: Final = 3
"""Fresh nonces tried when another transaction took ours."""
CONSUMED_GRACE_SECONDS: Final = 10.0
"""How long the chain must show our nonce used, with none of our transactions mined, before
it is taken for another transaction's: a load-balanced backend that lags answers a null
receipt (and may not know the transaction) for a few blocks after it was mined."""


class InsufficientFunds(ChainError):
    """The node's wallet cannot pay for the transaction (fund it; nothing was used up)."""


class NonceConsumed(ChainError):
    """Another transaction (not sent by this manager) used the nonce; retry the call."""


class SendAborted(ChainError):
    """The manager was closed while a transaction was still pending."""


@dataclass
class SendStats:
    """Counters for ``/health`` and tests."""

    sent: int = 0
    replacements: int = 0
    rebroadcasts: int = 0
    send_errors: int = 0
    cancelled: int = 0
    gaps_filled: int = 0
    hashes: list[str] = field(default_factory=list)


_MANAGERS_GUARD = threading.Lock()
_MANAGERS: dict[tuple[int, str], NonceManager] = {}


class NonceManager:
    """Nonces, fees and replacement for one account on one chain (see the module docstring)."""

    def __init__(
        self,
        w3: Web3,
        account: LocalAccount,
        *,
        bump_after: float = DEFAULT_BUMP_AFTER_SECONDS,
        bump_percent: int = DEFAULT_BUMP_PERCENT,
        max_fee_per_gas: int = DEFAULT_MAX_FEE_PER_GAS,
        poll: float = POLL_SECONDS,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.w3 = w3
        self.account = account
        self.bump_after = bump_after
        self.bump_percent = max(bump_percent, 10)
        self.max_fee_per_gas = max_fee_per_gas
        self.poll = poll
        self._lock = threading.RLock()
        self._closed = threading.Event()
        self._sleep = sleep
        self._next: int | None = None
        self._chain_id: int | None = None
        self.stats = SendStats()
        self.last_error: str | None = None

    @classmethod
    def of(cls, w3: Web3, account: LocalAccount) -> NonceManager:
        """Return the process's manager of ``account`` on ``w3`` (created on first use)."""
        key = (id(w3), account.address.lower())
        with _MANAGERS_GUARD:
            manager = _MANAGERS.get(key)
            if manager is None or manager.w3 is not w3:
                manager = cls(w3, account)
                _MANAGERS[key] = manager
            return manager

    def close(self) -> None:
        """Abort a wait in progress (:class:`SendAborted`); the transaction stays in the pool
        and :meth:`recover` settles it at the next start."""
        self._closed.set()

    # -- sending ----------------------------------------------------------------------------

    def send(self, tx: TxParams) -> TxReceipt:
        """Sign ``tx`` with the next nonce and EIP-1559 fees, send it and return its receipt
        (whatever its status). ``tx`` needs ``to`` (or ``data`` for a deployment) and ``gas``.

        Raises :class:`InsufficientFunds`, :class:`NonceConsumed`, :class:`SendAborted`, or
        :class:`ChainError` if the first broadcast is refused for another reason.
        """
        with self._lock:
            for attempt in range(NONCE_RETRIES):
                nonce = self._take_nonce()
                try:
                    receipt = self._send_at(tx, nonce)
                except NonceConsumed as exc:
                    # none of our signatures of this payload can be mined any more: a
                    # fresh nonce is safe
                    self._next = None
                    self.last_error = str(exc)
                    if attempt + 1 == NONCE_RETRIES:
                        raise
                    continue
                except (InsufficientFunds, _Refused) as exc:
                    self._next = None  # re-read from the chain next time: nothing was used
                    self.last_error = str(exc)
                    if isinstance(exc, _Refused):
                        raise ChainError(str(exc)) from exc
                    raise
                self._next = nonce + 1
                self.last_error = None
                return receipt
            raise NonceConsumed("unreachable")  # pragma: no cover

    def _send_at(self, tx: TxParams, nonce: int) -> TxReceipt:
        base = dict(tx)
        for key in ("nonce", "gasPrice", "maxFeePerGas", "maxPriorityFeePerGas", "from"):
            base.pop(key, None)
        base["nonce"] = nonce
        base["chainId"] = self._get_chain_id()
        base["type"] = 2
        tip, max_fee = self._fees()
        hashes: list[HexBytes] = []
        raw = self._sign(base, tip, max_fee)
        hashes.append(HexBytes(raw[1]))
        first_outcome = self._broadcast(raw[0])
        if first_outcome == "funds":
            raise InsufficientFunds(
                f"wallet {self.account.address} cannot pay for a transaction "
                f"(max fee {max_fee} wei/gas x {base.get('gas')} gas)"
            )
        if first_outcome.startswith("refused:") and not self._is_known(hashes[0]):
            raise _Refused(first_outcome[len("refused:") :])
        self.stats.sent += 1
        last_broadcast = time.monotonic()
        consumed_since: float | None = None
        while True:
            receipt = self._find_receipt(hashes)
            if receipt is not None:
                return receipt
            if self._closed.is_set():
                raise SendAborted(f"stopped while nonce {nonce} was pending")
            if self._mined_nonce() > nonce:
                # used: by one of ours whose receipt a lagging backend does not show yet, or
                # by another transaction -- only the latter, seen for a while, is given up on
                if self._one_mined(hashes):
                    consumed_since = None
                elif consumed_since is None:
                    consumed_since = time.monotonic()
                elif time.monotonic() - consumed_since >= CONSUMED_GRACE_SECONDS:
                    raise NonceConsumed(f"nonce {nonce} was used by another transaction")
            elif time.monotonic() - last_broadcast >= self.bump_after or first_outcome in (
                "underpriced",
                "basefee",
            ):
                tip, max_fee, raw, first_outcome = self._replace(base, nonce, tip, max_fee, raw)
                if HexBytes(raw[1]) not in hashes:
                    hashes.append(HexBytes(raw[1]))
                last_broadcast = time.monotonic()
            self._wait(self.poll)

    def _replace(
        self, base: dict[str, Any], nonce: int, tip: int, max_fee: int, raw: tuple[bytes, bytes]
    ) -> tuple[int, int, tuple[bytes, bytes], str]:
        """Fill a gap below ``nonce``, then broadcast the transaction again, replaced at bumped
        fees if they are higher (else as is); return the fees and signed form now in the
        pool, and the broadcast's outcome. A wallet that ran dry while it waited keeps the
        fees it had (the replacement is refused) and ``last_error`` says so for /health."""
        self._fill_gap_below(nonce)
        new_tip, new_fee = self._bumped(tip, max_fee)
        replaced = (new_tip, new_fee) != (tip, max_fee)
        signed = self._sign(base, new_tip, new_fee) if replaced else raw
        if replaced:
            self.stats.replacements += 1
            log.info("nonce %d: replacing with max fee %d, tip %d", nonce, new_fee, new_tip)
        else:
            self.stats.rebroadcasts += 1
        outcome = self._broadcast(signed[0])
        if outcome != "funds":
            return new_tip, new_fee, signed, outcome
        self.last_error = (
            f"wallet {self.account.address} cannot pay for its pending transaction "
            f"(nonce {nonce}, max fee {max_fee} wei/gas x {base.get('gas')} gas)"
        )
        log.warning("%s: waiting until it is funded", self.last_error)
        return tip, max_fee, raw, outcome

    # -- restart ----------------------------------------------------------------------------

    def recover(self, wait: float = RECOVER_WAIT_SECONDS) -> int:
        """Settle transactions a previous process left pending; return how many were
        cancelled. Raise ChainError if the chain cannot be read."""
        with self._lock:
            try:
                latest = self._mined_nonce()
                pending = int(self.w3.eth.get_transaction_count(self.account.address, "pending"))
            except ChainError:
                raise
            except Exception as exc:
                raise ChainError(
                    f"cannot read the nonces of {self.account.address}: {exc}"
                ) from exc
            deadline = time.monotonic() + wait
            while latest < pending and time.monotonic() < deadline:
                self._wait(self.poll)
                latest = self._mined_nonce()
            cancelled = 0
            for nonce in range(latest, pending):
                if self._mined_nonce() > nonce:
                    continue
                self._cancel(nonce)
                cancelled += 1
            self._next = None
            self.stats.cancelled += cancelled
            return cancelled

    def _cancel(self, nonce: int) -> None:
        tip, max_fee = self._fees()
        tip, max_fee = tip * 2, max_fee * 2
        base: dict[str, Any] = {
            "to": self.account.address,
            "value": 0,
            "gas": CANCEL_GAS,
            "nonce": nonce,
            "chainId": self._get_chain_id(),
            "type": 2,
        }
        hashes: list[HexBytes] = []
        while True:
            raw, tx_hash = self._sign(base, min(tip, max_fee), max_fee)
            hashes.append(HexBytes(tx_hash))
            outcome = self._broadcast(raw)
            if outcome in ("ok", "known", "nonce"):
                break
            if outcome.startswith("refused:") or outcome == "funds":
                raise ChainError(f"cannot cancel pending nonce {nonce}: {outcome}")
            if max_fee >= self.max_fee_per_gas:
                raise ChainError(f"cannot cancel pending nonce {nonce} under the fee cap")
            tip, max_fee = self._bumped(tip, max_fee)
        log.warning("cancelled the transaction a previous run left at nonce %d", nonce)
        while self._mined_nonce() <= nonce:
            if self._closed.is_set():
                raise SendAborted(f"stopped while cancelling nonce {nonce}")
            self._wait(self.poll)

    def _fill_gap_below(self, nonce: int) -> None:
        """Fill the nonces below ``nonce`` the chain lost (a reorg drops our mined
        transactions, and does not put them back in the pool): while one is missing ours is
        never mined, whatever its fee. Each is filled with a zero-value transfer to self; the
        callers send the lost payloads again (the ledger re-anchors the leaves a reorg rolled
        back, the epoch service attests the lost epochs again)."""
        mined = self._mined_nonce()
        if mined >= nonce:
            return
        if read_nonce(self.w3, self.account.address, "pending") >= nonce:
            return  # the nonces below ours wait in the pool: no gap
        log.warning(
            "nonces %d..%d are neither mined nor pending (a reorg dropped them): filling them "
            "so that nonce %d can be mined",
            mined,
            nonce - 1,
            nonce,
        )
        for missing in range(mined, nonce):
            if self._mined_nonce() <= missing:
                self._cancel(missing)
                self.stats.gaps_filled += 1

    # -- pieces -----------------------------------------------------------------------------

    def _take_nonce(self) -> int:
        """Return the chain's ``pending`` nonce. Every earlier transaction of ours was mined
        before ``send`` returned, so it equals the local count -- unless a reorg dropped some
        (the chain's is lower: reusing it leaves no gap) or a lagging backend answered (a
        "nonce too low" then ends in :class:`NonceConsumed` and a fresh read)."""
        chain = read_nonce(self.w3, self.account.address, "pending")
        if self._next is not None and chain < self._next:
            log.warning(
                "nonce %d expected, the chain says %d (a reorg dropped transactions?)",
                self._next,
                chain,
            )
        self._next = chain
        return chain

    def _mined_nonce(self) -> int:
        return read_nonce(self.w3, self.account.address, "latest")

    def _get_chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(self.w3.eth.chain_id)
        return self._chain_id

    def _fees(self) -> tuple[int, int]:
        """Return (tip, max fee): the endpoint's tip, and twice the latest base fee plus it."""
        return read_fees(self.w3, self.max_fee_per_gas)

    def _bumped(self, tip: int, max_fee: int) -> tuple[int, int]:
        """Return fees for a replacement: +bump_percent, and at least twice the latest base
        fee plus the tip; capped at ``max_fee_per_gas``."""
        return bump_fees(
            tip,
            max_fee,
            bump_percent=self.bump_percent,
            base_fee=read_base_fee(self.w3),
            max_fee_per_gas=self.max_fee_per_gas,
        )

    def _sign(self, base: dict[str, Any], tip: int, max_fee: int) -> tuple[bytes, bytes]:
        tx = {**base, "maxPriorityFeePerGas": tip, "maxFeePerGas": max_fee}
        signed = self.account.sign_transaction(cast(dict[str, Any], tx))
        self.stats.hashes.append("0x" + bytes(signed.hash).hex())
        return bytes(signed.raw_transaction), bytes(signed.hash)

    def _broadcast(self, raw: bytes) -> str:
        """Send ``raw`` and return the outcome (:func:`~node.chain.broadcast.broadcast`),
        counting every answer but "ok" as a send error."""
        outcome = broadcast(self.w3, raw)
        if outcome != "ok":
            self.stats.send_errors += 1
        return outcome

    def _is_known(self, tx_hash: HexBytes) -> bool:
        return is_known(self.w3, tx_hash)

    def _find_receipt(self, hashes: list[HexBytes]) -> TxReceipt | None:
        return find_receipt(self.w3, hashes)

    def _one_mined(self, hashes: list[HexBytes]) -> bool:
        return any(is_mined(self.w3, h) for h in hashes)

    def _wait(self, seconds: float) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
        else:
            self._closed.wait(seconds)


class _Refused(Exception):
    """The first broadcast was refused for a reason that is not about nonce or fees."""


def wallet_status(w3: Web3, account: LocalAccount | None) -> dict[str, Any] | None:
    """Return the node wallet's state for ``/health``: balance, nonces, and ``error`` (e.g.
    "cannot pay": anchoring waits, accepted transactions stay pending, until it is funded)."""
    if account is None:
        return None
    with _MANAGERS_GUARD:
        manager = _MANAGERS.get((id(w3), account.address.lower()))
    try:
        balance: int | None = int(w3.eth.get_balance(account.address))
    except Exception:  # noqa: BLE001 -- health must answer even when the chain does not
        balance = None
    error = manager.last_error if manager is not None else None
    return {
        "address": account.address,
        "balance_wei": balance,
        "insufficient_funds": bool(error and "cannot pay" in error) or balance == 0,
        "error": error,
        "sent": manager.stats.sent if manager is not None else 0,
        "replacements": manager.stats.replacements if manager is not None else 0,
    }
