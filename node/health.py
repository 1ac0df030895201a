"""What ``/health`` calls wrong: the reasons a running node is ``degraded`` (docs/operations.md).

A node that serves HTTP is alive (``/livez``); it is *healthy* only when it also does its job.
:func:`compute_health_reasons` is pure: it reads the summaries the node already keeps (chain
probe, epoch summary, sync progress, anchorer counters, embedded chain clock) and returns one
reason per problem, each a stable ``code`` (a Prometheus label, a test's handle) and a sentence
(the Overview page and ``collegium status`` print it as is). No reason: ``status`` is ``ok``.

What ``/health`` reads from the chain besides the head (the registry's epoch, the wallet's
balance, the front-end CID, every node's attestation) is kept by :class:`ChainReadingCache`
for at most ``HEALTH_CACHE_SECONDS`` and only while the head block is the same: a burst of
callers costs one ``eth_blockNumber`` each, and a reason whose cause is gone goes within a
second of the next block.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

REASON_CHAIN_UNREACHABLE: Final = "chain_unreachable"
REASON_NO_ASSIGNMENT: Final = "no_assignment"
REASON_SLOT_UNSERVED: Final = "slot_unserved"
REASON_ATTESTATIONS_DISAGREE: Final = "attestations_disagree"
REASON_SYNC_BEHIND: Final = "sync_behind"
REASON_ANCHORING_STALLED: Final = "anchoring_stalled"
REASON_CLOCK_AHEAD: Final = "clock_ahead"
REASON_INDEX_STALLED: Final = "index_stalled"
HEALTH_REASONS: Final[tuple[str, ...]] = (
    REASON_CHAIN_UNREACHABLE,
    REASON_NO_ASSIGNMENT,
    REASON_SLOT_UNSERVED,
    REASON_ATTESTATIONS_DISAGREE,
    REASON_SYNC_BEHIND,
    REASON_ANCHORING_STALLED,
    REASON_CLOCK_AHEAD,
    REASON_INDEX_STALLED,
)
"""Every reason code, in the order reasons are listed (``collegium_health_reason`` labels)."""

INDEX_STALLED_FAILURES: Final = 3
"""Passes of the chain follower failed in a row before ``index_stalled`` (one failure is
routine: a lagging backend, a reorg seen mid-range)."""

HEALTH_CACHE_SECONDS: Final = 1.0
"""The longest a chain reading of ``/health`` is reused (and only at the same head block)."""

HEALTH_PROBE_TIMEOUT_SECONDS: Final = 3.0
"""Seconds ``/health`` waits for the chain's head (one attempt per RPC URL, no back-off)
before it calls the chain unreachable."""

T = TypeVar("T")


class ChainReadingCache(Generic[T]):
    """The last chain reading of ``/health``: reused while the head block is the same and it is
    younger than ``ttl`` seconds; kept as *last known* while the chain does not answer."""

    def __init__(
        self, ttl: float = HEALTH_CACHE_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._entry: tuple[float, int, T] | None = None
        self.reads = 0  # readings made (not reused): a test's handle on the cost

    def get(self, head: int, read: Callable[[], T]) -> T:
        """Return the reading made at block ``head`` less than ``ttl`` ago, or ``read()``."""
        now = self._clock()
        with self._lock:
            entry = self._entry
        if entry is not None and entry[1] == head and now - entry[0] < self.ttl:
            return entry[2]
        value = read()
        with self._lock:
            self._entry = (now, head, value)
            self.reads += 1
        return value

    def last(self) -> T | None:
        """Return the newest reading however old (the chain is down), or None."""
        with self._lock:
            return None if self._entry is None else self._entry[2]


@dataclass(frozen=True)
class AnchoringState:
    """What the anchorer reports: failures since its last success, its last error, and how many
    accepted leaves wait for an anchor."""

    consecutive_failures: int
    last_error: str | None
    pending: int


Reason = dict[str, str]  # {"code", "message"}


def compute_health_reasons(
    *,
    chain_error: str | None,
    epochs: Mapping[str, Any] | None,
    sync: Mapping[str, Any] | None,
    anchoring: AnchoringState | None,
    clock_lead: float | None,
    max_lead: float | None,
    index: Mapping[str, Any] | None = None,
) -> list[dict[str, str]]:
    """Return the reasons the node is degraded (``[]``: healthy), each ``{"code", "message"}``.

    - ``chain_unreachable``: the chain did not answer (``chain_error``).
    - ``no_assignment``: the epoch service has no assignment for the current epoch.
    - ``slot_unserved``: the assignment leaves a subsystem or a slot without host.
    - ``attestations_disagree``: a node attested another root for this epoch.
    - ``sync_behind``: the replica lacks roots the chain references and its last round could
      not get them from any peer (``missing``), or failed while it lacked some.
    - ``anchoring_stalled``: leaves wait while the anchorer keeps failing.
    - ``clock_ahead``: the newest embedded block is stamped past the wall clock by more than
      the bound (``clock_lead > max_lead``).
    - ``index_stalled``: the chain follower's last ``INDEX_STALLED_FAILURES`` passes failed
      (``index``: ``/health`` → ``index``, with ``failures`` and ``last_error``).
    """
    reasons: list[Reason] = []
    if chain_error is not None:
        reasons.append(
            _reason(REASON_CHAIN_UNREACHABLE, f"the chain does not answer: {chain_error}")
        )
    if epochs is not None and epochs.get("enabled"):
        reasons.extend(_epoch_reasons(epochs))
    if sync is not None:
        reasons.extend(_sync_reasons(sync))
    if anchoring is not None:
        reasons.extend(_anchoring_reasons(anchoring))
    if clock_lead is not None and max_lead is not None:
        reasons.extend(_clock_reasons(clock_lead, max_lead))
    if index is not None:
        reasons.extend(_index_reasons(index))
    return reasons


def _reason(code: str, message: str) -> Reason:
    """Return one ``/health`` reason."""
    return {"code": code, "message": message}


def _epoch_reasons(epochs: Mapping[str, Any]) -> list[Reason]:
    """Return the epoch service's reasons: ``no_assignment``, ``slot_unserved`` and
    ``attestations_disagree``."""
    reasons: list[Reason] = []
    if epochs.get("epoch") is None:
        why = epochs.get("last_error") or "the epoch service has not finished a step yet"
        reasons.append(_reason(REASON_NO_ASSIGNMENT, f"no epoch known yet: {why}"))
    elif epochs.get("root") is None:
        why = epochs.get("error") or epochs.get("last_error") or "not computed yet"
        reasons.append(
            _reason(REASON_NO_ASSIGNMENT, f"epoch {epochs['epoch']} has no assignment: {why}")
        )
    else:
        unserved = _unserved(epochs.get("unserved", ()), epochs.get("adjustments", ()))
        if unserved:
            reasons.append(
                _reason(
                    REASON_SLOT_UNSERVED,
                    f"epoch {epochs['epoch']} leaves without host: {', '.join(unserved)}",
                )
            )
    disagree = list(epochs.get("disagree") or ())
    if disagree:
        reasons.append(
            _reason(
                REASON_ATTESTATIONS_DISAGREE,
                f"{len(disagree)} node(s) attested another root for epoch "
                f"{epochs.get('epoch')}: " + ", ".join(disagree),
            )
        )
    return reasons


def _sync_reasons(sync: Mapping[str, Any]) -> list[Reason]:
    """Return ``sync_behind`` if the replica lacks roots it could not get, else ``[]``."""
    missing = int(sync.get("missing") or 0)  # roots the last finished round could not get
    behind = sync.get("want", 0) > sync.get("have", 0)
    if not (missing or (behind and sync.get("last_error"))):
        return []
    why = (
        f"{missing} could not be fetched from any peer"
        if missing
        else f"last error: {sync['last_error']}"
    )
    return [
        _reason(
            REASON_SYNC_BEHIND,
            f"the replica has {sync.get('have', 0)} of {sync.get('want', 0)} roots; {why}",
        )
    ]


def _anchoring_reasons(anchoring: AnchoringState) -> list[Reason]:
    """Return ``anchoring_stalled`` if leaves wait while the anchorer fails, else ``[]``."""
    if not (anchoring.consecutive_failures > 0 and anchoring.pending > 0):
        return []
    return [
        _reason(
            REASON_ANCHORING_STALLED,
            f"{anchoring.pending} transaction(s) wait for an anchor; "
            f"{anchoring.consecutive_failures} attempt(s) failed, last: {anchoring.last_error}",
        )
    ]


def _clock_reasons(clock_lead: float, max_lead: float) -> list[Reason]:
    """Return ``clock_ahead`` if the newest block is stamped past the bound, else ``[]``."""
    if not clock_lead > max_lead:
        return []
    return [
        _reason(
            REASON_CLOCK_AHEAD,
            f"the newest block is stamped {clock_lead:.0f} s ahead of this machine's clock "
            f"(bound {max_lead:g} s)",
        )
    ]


def _index_reasons(index: Mapping[str, Any]) -> list[Reason]:
    """Return ``index_stalled`` if the chain follower keeps failing, else ``[]``."""
    failures = int(index.get("failures") or 0)
    if failures < INDEX_STALLED_FAILURES:
        return []
    return [
        _reason(
            REASON_INDEX_STALLED,
            f"the chain follower is stuck at block {index.get('block')}: {failures} passes "
            f"failed in a row, last: {index.get('last_error')}",
        )
    ]


def _unserved(subsystems: Sequence[str], adjustments: Sequence[str]) -> list[str]:
    """Return the unserved subsystems and slots named by the epoch summary."""
    named = [f"subsystem {name!r}" for name in subsystems]
    named.extend(note.split(":", 1)[0] for note in adjustments if "unserved (" in note)
    return named
