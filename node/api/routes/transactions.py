"""Business transactions read: list them (JSON pages or a streamed CSV export), the EIP-712
types to sign, find one by id prefix or CID, fetch one, get its proof bundle.

Submitting is :mod:`node.api.routes.submissions`, whose router (same ``/transactions``
prefix) is included first, so the OpenAPI document keeps the submissions before the reads.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
from collections.abc import Iterator, Sequence
from typing import Annotated, Any, Final

import pydantic
from eth_utils import is_hex_address, to_checksum_address
from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import StreamingResponse

from node.api.deps import LedgerDep, NodeDep
from node.api.params import MAX_INDEX_INT
from node.api.schemas import (
    BusinessTxPage,
    BusinessTxPublic,
    InclusionProofPublic,
    Problem,
)
from node.db.models import CID_LEN, BusinessTransaction
from node.ledger import queries
from node.ledger.service import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, TxFilter
from node.ledger.transaction import typed_data_schema
from node.storage.cids import CODEC_DAG_PB, HASH_SHA2_256, format_cid, parse_cid
from node.storage.errors import InvalidCID

router = APIRouter(prefix="/transactions", tags=["transactions"])
log = logging.getLogger(__name__)

CSV_COLUMNS = (
    "id", "seq", "status", "subsystem", "kind", "signer", "parties", "amount", "currency",
    "memo", "payload", "private", "payload_hash", "nonce", "timestamp", "cid", "leaf_hash",
    "leaf_index", "anchor_index", "anchor_block", "received_at",
)  # fmt: skip
CSV_CHUNK_ROWS = 500  # pages grow 50, 100, 200, … up to this (node.ledger.queries.iter_pages)
CSV_FIRST_ROWS = 50  # the first chunk is one explorer page: the download starts at once


def _address(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    if not is_hex_address(value):
        raise HTTPException(400, f"{name} is not an address: {value!r}")
    return str(to_checksum_address(value))


def tx_filter(
    subsystem: str | None = None,
    kind: str | None = None,
    signer: str | None = None,
    party: str | None = None,
    since: int | None = Query(
        default=None,
        ge=0,
        le=MAX_INDEX_INT,
        description="signed timestamp >= since (unix seconds)",
    ),
    until: int | None = Query(
        default=None,
        ge=0,
        le=MAX_INDEX_INT,
        description="signed timestamp < until (unix seconds)",
    ),
    anchor: int | None = Query(
        default=None, ge=0, le=MAX_INDEX_INT, description="only this anchor's leaves"
    ),
) -> TxFilter:
    """Return the query filters shared by the JSON list and the CSV export."""
    return TxFilter(
        subsystem=subsystem,
        kind=kind,
        signer=_address(signer, "signer"),
        party=_address(party, "party"),
        since=since,
        until=until,
        anchor=anchor,
    )


FilterDep = Annotated[TxFilter, Depends(tx_filter)]


@router.get("", response_model=BusinessTxPage)
def list_transactions(
    ledger: LedgerDep,
    where: FilterDep,
    before: int | None = Query(
        default=None,
        ge=0,
        le=MAX_INDEX_INT,
        description="cursor (a page's next_cursor): list rows older than this",
    ),
    limit: int = Query(default=DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE),
) -> BusinessTxPage:
    """Return transactions, newest first, filtered; page with ``before=next_cursor``."""
    page = ledger.page(where, before=before, limit=limit)
    return BusinessTxPage(
        items=[BusinessTxPublic.from_row(r) for r in page.items], next_cursor=page.next_cursor
    )


#: A text cell starting with one of these is a formula to a spreadsheet (OWASP CSV injection).
FORMULA_TRIGGERS: Final = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(value: Any) -> Any:
    """Return ``value`` safe for a spreadsheet: a text cell starting with ``= + - @``, a tab or
    a CR gets a leading ``'`` (OWASP); numbers and other text are unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def csv_line(row: BusinessTransaction) -> list[Any]:
    """Return the CSV cells of one transaction, in ``CSV_COLUMNS`` order (text cells escaped
    against formula injection: :func:`escape_cell`)."""
    return [escape_cell(cell) for cell in _csv_cells(row)]


def _csv_cells(row: BusinessTransaction) -> list[Any]:
    anchor = row.anchor
    return [
        row.tx_id, row.seq, row.status, row.subsystem, row.kind, row.signer,
        " ".join(p.address for p in row.parties), row.amount, row.currency, row.memo,
        row.payload, "true" if row.private else "false", row.payload_hash, row.nonce,
        row.timestamp, row.cid, row.leaf_hash,
        "" if row.leaf_index is None else row.leaf_index,
        "" if row.anchor_index is None else row.anchor_index,
        "" if anchor is None else anchor.block_number, row.received_at.isoformat(),
    ]  # fmt: skip


def _csv_stream(
    first: Sequence[BusinessTransaction], rest: Iterator[Sequence[BusinessTransaction]]
) -> Iterator[str]:
    """Yield the CSV text page by page (one query each, sent as soon as it is read).

    The first page was read before the response started, so a bad query fails with a
    problem, not a 200. A later page that fails (the database gone, a bug) is logged and
    re-raised: the server then closes the connection without the chunked encoding's last
    chunk, which every HTTP client reports as an incomplete body, never as a complete CSV.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    rows = 0
    try:
        for page in itertools.chain((first,), rest):
            writer.writerows(csv_line(row) for row in page)
            rows += len(page)
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    except Exception:
        log.exception("CSV export failed after %d rows; closing the response unfinished", rows)
        raise


@router.get(
    ".csv",  # with the prefix: /transactions.csv
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
def export_csv(ledger: LedgerDep, where: FilterDep) -> StreamingResponse:
    """Stream every transaction matching the filters as CSV (RFC 4180), newest first.

    The parameters are validated and the first page is read before the response starts
    (a bad query is a 4xx problem, never a 200); a failure later on cuts the stream without
    its end, which clients report as an incomplete body (chunked transfer encoding).
    """
    pages = ledger.iter_pages(where, chunk=CSV_CHUNK_ROWS, first=CSV_FIRST_ROWS)
    first = next(pages)  # iter_pages yields at least one (maybe empty) page
    return StreamingResponse(
        _csv_stream(first, pages),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="transactions.csv"'},
    )


@router.get("/typed-data", summary="EIP-712 domain and types to sign")
def eip712_types(node: NodeDep) -> dict[str, Any]:
    """Return the EIP-712 ``domain``, ``types`` and ``primaryType`` wallets must sign."""
    return typed_data_schema(node.ledger.domain)


MIN_PREFIX_HEX: Final = 1
#: After the last hex digit: ``tx_id < prefix + PREFIX_END`` bounds the ids with ``prefix``.
PREFIX_END: Final = "~"


class TxIdMatch(pydantic.BaseModel):
    """The one transaction whose id starts with the prefix asked for."""

    id: str


@router.get(
    "/by-prefix/{prefix}",
    responses={404: {"model": Problem}, 409: {"model": Problem, "description": "ambiguous"}},
)
def find_by_prefix(
    prefix: Annotated[
        str,
        pydantic.Field(pattern=rf"^(0x)?[0-9a-fA-F]{{{MIN_PREFIX_HEX},64}}$"),
    ],
    node: NodeDep,
) -> TxIdMatch:
    """Return the id of the one transaction whose id starts with ``prefix`` (hex digits,
    ``0x`` optional): 404 if none does, 409 if several do (type more digits)."""
    from sqlalchemy import select

    wanted = "0x" + prefix.lower().removeprefix("0x")
    column = BusinessTransaction.tx_id
    query = select(column).where(column >= wanted, column < wanted + PREFIX_END).distinct().limit(2)
    with node.sessions() as session:
        found = list(session.scalars(query))
    if not found:
        raise HTTPException(404, f"no transaction id starts with {wanted}")
    if len(found) > 1:
        raise HTTPException(409, f"several transaction ids start with {wanted}: type more of it")
    return TxIdMatch(id=found[0])


class TxCidMatch(pydantic.BaseModel):
    """The transaction carrying a CID: as its leaf (the signed body) or its payload."""

    id: str
    cid: str
    part: str = pydantic.Field(description="leaf: the CID of the signed body; payload: of the "
                               "(encrypted) payload it names")  # fmt: skip


@router.get(
    "/by-cid/{cid}",
    responses={400: {"model": Problem, "description": "not a CID"}, 404: {"model": Problem}},
)
def find_by_cid(cid: str, node: NodeDep) -> TxCidMatch:
    """Return the transaction whose leaf (or, failing that, payload) has IPFS CID ``cid``, in
    any spelling of it (CIDv0 or v1, any multibase): 400 if ``cid`` is not a CID, 404 if no
    transaction carries it."""
    try:
        if len(cid) > CID_LEN:
            raise InvalidCID(f"longer than {CID_LEN} characters")
        parsed = parse_cid(cid.strip())
    except InvalidCID as exc:
        raise HTTPException(400, f"not a CID: {cid[:80]!r}") from exc
    spellings = {cid.strip(), format_cid(parsed)}
    if parsed.version == 0:
        spellings.add(format_cid(parsed.set(version=1)))
    elif parsed.codec.name == CODEC_DAG_PB and parsed.hashfun.name == HASH_SHA2_256:
        spellings.add(format_cid(parsed.set(version=0, base="base58btc")))
    found = queries.find_by_cid(node.sessions, sorted(spellings))
    if found is None:
        raise HTTPException(404, f"no transaction carries CID {format_cid(parsed)}")
    return TxCidMatch(id=found[0], cid=format_cid(parsed), part=found[1])


@router.get("/{tx_id}", responses={404: {"model": Problem}})
def get_transaction(tx_id: str, ledger: LedgerDep) -> BusinessTxPublic:
    """Return one transaction: body, signer, CID, status and on-chain anchor."""
    row = ledger.get(tx_id)
    if row is None:
        raise HTTPException(404, f"no transaction {tx_id}")
    return BusinessTxPublic.from_row(row)


@router.get("/{tx_id}/proof", responses={404: {"model": Problem}, 409: {"model": Problem}})
def get_inclusion_proof(tx_id: str, node: NodeDep) -> InclusionProofPublic:
    """Return the proof bundle of one transaction: leaf, path, tree head and anchor.

    With only a chain RPC URL and an IPFS gateway anyone can check it
    (``collegium verify-tx``). 409 while the transaction is not anchored yet.
    """
    row = node.ledger.get(tx_id)
    if row is None:
        raise HTTPException(404, f"no transaction {tx_id}")
    bundle = node.ledger.inclusion(tx_id)
    if bundle is None:
        raise HTTPException(409, f"transaction {tx_id} is not anchored yet")
    return InclusionProofPublic.from_bundle(
        bundle, chain_id=node.chain.chain_id, registry=str(node.record.registry)
    )
