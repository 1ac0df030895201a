"""``GET /explorer``: the explorer rendered on the server (works without JavaScript).

``/`` serves the IPFS-hosted front-end (:mod:`node.frontend.routes`); this page stays the
no-JavaScript fallback.
"""

from __future__ import annotations

import threading
import time
import weakref
from html import escape
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from node.api.deps import NodeDep
from node.runtime import NodeContext

router = APIRouter(tags=["explorer"])

PAGE_SIZE = 50
MAX_CURSOR = 2**63 - 1

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:left}
code{font-size:.85rem}.anchored{color:#176317}.pending{color:#9a6700}
dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}
"""


SUMMARY_TTL = 1.0  # seconds: this page's summary is re-read at most once a second
#: id(node) -> (the node, weakly; when read; the summary) (NodeContext is not hashable)
_summaries: dict[int, tuple[weakref.ref[NodeContext], float, dict[str, Any]]] = {}
_summary_lock = threading.Lock()


def summary(node: NodeContext) -> dict[str, Any]:
    """Return what this page shows of the node (not ``/health``: no counts, no sync or epoch
    state), re-read from the chain at most once per ``SUMMARY_TTL`` (``/health`` reads the
    head afresh each time and reuses its other chain reads only at the same head)."""
    now = time.monotonic()
    with _summary_lock:
        cached = _summaries.get(id(node))
        if cached is not None and cached[0]() is node and now - cached[1] < SUMMARY_TTL:
            return cached[2]
    chain = node.chain
    value = {
        "node": node.address,
        "chain": {
            "kind": chain.kind,
            "chain_id": chain.chain_id,
            "block_number": int(chain.w3.eth.block_number),
        },
        "epoch": int(node.registry.current_epoch()),
        "registry": node.record.registry,
        "store": {"backend": node.store.backend},
    }
    with _summary_lock:
        for key in [key for key, entry in _summaries.items() if entry[0]() is None]:
            del _summaries[key]  # nodes closed and gone
        _summaries[id(node)] = (weakref.ref(node), now, value)
    return value


def _short(value: str, keep: int = 10) -> str:
    return value if len(value) <= 2 * keep else f"{value[:keep]}…{value[-6:]}"


@router.get("/explorer", response_class=HTMLResponse, include_in_schema=False)
def explorer(
    node: NodeDep, before: int | None = Query(default=None, ge=0, le=MAX_CURSOR)
) -> HTMLResponse:
    """Return the explorer: the node's summary and a page of transactions, newest first
    (``?before=<seq>``: the next, older page)."""
    health = summary(node)
    page = node.ledger.list(before=before, limit=PAGE_SIZE)
    pager = []
    if before is not None:
        pager.append("<a href='/explorer'>Newest</a>")
    if page.next_cursor is not None:
        pager.append(f"<a href='/explorer?before={int(page.next_cursor)}' rel='next'>Older</a>")
    nav = f"<nav aria-label='pages'><p>{' · '.join(pager)}</p></nav>" if pager else ""
    rows = []
    for tx in page.items:
        anchor = f"block {tx.anchor.block_number}" if tx.anchor is not None else "—"
        rows.append(
            "<tr>"
            f"<td>{tx.seq}</td>"
            f"<td><a href='/api/v1/transactions/{escape(tx.tx_id)}'>"
            f"<code>{escape(_short(tx.tx_id))}</code></a></td>"
            f"<td>{escape(tx.subsystem)}</td><td>{escape(tx.kind)}</td>"
            f"<td>{escape(tx.amount)} {escape(tx.currency)}</td>"
            f"<td><code>{escape(_short(tx.signer))}</code></td>"
            f"<td><a href='/ipfs/{escape(tx.cid)}?format=raw'><code>"
            f"{escape(_short(tx.cid))}</code></a></td>"
            f"<td class='{escape(tx.status)}'>{escape(tx.status)}</td>"
            f"<td>{escape(anchor)}</td>"
            "</tr>"
        )
    table = "".join(rows) or "<tr><td colspan='9'>No transactions yet.</td></tr>"
    chain = health["chain"]
    html = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Collegium explorer</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{STYLE}</style></head><body>
<h1>Collegium ledger explorer</h1>
<dl>
<dt>Node</dt><dd><code>{escape(health["node"])}</code></dd>
<dt>Chain</dt><dd>{escape(str(chain["kind"]))} · chain id {chain["chain_id"]}
 · block {chain["block_number"]}</dd>
<dt>Epoch</dt><dd>{health["epoch"]}</dd>
<dt>Registry</dt><dd><code>{escape(str(health["registry"]))}</code></dd>
<dt>Store</dt><dd>{escape(str(health["store"]["backend"]))}</dd>
</dl>
<h2>{"Older" if before is not None else "Recent"} business transactions</h2>
<table><thead><tr><th>#</th><th>Id</th><th>Subsystem</th><th>Kind</th><th>Amount</th>
<th>Signer</th><th>CID</th><th>Status</th><th>Anchor</th></tr></thead>
<tbody>{table}</tbody></table>
{nav}
<p><a href="/docs">API (OpenAPI)</a> · <a href="/health">health</a></p>
</body></html>"""
    return HTMLResponse(html)
