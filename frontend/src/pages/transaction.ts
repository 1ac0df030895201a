// One transaction: its fields, its private content for participants, and Verify (signature,
// Merkle inclusion, on-chain root, all checked in the browser by verify.ts).

import { type Hex, concat, hexToBytes, keccak256, stringToBytes } from "viem";
import { API, ApiError, getJson, health, nodeUrl, type Proof, subsystemApi, type Tx, type TypedDataDoc } from "../api";
import { chainClient } from "../chain";
import { h, type Raw } from "../html";
import { currentRoute, render } from "../page";
import { chainTrustNote } from "../truth";
import { currentSession, getUserJson } from "../userapi";
import { checkMerkle, checkOnChain, checkSignature, type CheckResult } from "../verify";
import { errorText, ipfsLink, message } from "../view";

function checkLine(name: string, r: CheckResult | null, id: string): Raw {
  if (!r) return h`<li data-check="${id}">… ${name}</li>`;
  return h`<li data-check="${id}" data-ok="${r.ok}" class="${r.ok ? "ok" : "bad"}">${r.ok ? "✔" : "✘"} ${name}: ${r.detail}</li>`;
}

async function runVerify(tx: Tx, out: HTMLElement): Promise<void> {
  const results: Record<string, CheckResult | null> = { sig: null, merkle: null, chain: null };
  const show = () => {
    out.innerHTML = h`<ul class="checks">${checkLine("Signature (EIP-712)", results.sig, "signature")}${checkLine(
      "Merkle inclusion (RFC 6962, keccak256)",
      results.merkle,
      "merkle",
    )}${checkLine("On-chain root (registry getAnchor)", results.chain, "onchain")}</ul>`.html;
  };
  show();
  const fail = (e: unknown): CheckResult => ({ ok: false, detail: errorText(e) });
  const doc = await getJson<TypedDataDoc>(`${API}/transactions/typed-data`);
  results.sig = await checkSignature(tx, doc).catch(fail);
  show();
  let proof: Proof;
  try {
    proof = await getJson<Proof>(`${API}/transactions/${tx.id}/proof`);
  } catch (e) {
    const text = e instanceof ApiError && e.status === 409 ? "not anchored yet; try again after the next batch" : errorText(e);
    results.merkle = results.chain = { ok: false, detail: text };
    return show();
  }
  let computed: Hex | undefined;
  try {
    const m = checkMerkle(tx, proof, doc);
    computed = m.computed;
    results.merkle = m;
  } catch (e) {
    results.merkle = fail(e);
  }
  show();
  results.chain = await checkOnChain(chainClient(proof.chain_id), proof, computed).catch(fail);
  show();
  out.insertAdjacentHTML(
    "beforeend",
    (Object.values(results).every((r) => r?.ok)
      ? message("ok", "All three checks passed: this transaction is signed, included and anchored.")
      : message("bad", "Verification failed: see the checks above.")
    ).html + chainTrustNote((await health()).chain.kind, proof.chain_id, nodeUrl("/rpc")).html,
  );
}

export async function transaction(txId: string): Promise<void> {
  const id = currentRoute();
  const tx = await getJson<Tx>(`${API}/transactions/${encodeURIComponent(txId)}`);
  const a = tx.anchor;
  const business = tx.private
    ? h`<dt>Type</dt><dd data-testid="tx-type"><span class="badge">private</span> PrivateBusinessTransaction (leaf version 2)</dd>
    <dt>Encrypted payload</dt><dd>${tx.payload ? ipfsLink(tx.payload) : "—"} <span class="muted">CID of the ciphertext: amount, currency, parties and memo are inside</span></dd>
    <dt>Payload hash</dt><dd><code data-testid="payload-hash">${tx.payload_hash}</code> <span class="muted">keccak256(salt ‖ plaintext): a participant proves the content by revealing the salt</span></dd>`
    : h`<dt>Type</dt><dd data-testid="tx-type">BusinessTransaction (leaf version 1)</dd>
    <dt>Amount</dt><dd>${tx.amount} ${tx.currency}</dd>
    <dt>Parties</dt><dd>${tx.parties.length ? tx.parties.map((p) => h`<a href="#/txs?party=${p}"><code>${p}</code></a> `) : "—"}</dd>
    <dt>Memo</dt><dd>${tx.memo || "—"}</dd>
    <dt>Payload</dt><dd>${tx.payload || "—"}</dd>`;
  render(id, h`<h1>Transaction</h1>
  <dl>
    <dt>Id</dt><dd><code data-testid="tx-id">${tx.id}</code></dd>
    <dt>Status</dt><dd class="${tx.status}">${tx.status}</dd>
    <dt>Subsystem</dt><dd><a href="#/subsystem/${tx.subsystem}">${tx.subsystem}</a> · <a href="#/txs?subsystem=${tx.subsystem}">its transactions</a></dd>
    <dt>Kind</dt><dd>${tx.kind}</dd>
    ${business}
    <dt>Nonce</dt><dd>${tx.nonce}</dd>
    <dt>Timestamp</dt><dd>${new Date(Number(tx.timestamp) * 1000).toISOString()} (${tx.timestamp})</dd>
    <dt>Signer</dt><dd><a href="#/txs?signer=${tx.signer}"><code>${tx.signer}</code></a></dd>
    <dt>Signature</dt><dd><code>${tx.signature}</code></dd>
    <dt>CID</dt><dd>${ipfsLink(tx.cid)}</dd>
    <dt>Leaf</dt><dd>${tx.leaf_index ?? "—"} · <code>${tx.leaf_hash}</code></dd>
    <dt>Batch</dt><dd>${a ? h`anchor #${a.index} · ${a.count} txs · tree size ${a.tree_size} · ${ipfsLink(a.batch_cid)}` : "not anchored yet"}</dd>
    <dt>Anchor block</dt><dd>${a ? h`<a href="#/search/${a.block_number}">${a.block_number}</a>` : "—"}</dd>
    <dt>Chain tx</dt><dd>${a ? h`<code>${a.chain_tx_hash}</code>` : "—"}</dd>
  </dl>
  ${tx.private ? h`<div id="private-out" aria-live="polite"></div>` : ""}
  <p><button id="verify" type="button">Verify</button> <span class="muted">checks the signature, the Merkle path and the on-chain root in your browser</span></p>
  <div id="verify-out" aria-live="polite"></div>`);
  if (tx.private && tx.payload) void showPrivateContent(tx, document.getElementById("private-out")!);
  const btn = document.getElementById("verify") as HTMLButtonElement;
  btn.addEventListener("click", async () => {
    btn.disabled = true;
    try {
      await runVerify(tx, document.getElementById("verify-out")!);
    } finally {
      btn.disabled = false;
    }
  });
}

/** For a participant, open a private transaction's payload (over the signed session) and check
 * it against the signed payload hash; for anyone else say that only participants can read it. */
async function showPrivateContent(tx: Tx, el: HTMLElement): Promise<void> {
  const session = await currentSession().catch(() => null);
  if (!session || !session.subsystems.includes(tx.subsystem)) {
    el.innerHTML = h`<p class="muted" data-testid="private-note">The content is encrypted: only participants of ${tx.subsystem} can read it (sign in as one).</p>`.html;
    return;
  }
  try {
    const opened = await getUserJson<{ content: string; salt: Hex; payload_hash: Hex }>(
      subsystemApi(tx.subsystem, `/data/payloads/${encodeURIComponent(tx.payload)}`),
    );
    const computed = keccak256(concat([hexToBytes(opened.salt), stringToBytes(opened.content)]));
    const ok = computed.toLowerCase() === String(tx.payload_hash).toLowerCase();
    el.innerHTML = h`<h2>Private content</h2><pre data-testid="private-content">${opened.content}</pre>
    ${message(ok ? "ok" : "bad", ok ? "The content matches the signed payload hash (keccak256(salt ‖ content), checked in your browser)." : `The content does not match the signed payload hash (computed ${computed}).`)}`.html;
  } catch (e) {
    el.innerHTML = message("bad", `Could not open the private content: ${errorText(e)}`).html;
  }
}
