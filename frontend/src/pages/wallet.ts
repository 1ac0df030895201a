// Wallet: connect, switch network, sign in and out, and sign and submit a business transaction
// (public, or private: sealed for the subsystem's participants).

import { type Hex, isAddress } from "viem";
import { API, getJson, health, postJson, subsystemApi, submitTransaction, type TypedDataDoc } from "../api";
import { h } from "../html";
import { currentRoute, render } from "../page";
import { currentSession, postUserJson } from "../userapi";
import { message, errorText } from "../view";
import {
  connectedAccount,
  ensureAccount,
  reconnect,
  requireChain,
  signIn,
  signOut,
  signTransaction,
  switchChain,
  WalletError,
} from "../wallet";

export async function walletPage(): Promise<void> {
  const id = currentRoute();
  const hl = await health();
  const doc = await getJson<TypedDataDoc>(`${API}/transactions/typed-data`);
  render(id, h`<h1>Wallet</h1>
  <div id="wallet-status" aria-live="polite">${connectedAccount() ? message("ok", `Connected as ${connectedAccount()}.`) : ""}</div>
  <p><button id="connect" type="button">Connect wallet</button>
     <button id="switch" type="button" class="secondary">Switch network</button>
     <button id="signin" type="button" class="secondary">Sign in (SIWE)</button>
     <button id="signout" type="button" class="secondary">Sign out</button></p>
  <h2>Submit a business transaction</h2>
  <form class="form" id="submit-form">
    <label>Subsystem<input name="subsystem" value="main" required /></label>
    <label>Kind<input name="kind" value="invoice" required /></label>
    <label>Parties (comma-separated addresses)<input name="parties" placeholder="0x…" /></label>
    <label>Amount<input name="amount" value="100" inputmode="decimal" required /></label>
    <label>Currency<input name="currency" value="EUR" required /></label>
    <label>Memo<input name="memo" value="" /></label>
    <label class="check"><input type="checkbox" name="private" /> Private: encrypted for the subsystem's participants</label>
    <label>Private content (amount, parties, terms…; only participants can read it)<textarea name="content" rows="3"></textarea></label>
    <button type="submit">Sign and submit</button>
  </form>
  <div id="submit-status" aria-live="polite"></div>
  <p class="muted">Signed with EIP-712 for chain ${doc.domain.chainId}, registry <code>${doc.domain.verifyingContract}</code>.
  A private transaction's content is sent over your signed session to the subsystem's back-end host, which encrypts it under the subsystem's key before storing it: that host sees the plaintext; the chain, IPFS and everyone else see only the ciphertext's CID and the payload hash.</p>`);
  const status = document.getElementById("wallet-status")!;
  const say = (el: HTMLElement, kind: "ok" | "bad" | "warn" | "", text: string) => (el.innerHTML = message(kind, text).html);
  void currentSession()
    .then((me) => {
      if (me && id === currentRoute() && !status.textContent)
        say(status, "ok", `Signed in as ${me.address} (your session in this browser is still valid).`);
    })
    .catch(() => undefined);
  const guard = (el: HTMLElement, fn: () => Promise<void>) => async () => {
    try {
      await fn();
    } catch (e) {
      say(el, "bad", errorText(e));
    }
  };
  const ensure = async () => {
    const account = await ensureAccount();
    await requireChain(hl.chain.chain_id);
    return account;
  };
  document.getElementById("connect")!.addEventListener(
    "click",
    guard(status, async () => {
      const account = await reconnect();
      await requireChain(hl.chain.chain_id);
      say(status, "ok", `Connected as ${account} on chain ${hl.chain.chain_id}.`);
    }),
  );
  document.getElementById("switch")!.addEventListener(
    "click",
    guard(status, async () => {
      await switchChain(hl.chain.chain_id);
      say(status, "ok", `Wallet switched to chain ${hl.chain.chain_id}.`);
    }),
  );
  document.getElementById("signin")!.addEventListener(
    "click",
    guard(status, async () => {
      const addr = await ensure();
      const session = await signIn(addr, hl.chain.chain_id);
      const subs = (session.subsystems as string[] | undefined) ?? [];
      const admin = (session.admin_of as string[] | undefined) ?? [];
      status.innerHTML = message(
        "ok",
        `Signed in as ${session.address}${subs.length ? `; your subsystems: ${subs.join(", ")}` : ""}${admin.length ? `; admin of: ${admin.join(", ")}` : ""}.`,
      ).html + (admin.length ? h`<p><a href="#/admin">Manage participants</a></p>`.html : "");
    }),
  );
  document.getElementById("signout")!.addEventListener(
    "click",
    guard(status, async () => {
      await signOut();
      say(status, "ok", "Signed out: this browser's session key is deleted.");
    }),
  );
  const form = document.getElementById("submit-form") as HTMLFormElement;
  const out = document.getElementById("submit-status")!;
  form.addEventListener(
    "submit",
    (ev) => {
      ev.preventDefault();
      void guard(out, async () => {
        const addr = await ensure();
        const f = new FormData(form);
        if (f.get("private")) {
          await submitPrivate(addr, doc, f, out);
          return;
        }
        const parties = String(f.get("parties") ?? "").split(/[\s,]+/).filter(Boolean);
        const bad = parties.find((p) => !isAddress(p));
        if (bad) throw new WalletError(`Not an address: ${bad}`);
        const transaction = {
          subsystem: String(f.get("subsystem")).trim(),
          kind: String(f.get("kind")).trim(),
          parties,
          amount: canonicalAmount(String(f.get("amount"))),
          currency: String(f.get("currency")).trim(),
          memo: String(f.get("memo") ?? ""),
          payload: "",
          nonce: Math.floor(Math.random() * Number.MAX_SAFE_INTEGER),
          timestamp: Math.floor(Date.now() / 1000),
        };
        say(out, "", "Waiting for your wallet's signature…");
        const signature = await signTransaction(addr, doc, transaction);
        const body = await submitTransaction({ transaction, signer: addr, signature });
        out.innerHTML = h`<div class="msg ok" role="status" data-testid="submitted">Submitted (${body.status}): <a href="#/tx/${body.id}"><code>${body.id}</code></a></div>`.html;
      })();
    },
  );
}

/** Return `text` as the canonical decimal the node accepts ("250.00" → "250", "0100" → "100"),
 * or throw a WalletError before anything is signed. */
export function canonicalAmount(text: string): string {
  const m = /^(\d+)(?:\.(\d+))?$/.exec(text.trim());
  if (!m) throw new WalletError(`The amount must be a non-negative decimal number like 12.5, not "${text.trim()}".`);
  const whole = m[1].replace(/^0+(?=\d)/, "");
  const fraction = (m[2] ?? "").replace(/0+$/, "");
  return fraction ? `${whole}.${fraction}` : whole;
}

/** Seal `f`'s private content for its subsystem (over the signed session, at the subsystem's
 * back-end host), sign the PrivateBusinessTransaction and submit it. */
async function submitPrivate(addr: `0x${string}`, doc: TypedDataDoc, f: FormData, out: HTMLElement): Promise<void> {
  const subsystem = String(f.get("subsystem")).trim();
  const content = String(f.get("content") ?? "");
  if (!content.trim()) throw new WalletError("Write the private content first: it is what gets encrypted.");
  if (!doc.private) throw new WalletError("This node does not offer private transactions.");
  const session = await currentSession();
  if (!session) throw new WalletError("Sign in first (Sign in button above): only a signed-in participant can seal private content.");
  if (!session.subsystems.includes(subsystem))
    throw new WalletError(`You are not a participant of ${subsystem}: ask to join it on its page first.`);
  out.innerHTML = message("", "Encrypting the content for the subsystem's participants…").html;
  const sealed = await postUserJson<{ cid: string; payload_hash: Hex }>(subsystemApi(subsystem, "/data/payloads"), { content });
  const transaction = {
    subsystem,
    kind: String(f.get("kind")).trim(),
    parties: [] as string[],
    amount: "",
    currency: "",
    memo: "",
    payload: sealed.cid,
    private: true,
    payload_hash: sealed.payload_hash,
    nonce: Math.floor(Math.random() * Number.MAX_SAFE_INTEGER),
    timestamp: Math.floor(Date.now() / 1000),
  };
  const message_ = {
    subsystem,
    kind: transaction.kind,
    payload: sealed.cid,
    payloadHash: sealed.payload_hash,
    nonce: transaction.nonce,
    timestamp: transaction.timestamp,
  };
  out.innerHTML = message("", "Waiting for your wallet's signature…").html;
  const signature = await signTransaction(addr, { ...doc, ...doc.private }, message_);
  const body = await postJson<{ id: string; status: string }>(`${API}/transactions`, { transaction, signer: addr, signature });
  out.innerHTML = h`<div class="msg ok" role="status" data-testid="submitted">Submitted privately (${body.status}): <a href="#/tx/${body.id}"><code>${body.id}</code></a></div>`.html;
}
