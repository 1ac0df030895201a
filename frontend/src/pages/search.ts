// Search: a transaction id, an address, a CID, a block number or a block/chain transaction hash.

import { type Hex, isAddress, isHash } from "viem";
import { API, type Anchor, ApiError, getJson, health, listTxs, type Tx } from "../api";
import { chainClient } from "../chain";
import { h } from "../html";
import { currentRoute, render } from "../page";
import { ipfsLink, message, PAGE_SIZE, txRows } from "../view";

export async function search(q: string): Promise<void> {
  const id = currentRoute();
  q = q.trim();
  if (/^[0-9a-fA-F]{64}$/.test(q) || /^[0-9a-fA-F]{40}$/.test(q)) q = `0x${q}`; // the 0x is optional
  const hl = await health();
  const client = chainClient(hl.chain.chain_id);
  if (isHash(q)) {
    try {
      await getJson<Tx>(`${API}/transactions/${q}`);
      location.replace(`#/tx/${q}`);
      return;
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) throw e;
    }
    const block = await client.getBlock({ blockHash: q as Hex }).catch(() => null);
    if (block) return blockView(id, block.number!, client);
    const receipt = await client.getTransactionReceipt({ hash: q as Hex }).catch(() => null);
    if (receipt) return blockView(id, receipt.blockNumber, client, `Chain transaction ${q}`);
    return render(id, message("warn", `Nothing found for ${q}: not a business transaction, block or chain transaction.`));
  }
  if (isAddress(q)) {
    const [signed, party] = await Promise.all([listTxs({ signer: q }, null, PAGE_SIZE), listTxs({ party: q }, null, PAGE_SIZE)]);
    return render(id, h`<h1>Address <code>${q}</code></h1>
    <h2>Signed by it</h2><div class="scroll"><table><tbody>${txRows(signed.items)}</tbody></table></div>
    <p><a href="#/txs?signer=${q}">All signed by it</a></p>
    <h2>Naming it as a party</h2><div class="scroll"><table><tbody>${txRows(party.items)}</tbody></table></div>
    <p><a href="#/txs?party=${q}">All naming it</a></p>`);
  }
  if (/^\d+$/.test(q)) return blockView(id, BigInt(q), client);
  if (/^(0x)?[0-9a-fA-F]{1,63}$/.test(q)) {
    // the start of a transaction id: open it when only one id starts so
    try {
      const found = await getJson<{ id: string }>(`${API}/transactions/by-prefix/${q}`);
      location.replace(`#/tx/${found.id}`);
      return;
    } catch (e) {
      if (e instanceof ApiError && (e.status === 404 || e.status === 409))
        return render(id, message("warn", e.status === 409 ? `Several transaction ids start with ${q}: type more of it.` : `No transaction id starts with ${q}.`));
      throw e;
    }
  }
  if (CID_TEXT.test(q)) return cidView(id, q);
  render(id, message("warn", `Search takes a transaction id (or its start), an address, a CID, a block number or a hash; "${q}" is none of those.`));
}

/** A CID as people paste it: CIDv0 (Qm…), or CIDv1 in base32 (b…), base58btc (z…) or base36 (k…). */
const CID_TEXT = /^(Qm[1-9A-HJ-NP-Za-km-z]{44}|b[a-z2-7]{20,}|z[1-9A-HJ-NP-Za-km-z]{20,}|k[0-9a-z]{20,})$/;

/** Open the transaction carrying CID `q` (as its leaf or its payload: GET /transactions/by-cid);
 * else say what the CID is (an anchor's batch, or nothing this node knows) with its IPFS link. */
async function cidView(id: number, q: string): Promise<void> {
  let problem = "";
  try {
    const found = await getJson<{ id: string; part: string }>(`${API}/transactions/by-cid/${encodeURIComponent(q)}`);
    location.replace(`#/tx/${found.id}`);
    return;
  } catch (e) {
    if (!(e instanceof ApiError && (e.status === 404 || e.status === 400))) throw e;
    if (e.status === 400) problem = `${q} is not a valid CID.`;
  }
  if (problem) return render(id, message("warn", problem));
  const anchors = await getJson<Anchor[]>(`${API}/anchors?limit=500`);
  const hit = anchors.find((a) => a.batch_cid === q);
  render(id, h`<h1>CID <code>${q}</code></h1>
  <p>${ipfsLink(q)} (open it through this node's IPFS gateway)</p>
  ${hit
    ? message("ok", `This is the batch of anchor #${hit.index} (block ${hit.block_number}, ${hit.count} transactions).`)
    : message("warn", "No transaction on this node carries this CID, as its leaf or as its payload.")}
  ${hit ? h`<p><a href="#/search/${hit.block_number}">Block ${hit.block_number}</a></p>` : ""}`);
}

async function blockView(id: number, number: bigint, client: ReturnType<typeof chainClient>, title?: string): Promise<void> {
  const block = await client.getBlock({ blockNumber: number }).catch(() => null);
  if (!block) return render(id, message("warn", `Block ${number} does not exist (yet).`));
  const anchors = (await getJson<Anchor[]>(`${API}/anchors?limit=500`)).filter((a) => BigInt(a.block_number) === number);
  render(id, h`<h1>${title ?? `Block ${number}`}</h1>
  <dl><dt>Number</dt><dd>${block.number}</dd><dt>Hash</dt><dd><code>${block.hash}</code></dd>
  <dt>Time</dt><dd>${new Date(Number(block.timestamp) * 1000).toISOString()}</dd><dt>Transactions</dt><dd>${block.transactions.length}</dd></dl>
  <h2>Anchors in this block</h2>
  ${anchors.length ? anchors.map((a) => h`<p>#${a.index} · root <code>${a.root}</code> · ${a.count} txs · ${ipfsLink(a.batch_cid)}</p>`) : h`<p>None.</p>`}`);
}
