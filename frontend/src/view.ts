// View pieces shared by the pages: messages, error text, links, the transaction rows.

import { ApiError, nodeUrl, type Tx } from "./api";
import { h, type Raw, short } from "./html";
import { WalletError } from "./wallet";

export const PAGE_SIZE = 25;

/** Return a status message box (`bad` is an alert). */
export function message(kind: "ok" | "bad" | "warn" | "", text: string): Raw {
  return h`<div class="msg ${kind}" role="${kind === "bad" ? "alert" : "status"}">${text}</div>`;
}

/** Return `e` in words for the user. */
export function errorText(e: unknown): string {
  if (e instanceof ApiError) return `The node answered ${e.status}: ${e.message}`;
  if (e instanceof WalletError) return e.message;
  return (e as Error)?.message ?? String(e);
}

export function txLink(id: string): Raw {
  return h`<a href="#/tx/${id}"><code>${short(id)}</code></a>`;
}

export function ipfsLink(cid: string): Raw {
  return h`<a href="${nodeUrl(`/ipfs/${cid}`)}"><code>${short(cid)}</code></a>`;
}

export function parseQuery(query: string): Record<string, string> {
  return Object.fromEntries(new URLSearchParams(query));
}

/** Return the table rows of `items` (the transactions list, search and subsystem pages). */
export function txRows(items: Tx[]): Raw {
  if (!items.length) return h`<tr><td colspan="8">No transactions match.</td></tr>`;
  return h`${items.map(
    (t) => h`<tr><td>${t.seq}</td><td>${txLink(t.id)}</td><td>${t.subsystem}</td><td>${t.kind}</td>
      <td>${t.private ? h`<span class="badge" title="amount, currency, parties and memo are in the encrypted payload">private</span>` : `${t.amount} ${t.currency}`}</td><td><a href="#/txs?signer=${t.signer}"><code>${short(t.signer)}</code></a></td>
      <td class="${t.status}">${t.status}</td><td>${t.anchor ? t.anchor.block_number : "—"}</td></tr>`,
  )}`;
}
