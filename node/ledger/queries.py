"""The explorer's list query: newest first (``seq`` descending), filtered, one page.

Every filter has an index that yields rows in ``seq`` order, so a page stops after
``limit + 1`` rows: ``(subsystem, seq)``, ``(kind, seq)``, ``(signer, seq)``, ``anchor_index``
(an anchor's few hundred rows), the party index ``(address, tx_seq)`` walked newest first
(joined, not an ``IN`` list that would be built whole).

A time range (``since <= timestamp < until``, the signed timestamp) is the exception: no
index orders both by time and by ``seq``. Two plans are possible, and which one is cheap
depends on where the range lies, so it is chosen per query (SQLite; PostgreSQL's planner has
statistics and gets the plain query):

* **range**: read the rows whose timestamp is in the range (index ``(timestamp, seq)``) and
  keep the newest ``limit + 1`` — cost ∝ rows in the range; with no other filter this runs
  on the index alone (a covering subquery), the table is read for the page only;
* **scan**: walk ``seq`` downwards and test the timestamp — on the index ``(seq, timestamp)``
  alone with no other filter, else on the other filter's ``(…, seq)`` index — cost ∝ rows
  newer than the range (plus the page); an index entry of this walk is about
  ``RANGE_ENTRY_COST`` times cheaper than one of the range plan, which must be sorted.

Signed timestamps follow acceptance order closely, so both costs are estimated from the
``seq`` of the first row at or after ``since`` and ``until`` (two O(log n) lookups in the
timestamp index) and the cheaper plan is forced by writing the other columns as expressions
no index matches (``x + 0``, ``x || ''``, SQLite's documented way). Combined with another
filter, the range plan reads every row of the range from the table, so above
``RANGE_WITH_FILTERS_MAX`` rows the query is left to SQLite, which walks the other filter's
``(…, seq)`` index. The estimate only picks a plan; the answer is the same either way.

``subsystem`` + ``kind`` + a time range (no other filter) has its own index,
``(subsystem, kind, timestamp, seq)``: the page's seqs are read from it alone and sorted
(cost ∝ index entries of both filters in the range), on both databases. The
worst case left is a wide one-sided range in the middle of the log (``until`` half a log
ago): both plans then read about half of the index.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, aliased

from node.db.models import BusinessTransaction, TransactionParty

T = BusinessTransaction


def _seq_at(session: Session, moment: int) -> int | None:
    """Return the ``seq`` of the first row (by timestamp) with ``timestamp >= moment``."""
    return session.scalar(
        select(T.seq).where(T.timestamp >= moment).order_by(T.timestamp, T.seq).limit(1)
    )


RANGE_WITH_FILTERS_MAX = 5_000  # with other filters, the range plan reads each row: keep it small
#: an entry of the range plan (then sorted) costs about this many entries of the seq walk
RANGE_ENTRY_COST = 8


def choose_time_plan(session: Session, where: Any, before: int | None) -> str:
    """Return ``"range"`` or ``"scan"`` for a query with a time range (see module doc),
    ``""`` (no hint) for a wide range combined with other filters, or ``"subsystem+kind"``
    when ``(subsystem, kind, timestamp, seq)`` serves the query (on every database)."""
    if has_subsystem_kind_index(where):
        return "subsystem+kind"
    newest = session.scalar(select(func.max(T.seq))) or 0
    start = min(newest + 1, before) if before is not None else newest + 1
    low = 0 if where.since is None else _seq_at(session, where.since)
    high = newest + 1 if where.until is None else _seq_at(session, where.until)
    low = newest + 1 if low is None else low
    high = newest + 1 if high is None else high
    in_range = abs(min(high, start) - low)
    newer = max(0, start - high)
    others = (where.subsystem, where.kind, where.signer, where.party, where.anchor)
    if any(value is not None for value in others) and in_range > RANGE_WITH_FILTERS_MAX:
        return ""  # SQLite's own choice: the other filter's (…, seq) index, newest first
    return "range" if in_range * RANGE_ENTRY_COST <= newer else "scan"


def page_query(session: Session, where: Any, before: int | None, limit: int) -> Select[Any]:
    """Return the query of one page (``limit`` rows and one more) matching ``where``."""
    timed = where.since is not None or where.until is not None
    if timed and has_subsystem_kind_index(where):
        return _subsystem_kind_time(where, before, limit)
    plan = ""
    if timed and session.get_bind().dialect.name == "sqlite":
        plan = choose_time_plan(session, where, before)
    others = (where.subsystem, where.kind, where.signer, where.party, where.anchor)
    if plan and all(value is None for value in others):
        # the newest page's seqs from an index alone: (timestamp, seq) for "range", then
        # sorted; (seq, timestamp) walked downwards for "scan" (16-byte entries, not rows)
        stamp = T.timestamp if plan == "range" else T.timestamp + 0
        inner = select(T.seq)
        if plan == "range":  # both bounds: SQLite takes the range even for a one-sided filter
            inner = inner.where(
                stamp >= (-(2**63) if where.since is None else where.since),
                stamp < (2**63 - 1 if where.until is None else where.until),
            )
        else:
            if where.since is not None:
                inner = inner.where(stamp >= where.since)
            if where.until is not None:
                inner = inner.where(stamp < where.until)
        if before is not None:
            inner = inner.where(T.seq < before)
        newest = inner.order_by(T.seq.desc()).limit(limit + 1)
        return select(T).where(T.seq.in_(newest)).order_by(T.seq.desc()).limit(limit + 1)

    def number(col: Any) -> Any:  # under "range", keep the other filters off their indexes
        return col + 0 if plan == "range" else col

    def text(col: Any) -> Any:
        return col.concat("") if plan == "range" else col

    query = select(T)
    order: Any = T.seq
    if where.party is not None:
        party, twin = aliased(TransactionParty), aliased(TransactionParty)
        first_position = (
            select(func.min(twin.position))
            .where(twin.tx_seq == party.tx_seq, twin.address == party.address)
            .scalar_subquery()
        )
        query = query.join(party, party.tx_seq == T.seq).where(
            party.address == where.party, party.position == first_position
        )
        order = party.tx_seq
    if where.subsystem is not None:
        query = query.where(text(T.subsystem) == where.subsystem)
    if where.kind is not None:
        query = query.where(text(T.kind) == where.kind)
    if where.signer is not None:
        query = query.where(text(T.signer) == where.signer)
    if where.anchor is not None:
        query = query.where(number(T.anchor_index) == where.anchor)
    stamp = T.timestamp + 0 if plan == "scan" else T.timestamp
    if where.since is not None:
        query = query.where(stamp >= where.since)
    if where.until is not None:
        query = query.where(stamp < where.until)
    if before is not None:
        query = query.where(order < before)
    return query.order_by(order.desc()).limit(limit + 1)


def has_subsystem_kind_index(where: Any) -> bool:
    """Return whether ``where`` (with a time range) is ``subsystem`` + ``kind`` alone."""
    others = (where.signer, where.party, where.anchor)
    both = where.subsystem is not None and where.kind is not None
    return both and all(value is None for value in others)


def _subsystem_kind_time(where: Any, before: int | None, limit: int) -> Select[Any]:
    """Return the page query of ``subsystem`` + ``kind`` + a time range: the seqs of the
    rows of both filters in the range, from the ``(subsystem, kind, timestamp, seq)`` index
    alone (index entries, no rows), sorted, the newest ``limit + 1`` kept, then those rows.

    ``seq`` is written ``seq + 0`` in the cursor and the order so that no ``(…, seq)`` index
    is walked instead (SQLite would walk ``(subsystem, seq)`` for a cursor page, reading
    each row newer than the range). Cost: the index entries of both filters in the range
    (at most ≈ 90,000 for the commonest pair over the whole 1,000,000 log, ≈ 10 ms)."""
    seq = T.seq + 0
    inner = select(T.seq).where(T.subsystem == where.subsystem, T.kind == where.kind)
    if where.since is not None:
        inner = inner.where(T.timestamp >= where.since)
    if where.until is not None:
        inner = inner.where(T.timestamp < where.until)
    if before is not None:
        inner = inner.where(seq < before)
    newest = inner.order_by(seq.desc()).limit(limit + 1)
    return select(T).where(T.seq.in_(newest)).order_by(T.seq.desc()).limit(limit + 1)
