// Transactions: the filtered, paged list and its CSV export.

import { listTxs, type TxFilter } from "../api";
import { h } from "../html";
import { currentRoute, render } from "../page";
import { errorText, PAGE_SIZE, parseQuery, txRows } from "../view";

export const CSV_PAGE = 500;
export const CSV_MAX_ROWS = 20000;
const CSV_COLUMNS = ["id", "seq", "subsystem", "kind", "parties", "amount", "currency", "memo", "signer", "cid", "status", "timestamp", "anchor_block", "private", "payload_hash"];

function csvCell(value: unknown): string {
  const s = String(value ?? "");
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Return the CSV text of every transaction matching `filter` (all pages, capped). */
export async function exportCsv(filter: TxFilter): Promise<string> {
  const lines = [CSV_COLUMNS.join(",")];
  let before: number | null | undefined;
  do {
    const page = await listTxs(filter, before, CSV_PAGE);
    for (const t of page.items)
      lines.push(
        [t.id, t.seq, t.subsystem, t.kind, t.parties.join(" "), t.amount, t.currency, t.memo, t.signer, t.cid, t.status, t.timestamp, t.anchor?.block_number ?? "", t.private ? "true" : "false", t.payload_hash ?? ""]
          .map(csvCell)
          .join(","),
      );
    before = page.next_cursor;
  } while (before != null && lines.length <= CSV_MAX_ROWS);
  return lines.join("\r\n") + "\r\n";
}

export async function transactions(query: string): Promise<void> {
  const id = currentRoute();
  const q = parseQuery(query);
  const filter: TxFilter = {
    subsystem: q.subsystem,
    kind: q.kind,
    party: q.party,
    signer: q.signer,
    since: q.since,
    until: q.until,
  };
  const before = q.before ? Number(q.before) : undefined;
  const page = await listTxs(filter, before, PAGE_SIZE);
  const keep = new URLSearchParams(Object.entries(filter).filter(([, v]) => v) as [string, string][]);
  const next = page.next_cursor != null ? `#/txs?${keep}${keep.size ? "&" : ""}before=${page.next_cursor}` : "";
  const field = (name: keyof TxFilter, label: string, ph: string) =>
    h`<label>${label}<input name="${name}" value="${filter[name] ?? ""}" placeholder="${ph}" /></label>`;
  const dateField = (name: "since" | "until", label: string) =>
    h`<label>${label}<input type="date" name="${name}" value="${filter[name] ? new Date(Number(filter[name]) * 1000).toISOString().slice(0, 10) : ""}" /></label>`;
  render(id, h`<h1>Transactions</h1>
  <form class="filters" id="filters">
    ${field("subsystem", "Subsystem", "main")} ${field("kind", "Kind", "invoice")}
    ${field("party", "Party", "0x…")} ${field("signer", "Signer", "0x…")}
    ${dateField("since", "Signed from (UTC)")} ${dateField("until", "Signed before (UTC)")}
    <button type="submit">Filter</button>
    <button type="button" class="secondary" id="csv">Export CSV</button>
  </form>
  <div id="csv-status" role="status"></div>
  <div class="scroll"><table><caption class="sr">Transactions, newest first</caption><thead><tr><th>#</th><th>Id</th><th>Subsystem</th><th>Kind</th><th>Amount</th><th>Signer</th><th>Status</th><th>Block</th></tr></thead>
  <tbody>${txRows(page.items)}</tbody></table></div>
  <div class="pager">${before != null ? h`<a href="#/txs?${keep}">Newest</a>` : ""}${next ? h`<a href="${next}" rel="next">Older →</a>` : ""}</div>`);
  const form = document.getElementById("filters") as HTMLFormElement;
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const data = new URLSearchParams();
    for (const [k, v] of new FormData(form)) {
      const value = String(v).trim();
      if (!value) continue;
      data.set(k, k === "since" || k === "until" ? String(Date.parse(`${value}T00:00:00Z`) / 1000) : value);
    }
    location.hash = `#/txs?${data}`;
  });
  document.getElementById("csv")!.addEventListener("click", async () => {
    const status = document.getElementById("csv-status")!;
    status.textContent = "Exporting…";
    try {
      const csv = await exportCsv(filter);
      const a = document.createElement("a");
      a.href = URL.createObjectURL(new Blob([csv], { type: "text/csv" }));
      a.download = "collegium-transactions.csv";
      document.body.append(a);
      a.click();
      a.remove();
      status.textContent = `Exported ${csv.trim().split("\r\n").length - 1} transactions.`;
    } catch (e) {
      status.textContent = errorText(e);
    }
  });
}
