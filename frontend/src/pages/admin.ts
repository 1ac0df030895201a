// Subsystem admin: sign in, create a subsystem, decide join requests, add and remove participants
// and admins (a system admin: system admins too).

import { type Hex, isAddress } from "viem";
import { API, getJson, health, type Me, nodeUrl, postJson, readJson, type RelayResult, type SubsystemRecord, subsystemApi, type UnsignedTx } from "../api";
import { chainClient } from "../chain";
import { h, type Raw } from "../html";
import { currentRoute, refresh, render } from "../page";
import { signedFetch } from "../session";
import { tar } from "../tar";
import { currentSession, postUserJson } from "../userapi";
import { actionErrorText } from "../refusals";
import { errorText, message } from "../view";
import { ensureAccount, reconnect, requireChain, sendWithWallet, signAndRelay, signForRelay, signIn, WalletError } from "../wallet";

/** How long the app waits for a registry transaction sent by the wallet to be mined. */
export const RECEIPT_TIMEOUT_MS = 60_000;
export const RECEIPT_POLL_MS = 250;
/** The node refuses a larger front-end archive (413: node/frontend/archive.py). */
export const MAX_ARCHIVE_BYTES = 16 * 1024 * 1024;

/** `POST /api/v1/subsystems/{name}/frontend`: the build stored (pinned) at the node. */
interface UploadedFrontend {
  cid: string;
  files: number;
  bytes: number;
}

interface JoinRequest {
  address: string;
  message: string;
}

function joinSection(name: string, requests: JoinRequest[], index: number): Raw {
  const heading = `joins-${index}`;
  return h`<section class="joins" data-subsystem="${name}" aria-labelledby="${heading}">
  <h2 id="${heading}">Join requests for ${name}</h2>
  <div class="result" aria-live="polite"></div>
  ${requests.length ? h`<div class="scroll"><table data-testid="join-requests"><thead><tr><th>Address</th><th>Message</th><th><span class="sr">Action</span></th></tr></thead><tbody>
  ${requests.map((r) => h`<tr><td><code>${r.address}</code></td><td>${r.message}</td><td><button type="button" data-approve="${r.address}" aria-label="Approve ${r.address}">Approve</button> <button type="button" class="secondary" data-deny="${r.address}" aria-label="Deny ${r.address}">Deny</button></td></tr>`)}
  </tbody></table></div>` : h`<p>No pending request.</p>`}
  </section>`;
}

/** A result shown once after the admin page re-renders (which subsystem, what happened). */
let adminFlash: { subsystem: string; kind: "ok" | "bad"; text: string } | null = null;

/** Return (hash, block) of the registry transaction adding/removing `address` as a participant of
 * `name`: the node prepares it for the signed-in admin, the wallet sends it (or signs it and the
 * node relays it when the wallet cannot send). */
async function changeParticipant(
  session: Me,
  chainId: number,
  name: string,
  address: string,
  action: "add" | "remove",
  progress: (text: string) => void,
): Promise<{ hash: Hex; block: bigint }> {
  if (!isAddress(address)) throw new WalletError(`Not an address: ${address}`);
  const account = await ensureAccount();
  await requireChain(chainId);
  if (account.toLowerCase() !== session.address.toLowerCase())
    throw new WalletError(
      `Your wallet's account ${account} is not the signed-in ${session.address}: switch accounts in your wallet or sign in again.`,
    );
  const client = chainClient(chainId);
  if ((await client.getBalance({ address: account })) === 0n) {
    // no ether: sign the change as an EIP-712 action and this node relays it, paying the gas
    progress("Sign the change in your wallet; this node sends it and pays the gas…");
    const done = await signAndRelay(account, {
      action: action === "add" ? "addParticipant" : "removeParticipant",
      subsystem: name,
      account: address,
    });
    return { hash: done.tx_hash, block: BigInt(done.block_number) };
  }
  progress("Preparing the registry transaction…");
  const unsigned = await postUserJson<UnsignedTx>(subsystemApi(name, "/participants"), { address, action });
  if (unsigned.chain_id !== chainId)
    throw new WalletError(`The node prepared a transaction for chain ${unsigned.chain_id}, not ${chainId}.`);
  progress("Confirm the transaction in your wallet…");
  const sent = await sendWithWallet(unsigned);
  if (sent) {
    progress(`Sent ${sent}; waiting for it to be mined…`);
    const receipt = await client.waitForTransactionReceipt({
      hash: sent,
      pollingInterval: RECEIPT_POLL_MS,
      timeout: RECEIPT_TIMEOUT_MS,
    });
    if (receipt.status !== "success")
      throw new WalletError(`The registry rejected transaction ${sent} (it reverted); nothing changed.`);
    return { hash: sent, block: receipt.blockNumber };
  }
  progress("Your wallet cannot send transactions: sign it and this node relays it…");
  const [nonce, gas, gasPrice] = await Promise.all([
    client.getTransactionCount({ address: unsigned.from }),
    client.estimateGas({ account: unsigned.from, to: unsigned.to, data: unsigned.data }),
    client.getGasPrice(),
  ]);
  const raw = await signForRelay(unsigned, { nonce, gas, gasPrice });
  const relayed = await postJson<RelayResult>(subsystemApi(name, "/participants/relay"), { raw_transaction: raw });
  return { hash: relayed.tx_hash, block: BigInt(relayed.block_number) };
}

function manageSection(record: SubsystemRecord, index: number, me: string): Raw {
  const heading = `manage-${index}`;
  return h`<section class="manage" data-subsystem="${record.name}" aria-labelledby="${heading}">
  <h2 id="${heading}">Participants of ${record.name}</h2>
  <form class="form add-participant" novalidate>
    <label>New participant of ${record.name}<input name="address" placeholder="0x…" autocomplete="off" spellcheck="false" /></label>
    <button type="submit">Add participant</button>
  </form>
  <div class="result" aria-live="polite"></div>
  <div class="scroll"><table><caption class="sr">Participants of ${record.name}</caption>
  <thead><tr><th>Address</th><th><span class="sr">Action</span></th></tr></thead><tbody>
  ${record.participants.length ? record.participants.map((p) => h`<tr><td><code>${p}</code>${p.toLowerCase() === me.toLowerCase() ? " (you)" : ""}</td><td><button type="button" class="secondary" data-remove="${p}" aria-label="Remove ${p} from ${record.name}">Remove</button></td></tr>`) : h`<tr><td colspan="2">No participants.</td></tr>`}
  </tbody></table></div>
  </section>`;
}

/** Whose admins a section manages: a subsystem's, or the system's (`name` null). */
interface AdminScope {
  name: string | null;
  admins: string[];
}

function scopeWords(name: string | null): { of: string; key: string; label: string } {
  return name === null
    ? { of: "system admins", key: "admins:system", label: "system admin" }
    : { of: `admins of ${name}`, key: `admins:${name}`, label: `admin of ${name}` };
}

function adminsSection({ name, admins }: AdminScope, index: number | "system", me: string): Raw {
  const heading = `admins-${index}`;
  const w = scopeWords(name);
  const title = name === null ? "System admins" : `Admins of ${name}`;
  return h`<section class="admins" data-scope="${name === null ? "system" : "subsystem"}" data-subsystem="${name ?? ""}" aria-labelledby="${heading}">
  <h2 id="${heading}">${title}</h2>
  <form class="form add-admin" novalidate>
    <label>New ${w.label}<input name="address" placeholder="0x…" autocomplete="off" spellcheck="false" /></label>
    <button type="submit">Add ${name === null ? "system admin" : "admin"}</button>
  </form>
  <div class="result" aria-live="polite"></div>
  <div class="scroll"><table data-testid="${w.key}"><caption class="sr">${title}</caption>
  <thead><tr><th>Address</th><th><span class="sr">Action</span></th></tr></thead><tbody>
  ${admins.map((a) => h`<tr><td><code>${a}</code>${a.toLowerCase() === me.toLowerCase() ? " (you)" : ""}</td><td><button type="button" class="secondary" data-remove-admin="${a}" aria-label="Remove ${a} as ${w.label}">Remove</button></td></tr>`)}
  </tbody></table></div>
  <p class="muted">${name === null ? "System admins manage the registry itself" : `Admins of ${name} decide its join requests, add and remove participants and admins, and publish its front-end`}. There is always at least one. Your wallet signs; this node sends it and pays the gas.</p>
  </section>`;
}

/** Wire the add form and the (confirmed) remove buttons of an admins section. */
function wireAdmins(section: HTMLElement, scope: AdminScope, me: string, id: number): void {
  const { name } = scope;
  const w = scopeWords(name);
  const out = section.querySelector<HTMLElement>(".result")!;
  if (adminFlash?.subsystem === w.key) {
    out.innerHTML = message(adminFlash.kind, adminFlash.text).html;
    adminFlash = null;
  }
  const run = async (address: string, add: boolean) => {
    const buttons = section.querySelectorAll("button");
    buttons.forEach((b) => (b.disabled = true));
    try {
      const account = await ensureAccount();
      out.innerHTML = message("", "Sign the change in your wallet; this node sends it and pays the gas…").html;
      const action = name === null ? (add ? "addSystemAdmin" : "removeSystemAdmin") : add ? "addSubsystemAdmin" : "removeSubsystemAdmin";
      const done = await signAndRelay(account, name === null ? { action, account: address } : { action, subsystem: name, account: address });
      adminFlash = {
        subsystem: w.key,
        kind: "ok",
        text: `${add ? "Added" : "Removed"} ${address} as ${w.label} in block ${done.block_number} (transaction ${done.tx_hash}).`,
      };
      if (id === currentRoute()) refresh();
    } catch (e) {
      out.innerHTML = message("bad", actionErrorText(e, { subsystem: name ?? undefined, account: address })).html;
      buttons.forEach((b) => (b.disabled = false));
    }
  };
  const form = section.querySelector<HTMLFormElement>("form")!;
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const address = String(new FormData(form).get("address") ?? "").trim();
    if (!isAddress(address)) {
      out.innerHTML = message("bad", address ? `Not an address: ${address} (an address is 0x and 40 hex digits).` : "Type the address of the new admin first.").html;
      return;
    }
    if (scope.admins.some((a) => a.toLowerCase() === address.toLowerCase())) {
      out.innerHTML = message("bad", `${address} is already ${name === null ? "a system admin" : `an admin of ${name}`}.`).html;
      return;
    }
    void run(address, true);
  });
  for (const button of section.querySelectorAll<HTMLButtonElement>("button[data-remove-admin]"))
    button.addEventListener("click", () => {
      // ask first, in the row: removing an admin is on-chain, removing yourself ends your rights
      const address = button.dataset.removeAdmin!;
      const self = address.toLowerCase() === me.toLowerCase();
      const ask = document.createElement("span");
      ask.className = "confirm";
      ask.innerHTML = h`<span role="status">${self ? `Remove yourself as ${w.label}? You can no longer manage ${name ?? "the registry"}.` : `Remove ${address} as ${w.label}?`}</span>
        <button type="button" data-confirm-remove-admin aria-label="Confirm removing ${address} as ${w.label}">Confirm removal</button>
        <button type="button" class="secondary" data-keep-admin aria-label="Keep ${address} as ${w.label}">Cancel</button>`.html;
      button.hidden = true;
      button.after(ask);
      ask.querySelector<HTMLButtonElement>("[data-keep-admin]")!.addEventListener("click", () => {
        ask.remove();
        button.hidden = false;
        button.focus();
      });
      const confirmButton = ask.querySelector<HTMLButtonElement>("[data-confirm-remove-admin]")!;
      confirmButton.addEventListener("click", () => void run(address, false));
      confirmButton.focus();
    });
}

function publishSection(record: SubsystemRecord, index: number): Raw {
  const heading = `publish-${index}`;
  const served = nodeUrl(`/s/${encodeURIComponent(record.name)}/`);
  return h`<section class="publish" data-subsystem="${record.name}" aria-labelledby="${heading}">
  <h2 id="${heading}">Front-end of ${record.name}</h2>
  <p>${record.frontend_cid ? h`Published: <a href="${served}">/s/${record.name}/</a> · <code>${record.frontend_cid}</code>` : h`None published yet: <a href="${served}">/s/${record.name}/</a> shows the system app.`}</p>
  <form class="form publish-form" novalidate>
    <label>Build folder of ${record.name}'s front-end (with index.html)<input type="file" name="folder" webkitdirectory multiple /></label>
    <label>or a build archive (.tar, .tar.gz or .zip)<input type="file" name="archive" accept=".tar,.tgz,.tar.gz,.zip,application/x-tar,application/gzip,application/zip" /></label>
    <button type="submit">Upload and publish</button>
  </form>
  <div class="result" aria-live="polite"></div>
  <p class="muted">The files go to this node's content store; your wallet then signs the new front-end and this node sends it, paying the gas. At most 16 MiB.</p>
  </section>`;
}

/** Return the build picked in `form` as one archive: the archive file as is, or the folder's
 * files packed into a tar. Throws WalletError when nothing usable was picked. */
async function pickedBuild(form: HTMLFormElement): Promise<Uint8Array> {
  const archive = (form.elements.namedItem("archive") as HTMLInputElement).files?.[0];
  const folder = [...((form.elements.namedItem("folder") as HTMLInputElement).files ?? [])];
  if (archive) {
    if (archive.size > MAX_ARCHIVE_BYTES) throw new WalletError(`${archive.name} is ${archive.size} bytes: the node takes at most ${MAX_ARCHIVE_BYTES}.`);
    return new Uint8Array(await archive.arrayBuffer());
  }
  if (!folder.length) throw new WalletError("Pick the build folder (the one holding index.html) or a build archive first.");
  const size = folder.reduce((a, f) => a + f.size, 0);
  if (size > MAX_ARCHIVE_BYTES) throw new WalletError(`The folder holds ${size} bytes: the node takes at most ${MAX_ARCHIVE_BYTES}.`);
  const entries = await Promise.all(
    folder.map(async (f) => ({ path: f.webkitRelativePath || f.name, data: new Uint8Array(await f.arrayBuffer()) })),
  );
  if (!entries.some((e) => /^([^/]+\/)?index\.html$/.test(e.path)))
    throw new WalletError("The folder has no index.html at its top: pick the built front-end (e.g. dist/).");
  return tar(entries);
}

export async function adminPage(only: string): Promise<void> {
  const id = currentRoute();
  const hl = await health();
  const session = await currentSession();
  if (!session) {
    render(id, h`<h1>Subsystem admin</h1>
    <p>Sign in with your wallet to see your subsystems and, if you are one of their admins, add or remove participants.</p>
    <p><button id="admin-signin" type="button">Connect and sign in</button></p>
    <div id="admin-status" aria-live="polite"></div>`);
    const status = document.getElementById("admin-status")!;
    document.getElementById("admin-signin")!.addEventListener("click", async () => {
      try {
        const account = await reconnect();
        await requireChain(hl.chain.chain_id);
        status.innerHTML = message("", "Waiting for your wallet's signature…").html;
        await signIn(account, hl.chain.chain_id);
        refresh();
      } catch (e) {
        status.innerHTML = message("bad", errorText(e)).html;
      }
    });
    return;
  }
  const who = h`<p>Signed in as <code data-testid="session-address">${session.address}</code>${session.system_admin ? " (system admin)" : ""}.</p>`;
  if (only && !session.admin_of.includes(only)) {
    return render(id, h`<h1>Subsystem admin</h1>${who}${message(
      "bad",
      `You are not an admin of "${only}": only its admins can add or remove its participants. Ask one of them (or a system admin) to make the change, or to make you an admin.`,
    )}<p><a href="#/subsystem/${encodeURIComponent(only)}">Back to ${only}</a></p>`);
  }
  const names = only ? [only] : session.admin_of;
  const records = await Promise.all(names.map((n) => getJson<SubsystemRecord>(subsystemApi(n))));
  const joins = await Promise.all(
    names.map((n) => getJson<{ requests: JoinRequest[] }>(`${API}/subsystems/${encodeURIComponent(n)}/join-requests`)),
  );
  const admins = await Promise.all(names.map((n) => getJson<{ admins: string[] }>(subsystemApi(n, "/admins"))));
  const system: AdminScope | null =
    session.system_admin && !only ? { name: null, admins: (await getJson<{ admins: string[] }>(`${API}/admins`)).admins } : null;
  const scopes: AdminScope[] = names.map((n, i) => ({ name: n, admins: admins[i].admins }));
  const mine = [...new Set([...session.subsystems, ...session.admin_of])];
  render(id, h`<h1>Subsystem admin</h1>${who}
  ${only ? "" : h`<h2>Your subsystems</h2>
  ${mine.length ? h`<ul data-testid="my-subsystems">${mine.map((n) => h`<li><a href="#/subsystem/${encodeURIComponent(n)}">${n}</a> — ${session.admin_of.includes(n) ? "admin" : "participant"}</li>`)}</ul>` : h`<p>You are not a participant of any subsystem.</p>`}`}
  ${session.admin_of.length ? "" : message("bad", "You are not an admin of any subsystem, so there is nothing to manage here: only a subsystem's admins can add or remove its participants.")}
  ${only ? "" : h`<section class="create" aria-labelledby="create-heading"><h2 id="create-heading">Create a subsystem</h2>
  <form class="form" id="create-form" novalidate>
    <label>Name of the new subsystem<input name="name" maxlength="64" autocomplete="off" spellcheck="false" /></label>
    <button type="submit">Create subsystem</button>
  </form>
  <div id="create-status" aria-live="polite"></div>
  <p class="muted">You become its admin and first participant. Your wallet signs; this node sends it and pays the gas.</p></section>`}
  ${system ? adminsSection(system, "system", session.address) : ""}
  ${records.map((r, i) => h`${joinSection(r.name, joins[i].requests, i)}${manageSection(r, i, session.address)}${adminsSection(scopes[i], i, session.address)}${publishSection(r, i)}`)}`);
  for (const section of document.querySelectorAll<HTMLElement>("section.admins")) {
    const scope = section.dataset.scope === "system" ? system! : scopes.find((sc) => sc.name === section.dataset.subsystem)!;
    wireAdmins(section, scope, session.address, id);
  }
  const createForm = document.getElementById("create-form") as HTMLFormElement | null;
  createForm?.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const status = document.getElementById("create-status")!;
    const name = String(new FormData(createForm).get("name") ?? "").trim();
    const bytes = new TextEncoder().encode(name).length;
    if (bytes < 1 || bytes > 64) {
      status.innerHTML = message("bad", "A subsystem name is 1 to 64 bytes.").html;
      return;
    }
    createForm.querySelector("button")!.disabled = true;
    try {
      const account = await ensureAccount();
      await requireChain(hl.chain.chain_id);
      status.innerHTML = message("", "Sign the creation in your wallet…").html;
      const done = await signAndRelay(account, { action: "createSubsystem", subsystem: name });
      adminFlash = { subsystem: name, kind: "ok", text: `Created ${name} in block ${done.block_number}; you are its admin.` };
      if (id === currentRoute()) location.hash = `#/admin/${encodeURIComponent(name)}`;
    } catch (e) {
      status.innerHTML = message("bad", errorText(e)).html;
      createForm.querySelector("button")!.disabled = false;
    }
  });
  for (const section of document.querySelectorAll<HTMLElement>("section.joins")) {
    const name = section.dataset.subsystem!;
    const out = section.querySelector<HTMLElement>(".result")!;
    const decide = (address: string, approve: boolean) => async () => {
      section.querySelectorAll("button").forEach((b) => (b.disabled = true));
      try {
        const account = await ensureAccount();
        out.innerHTML = message("", "Sign the decision in your wallet; this node relays it…").html;
        const done = await signAndRelay(account, { action: approve ? "addParticipant" : "denyJoin", subsystem: name, account: address });
        adminFlash = { subsystem: name, kind: "ok", text: `${approve ? "Approved" : "Denied"} ${address} for ${name} in block ${done.block_number} (transaction ${done.tx_hash}).` };
        if (id === currentRoute()) refresh();
      } catch (e) {
        out.innerHTML = message("bad", actionErrorText(e, { subsystem: name, account: address })).html;
        section.querySelectorAll("button").forEach((b) => (b.disabled = false));
      }
    };
    for (const b of section.querySelectorAll<HTMLButtonElement>("button[data-approve]"))
      b.addEventListener("click", () => void decide(b.dataset.approve!, true)());
    for (const b of section.querySelectorAll<HTMLButtonElement>("button[data-deny]"))
      b.addEventListener("click", () => void decide(b.dataset.deny!, false)());
  }
  for (const section of document.querySelectorAll<HTMLElement>("section.manage")) {
    const name = section.dataset.subsystem!;
    const out = section.querySelector<HTMLElement>(".result")!;
    if (adminFlash?.subsystem === name) {
      out.innerHTML = message(adminFlash.kind, adminFlash.text).html;
      adminFlash = null;
    }
    const run = (address: string, action: "add" | "remove") => async () => {
      const buttons = section.querySelectorAll("button");
      buttons.forEach((b) => (b.disabled = true));
      try {
        const done = await changeParticipant(session, hl.chain.chain_id, name, address.trim(), action,
          (text) => (out.innerHTML = message("", text).html));
        adminFlash = {
          subsystem: name,
          kind: "ok",
          text: `${action === "add" ? "Added" : "Removed"} ${address.trim()} ${action === "add" ? "to" : "from"} ${name} in block ${done.block} (transaction ${done.hash}).`,
        };
        if (id === currentRoute()) refresh();
      } catch (e) {
        out.innerHTML = message("bad", errorText(e)).html;
        buttons.forEach((b) => (b.disabled = false));
      }
    };
    const form = section.querySelector<HTMLFormElement>("form")!;
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const address = String(new FormData(form).get("address") ?? "").trim();
      const record = records.find((r) => r.name === name)!;
      if (isAddress(address) && record.participants.some((p) => p.toLowerCase() === address.toLowerCase())) {
        out.innerHTML = message("bad", `${address} is already a participant of ${name}.`).html;
        return;
      }
      void run(address, "add")();
    });
    for (const button of section.querySelectorAll<HTMLButtonElement>("button[data-remove]"))
      button.addEventListener("click", () => {
        // ask first, in the row: a removal is on-chain, and removing yourself locks you out
        const address = button.dataset.remove!;
        const self = address.toLowerCase() === session.address.toLowerCase();
        const ask = document.createElement("span");
        ask.className = "confirm";
        ask.innerHTML = h`<span role="status">${self ? `Remove yourself from ${name}? You lose access to its private data.` : `Remove ${address} from ${name}?`}</span>
          <button type="button" data-confirm-remove aria-label="Confirm removal of ${address} from ${name}">Confirm removal</button>
          <button type="button" class="secondary" data-cancel-remove aria-label="Keep ${address} in ${name}">Cancel</button>`.html;
        button.hidden = true;
        button.after(ask);
        ask.querySelector<HTMLButtonElement>("[data-cancel-remove]")!.addEventListener("click", () => {
          ask.remove();
          button.hidden = false;
          button.focus();
        });
        const confirmButton = ask.querySelector<HTMLButtonElement>("[data-confirm-remove]")!;
        confirmButton.addEventListener("click", () => void run(address, "remove")());
        confirmButton.focus();
      });
  }
  for (const section of document.querySelectorAll<HTMLElement>("section.publish")) {
    const name = section.dataset.subsystem!;
    const out = section.querySelector<HTMLElement>(".result")!;
    const form = section.querySelector<HTMLFormElement>("form")!;
    if (adminFlash?.subsystem === `publish:${name}`) {
      out.innerHTML = message(adminFlash.kind, adminFlash.text).html;
      adminFlash = null;
    }
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const button = form.querySelector("button")!;
      button.disabled = true;
      try {
        const body = await pickedBuild(form);
        const account = await ensureAccount();
        await requireChain(hl.chain.chain_id);
        out.innerHTML = message("", `Uploading ${body.length} bytes to this node…`).html;
        const res = await signedFetch(subsystemApi(name, "/frontend"), {
          method: "POST",
          headers: { "content-type": "application/octet-stream" },
          body,
        });
        const stored = await readJson<UploadedFrontend>(res);
        out.innerHTML = message("", `Stored ${stored.files} files as ${stored.cid}; sign the new front-end in your wallet, this node sends it and pays the gas…`).html;
        const done = await signAndRelay(account, { action: "setSubsystemFrontend", subsystem: name, data: stored.cid });
        adminFlash = {
          subsystem: `publish:${name}`,
          kind: "ok",
          text: `Published ${stored.cid} (${stored.files} files) as the front-end of ${name} in block ${done.block_number}: it is served at /s/${name}/.`,
        };
        if (id === currentRoute()) refresh();
      } catch (e) {
        out.innerHTML = message("bad", errorText(e)).html;
        button.disabled = false;
      }
    });
  }
}
