"""Reads of the index: one transaction, counts, anchors, and the explorer's list query.

The list query returns transactions newest first (``seq`` descending), filtered, one page
at a time (:func:`read_page`); :func:`iter_pages` chains pages for streamed exports (CSV).

Every filter has an index that yields rows in ``seq`` order, so a page stops after
``limit + 1`` rows: ``(subsystem, seq)``, ``(kind, seq)``, ``(signer, seq)``, ``anchor_index``
(an anchor's few hundred rows), the party index ``(address, tx_seq)`` walked newest first
(joined, not an ``IN`` list that would be built whole).

A time range (``since <= timestamp < until``, the signed timestamp) is the exception: no
index orders both by time and by ``seq``. Signed timestamps follow acceptance order closely,
though nothing forces them to, so the index keeps a **zone map** (``transaction_time_zones``,
migration 0008): for every run of ``2**ZONE_BITS`` consecutive ``seq`` values, the smallest
and largest timestamp, widened by every write (``node.db.zones``). Two plans, chosen per
query on both databases:

* **zones** (a wide range): walk the zones whose bounds meet the range, newest first, and in
  each run of them walk the usual ``seq``-ordered index (``(seq, timestamp)`` alone with no
  other filter, else the other filter's ``(…, seq)`` index) restricted to that run's ``seq``
  interval, testing the timestamp, until the page is full. Cost: the page plus at most the
  zones at the range's edges, when timestamps follow acceptance order; a zone made wide by a
  far back- or forward-dated transaction is only walked, never wrongly skipped.
* **range** (a narrow range, fewer than ``RANGE_MAX`` rows, counted with that cap on the
  ``(timestamp, seq)`` index): read the range's rows by timestamp and keep the newest
  ``limit + 1`` — cost ∝ rows in the range, whatever the zones look like. With no other
  filter it runs on the index alone (a covering subquery); other filters are tested on the
  range's rows (written as expressions no index matches, ``x + 0`` / ``x || ''``, so that
  the database does not walk their indexes instead).

``subsystem`` + ``kind`` + a time range (no other filter) has its own index,
``(subsystem, kind, timestamp, seq)``: the page's seqs are read from it alone and sorted
(cost ∝ index entries of both filters in the range).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, aliased, defer, selectinload, sessionmaker

from node.db.models import (
    Anchor,
    BusinessTransaction,
    TimeZone,
    TransactionParty,
    TransactionStatus,
)
from node.db.session import begin_snapshot
from node.db.zones import ZONE_BITS
from node.ledger import tree
from node.ledger.rows import OWN_LOG

T = BusinessTransaction

#: zones read per query while walking them newest first
ZONE_BATCH = 256
#: ranges with fewer rows than this are read by timestamp ("range"), wider ones by zones
RANGE_MAX = 4096
#: sentinels for a one-sided range: with both bounds the database takes the index range
LOWEST, HIGHEST = -(2**63), 2**63 - 1
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class TxFilter:
    """Filters of transaction queries (all optional; ``since <= timestamp < until``)."""

    subsystem: str | None = None
    kind: str | None = None
    signer: str | None = None
    party: str | None = None
    since: int | None = None
    until: int | None = None
    anchor: int | None = None


@dataclass(frozen=True)
class Page:
    """A page of transactions, newest first, with the cursor of the next page."""

    items: list[BusinessTransaction]
    next_cursor: int | None


def page_query(session: Session, where: TxFilter, before: int | None, limit: int) -> Select[Any]:
    """Return the query of one page (``limit`` rows and one more) matching ``where``."""
    if where.since is None and where.until is None:
        query, order = _matching(where, plan="", seqs_only=False)
        if before is not None:
            query = query.where(order < before)
        return query.order_by(order.desc()).limit(limit + 1)
    plan = choose_time_plan(session, where)
    if plan == "subsystem+kind":
        return _subsystem_kind_time(where, before, limit)
    if plan == "range":
        return _range(where, before, limit)
    seqs = newest_in_zones(session, where, before, limit + 1)
    return select(T).where(T.seq.in_(seqs)).order_by(T.seq.desc())


def choose_time_plan(session: Session, where: TxFilter) -> str:
    """Return the plan of a query with a time range (module doc): ``"subsystem+kind"`` when
    that index serves it, ``"range"`` when the range holds fewer than ``RANGE_MAX`` rows,
    else ``"zones"``."""
    if has_subsystem_kind_index(where):
        return "subsystem+kind"
    capped = (
        select(T.seq)
        .where(
            T.timestamp >= (LOWEST if where.since is None else where.since),
            T.timestamp < (HIGHEST if where.until is None else where.until),
        )
        .limit(RANGE_MAX)
        .subquery()
    )
    in_range = session.scalar(select(func.count()).select_from(capped)) or 0
    return "range" if in_range < RANGE_MAX else "zones"


def _matching(where: TxFilter, *, plan: str, seqs_only: bool) -> tuple[Select[Any], Any]:
    """Return the rows (or, with ``seqs_only``, the seqs) matching every filter but the time
    range, and the column they are ordered by (``seq``, or the party index's ``tx_seq``).
    Under the ``"range"`` plan the filters are written so that no index matches them."""

    def number(col: Any) -> Any:
        return col + 0 if plan == "range" else col

    def text(col: Any) -> Any:
        return col.concat("") if plan == "range" else col

    if where.party is not None:
        party, twin = aliased(TransactionParty), aliased(TransactionParty)
        first_position = (
            select(func.min(twin.position))
            .where(twin.tx_seq == party.tx_seq, twin.address == party.address)
            .scalar_subquery()
        )
        order: Any = party.tx_seq
        query = (
            select(order if seqs_only else T)
            .select_from(T)
            .join(party, party.tx_seq == T.seq)
            .where(party.address == where.party, party.position == first_position)
        )
    else:
        order = T.seq
        query = select(T.seq if seqs_only else T)
    if where.subsystem is not None:
        query = query.where(text(T.subsystem) == where.subsystem)
    if where.kind is not None:
        query = query.where(text(T.kind) == where.kind)
    if where.signer is not None:
        query = query.where(text(T.signer) == where.signer)
    if where.anchor is not None:
        query = query.where(number(T.anchor_index) == where.anchor)
    return query, order


def _in_time(query: Select[Any], where: TxFilter, stamp: Any) -> Select[Any]:
    if where.since is not None:
        query = query.where(stamp >= where.since)
    if where.until is not None:
        query = query.where(stamp < where.until)
    return query


def _range(where: TxFilter, before: int | None, limit: int) -> Select[Any]:
    """The ``"range"`` plan: the range's rows by ``(timestamp, seq)``, newest kept."""
    others = (where.subsystem, where.kind, where.signer, where.party, where.anchor)
    bounds = (
        T.timestamp >= (LOWEST if where.since is None else where.since),
        T.timestamp < (HIGHEST if where.until is None else where.until),
    )
    if all(value is None for value in others):
        # the newest page's seqs from the index alone, then those rows
        inner = select(T.seq).where(*bounds)
        if before is not None:
            inner = inner.where(T.seq < before)
        newest = inner.order_by(T.seq.desc()).limit(limit + 1)
        return select(T).where(T.seq.in_(newest)).order_by(T.seq.desc()).limit(limit + 1)
    query, order = _matching(where, plan="range", seqs_only=False)
    query = query.where(*bounds)
    if before is not None:
        query = query.where(order < before)
    return query.order_by(order.desc()).limit(limit + 1)


def zone_intervals(
    session: Session, where: TxFilter, below: int | None
) -> Iterator[tuple[int, int]]:
    """Yield the ``seq`` intervals ``[low, high)``, newest first and below ``below`` (if
    given), of the zones whose timestamp bounds meet ``where``'s range: runs of consecutive
    zones, read ``ZONE_BATCH`` zones per query."""
    if below is None:
        newest = session.scalar(select(func.max(TimeZone.zone)))
        if newest is None:
            return
        top = int(newest)
    elif below <= 0:
        return
    else:
        top = (below - 1) >> ZONE_BITS
    while top >= 0:
        query = select(TimeZone.zone).where(TimeZone.zone <= top)
        if where.since is not None:
            query = query.where(TimeZone.max_timestamp >= where.since)
        if where.until is not None:
            query = query.where(TimeZone.min_timestamp < where.until)
        zones = [
            int(z) for z in session.scalars(query.order_by(TimeZone.zone.desc()).limit(ZONE_BATCH))
        ]
        low = high = None
        for zone in zones:
            if low is not None and zone == low - 1:
                low = zone
                continue
            if low is not None and high is not None:
                yield low << ZONE_BITS, _cap((high + 1) << ZONE_BITS, below)
            low = high = zone
        if low is not None and high is not None:
            yield low << ZONE_BITS, _cap((high + 1) << ZONE_BITS, below)
        if len(zones) < ZONE_BATCH:
            return
        top = zones[-1] - 1


def _cap(high: int, below: int | None) -> int:
    return high if below is None else min(high, below)


def newest_in_zones(session: Session, where: TxFilter, before: int | None, count: int) -> list[int]:
    """The ``"zones"`` plan: return the seqs of the newest ``count`` rows matching ``where``
    (below ``before``), walking the zones that meet its time range newest first."""
    found: list[int] = []
    matching, order = _matching(where, plan="", seqs_only=True)
    # ``timestamp + 0``: the seq-ordered index is walked, not the timestamp index
    matching = _in_time(matching, where, T.timestamp + 0).order_by(order.desc())
    for low, high in zone_intervals(session, where, before):
        query = matching.where(order >= low, order < high).limit(count - len(found))
        found.extend(int(seq) for seq in session.scalars(query))
        if len(found) >= count:
            break
    return found


def has_subsystem_kind_index(where: TxFilter) -> bool:
    """Return whether ``where`` (with a time range) is ``subsystem`` + ``kind`` alone."""
    others = (where.signer, where.party, where.anchor)
    both = where.subsystem is not None and where.kind is not None
    return both and all(value is None for value in others)


def _subsystem_kind_time(where: TxFilter, before: int | None, limit: int) -> Select[Any]:
    """Return the page query of ``subsystem`` + ``kind`` + a time range: the seqs of the
    rows of both filters in the range, from the ``(subsystem, kind, timestamp, seq)`` index
    alone (index entries, no rows), sorted, the newest ``limit + 1`` kept, then those rows.

    ``seq`` is written ``seq + 0`` in the cursor and the order so that no ``(…, seq)`` index
    is walked instead (SQLite would walk ``(subsystem, seq)`` for a cursor page, reading
    each row newer than the range). Cost: the index entries of both filters in the range
    (at most ≈ 90,000 for the commonest pair over the whole 1,000,000 log, ≈ 10 ms)."""
    seq = T.seq + 0
    inner = select(T.seq).where(T.subsystem == where.subsystem, T.kind == where.kind)
    inner = _in_time(inner, where, T.timestamp)
    if before is not None:
        inner = inner.where(seq < before)
    newest = inner.order_by(seq.desc()).limit(limit + 1)
    return select(T).where(T.seq.in_(newest)).order_by(T.seq.desc()).limit(limit + 1)


# -- reads ------------------------------------------------------------------------------------


def get_transaction(sessions: sessionmaker[Session], tx_id: str) -> BusinessTransaction | None:
    """Return the transaction with id ``tx_id`` (0x-hex EIP-712 digest), or None; of several
    logs holding it, the first by ``(origin, seq)`` (this node's own log first)."""
    with sessions() as session:
        return session.scalar(
            select(BusinessTransaction)
            .options(
                selectinload(BusinessTransaction.parties),
                selectinload(BusinessTransaction.anchor),
            )
            .where(BusinessTransaction.tx_id == tx_id.lower())
            .order_by(BusinessTransaction.origin, BusinessTransaction.seq)
            .limit(1)
        )


def find_by_cid(sessions: sessionmaker[Session], cids: Sequence[str]) -> tuple[str, str] | None:
    """Return ``(tx_id, "leaf" | "payload")`` of the transaction whose leaf CID, else whose
    (encrypted) payload CID, is one of ``cids`` (spellings of one CID), or None. Both columns are
    indexed (migration 0009): a CID that matches nothing costs two index probes, not a scan."""
    with sessions() as session:
        for column, part in ((T.cid, "leaf"), (T.payload, "payload")):
            found = session.scalar(
                select(T.tx_id).where(column.in_(list(cids))).order_by(T.origin, T.seq).limit(1)
            )
            if found is not None:
                return str(found), part
    return None


def read_page(
    sessions: sessionmaker[Session], where: TxFilter, *, before: int | None, limit: int
) -> Page:
    """Return one page of transactions matching ``where``, newest first, below the cursor
    ``before`` (if given); ``limit`` is clamped to ``1..MAX_PAGE_SIZE``."""
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    with sessions() as session:
        query = page_query(session, where, before, limit).options(
            defer(BusinessTransaction.body),
            selectinload(BusinessTransaction.parties),
            selectinload(BusinessTransaction.anchor),
        )
        rows: Sequence[BusinessTransaction] = session.scalars(query).all()
    items = list(rows[:limit])
    next_cursor = items[-1].seq if len(rows) > limit else None
    return Page(items, next_cursor)


def iter_pages(
    read: Callable[[int | None, int], Page], *, chunk: int, first: int | None
) -> Iterator[Sequence[BusinessTransaction]]:
    """Yield the pages ``read(before, limit)`` returns, newest first: ``first`` rows (if
    given), then twice as many each time up to ``chunk``. A client that stops after the
    first rows (a download cancelled, a preview) leaves the server at most one small page
    of work, not a whole chunk; a full export soon reads ``chunk`` rows per query."""
    before: int | None = None
    size = chunk if first is None else min(first, chunk)
    while True:
        page = read(before, size)
        yield page.items
        if page.next_cursor is None:
            return
        before = page.next_cursor
        size = min(chunk, size * 2)


def count_pending(sessions: sessionmaker[Session]) -> int:
    """Return how many accepted leaves wait for an anchor (the status index)."""
    with sessions() as session:
        return int(session.scalar(_pending_count()) or 0)


def _pending_count() -> Select[Any]:
    return (
        select(func.count())
        .select_from(BusinessTransaction)
        .where(BusinessTransaction.status == TransactionStatus.PENDING)
    )


def count_by_status(sessions: sessionmaker[Session], node_address: str) -> dict[str, int]:
    """Return the number of transactions per status (statuses with none left out): pending
    by the status index, anchored as the sum of the sizes of every log (logs have no gaps;
    one index lookup per log instead of counting a million rows), from one snapshot: an
    anchor committed between the two reads would count its leaves twice."""
    with sessions() as session:
        begin_snapshot(session)
        pending = session.scalar(_pending_count())
        others = session.scalars(
            select(Anchor.node)
            .where(func.lower(Anchor.node) != node_address.lower())
            .group_by(Anchor.node)
        ).all()
        anchored = sum(tree.log_size(session, origin) for origin in (OWN_LOG, *others))
    counts = {
        TransactionStatus.PENDING: int(pending or 0),
        TransactionStatus.ANCHORED: anchored,
    }
    return {status: n for status, n in counts.items() if n}


def get_own_log_size(sessions: sessionmaker[Session]) -> int:
    """Return the size of this node's anchored log (one index lookup)."""
    with sessions() as session:
        return tree.log_size(session, OWN_LOG)


def list_anchors(
    sessions: sessionmaker[Session], *, before: int | None, limit: int
) -> list[Anchor]:
    """Return the indexed anchors below ``before`` (if given), newest first; ``limit`` is
    clamped to ``1..MAX_PAGE_SIZE``."""
    query = select(Anchor).order_by(Anchor.index.desc()).limit(max(1, min(limit, MAX_PAGE_SIZE)))
    if before is not None:
        query = query.where(Anchor.index < before)
    with sessions() as session:
        return list(session.scalars(query).all())
