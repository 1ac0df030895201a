// A subsystem: its participants, admins, own front-end and recent transactions, and the
// "Ask to join" form for a signed-in non-participant.

import { API, ApiError, getJson, health, listTxs, nodeUrl, type SubsystemRecord, subsystemApi } from "../api";
import { chainClient, registryAdmins } from "../chain";
import { h, type Raw } from "../html";
import { currentRoute, render } from "../page";
import { currentSession } from "../userapi";
import { ensureAccount, signAndRelay } from "../wallet";
import { actionErrorText } from "../refusals";
import { ipfsLink, message, txRows } from "../view";

async function subsystemRecord(id: number, name: string): Promise<SubsystemRecord | null> {
  try {
    return await getJson<SubsystemRecord>(subsystemApi(name));
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 404)) throw e;
    render(id, message("warn", `There is no subsystem "${name}" in the registry.`));
    return null;
  }
}

export async function subsystemPage(name: string, landing = false): Promise<void> {
  const id = currentRoute();
  const record = await subsystemRecord(id, name);
  if (!record) return;
  const hl = await health();
  const [session, recent, admins] = await Promise.all([
    currentSession(),
    listTxs({ subsystem: name }, null, 10),
    hl.registry ? registryAdmins(chainClient(hl.chain.chain_id), hl.registry, name).catch(() => null) : null,
  ]);
  const isAdmin = session?.admin_of.includes(name) ?? false;
  const isMember = session?.subsystems.includes(name) ?? false;
  const cid = record.frontend_cid;
  const note = landing
    ? message(
        "",
        cid
          ? `This is the system-wide app: the front-end of "${name}" (${cid}) is not available on this node yet.`
          : `This is the system-wide app: "${name}" has not published a front-end of its own.`,
      )
    : "";
  render(id, h`<h1>Subsystem ${name}</h1>${note}
  <dl>
    <dt>Participants</dt><dd data-testid="participant-count">${record.participants.length}</dd>
    <dt>Admins</dt><dd data-testid="admins">${admins ? admins.map((a) => h`<a href="#/search/${a}"><code>${a}</code></a> `) : "n/a"}</dd>
    <dt>Own front-end</dt><dd>${cid ? h`<a href="${nodeUrl(`/s/${encodeURIComponent(name)}/`)}">/s/${name}/</a> · ${ipfsLink(cid)}` : h`none published <span class="muted">(its admins publish one on the <a href="#/admin/${encodeURIComponent(name)}">admin page</a>, or with <code>collegium frontend publish --subsystem ${name}</code>)</span>`}</dd>
    <dt>You</dt><dd>${session ? (isAdmin ? "admin" : isMember ? "participant" : "not a participant") : h`not signed in (<a href="#/admin">sign in</a>)`}</dd>
  </dl>
  ${isAdmin ? h`<p><a href="#/admin/${encodeURIComponent(name)}">Add or remove participants</a></p>` : ""}
  ${session && !isMember && !isAdmin ? joinForm(name) : ""}
  <h2>Participants</h2>
  <ul>${record.participants.map((p) => h`<li><a href="#/search/${p}"><code>${p}</code></a></li>`)}</ul>
  <h2>Recent transactions</h2>
  <div class="scroll"><table><thead><tr><th>#</th><th>Id</th><th>Subsystem</th><th>Kind</th><th>Amount</th><th>Signer</th><th>Status</th><th>Block</th></tr></thead>
  <tbody>${txRows(recent.items)}</tbody></table></div>
  <p><a href="#/txs?subsystem=${encodeURIComponent(name)}">All transactions of ${name}</a></p>`);
  if (session && !isMember && !isAdmin) await wireJoin(name, session.address);
}

function joinForm(name: string): Raw {
  return h`<section class="join" aria-labelledby="join-heading"><h2 id="join-heading">Join ${name}</h2>
  <p id="join-state" data-testid="join-state" aria-live="polite"></p>
  <p id="join-pending" hidden><button type="button" class="secondary" id="join-cancel">Cancel my request</button></p>
  <form class="form" id="join-form" novalidate>
    <label>Message to the admins (optional)<input name="message" maxlength="280" autocomplete="off" /></label>
    <button type="submit">Ask to join</button>
  </form>
  <p class="muted">Your wallet signs the request; this node sends it and pays the gas, so you need no ether.</p></section>`;
}

/** Show the signed-in user's join request state for `name` and wire the "Ask to join" form
 * and, while a request is pending, its "Cancel my request" button. */
async function wireJoin(name: string, me: string): Promise<void> {
  const state = document.getElementById("join-state");
  const form = document.getElementById("join-form") as HTMLFormElement | null;
  const pending = document.getElementById("join-pending");
  const cancel = document.getElementById("join-cancel") as HTMLButtonElement | null;
  if (!state || !form || !pending || !cancel) return;
  const ask = form.querySelector("button")!;
  const show = async (done = "") => {
    const st = await getJson<{ pending: boolean; message: string; participant: boolean }>(
      `${API}/subsystems/${encodeURIComponent(name)}/join-requests/${me}`,
    );
    state.textContent = `${done}${st.participant
      ? `You are a participant of ${name}.`
      : st.pending
        ? `Your request to join ${name} is pending: an admin approves or denies it.${st.message ? ` Your message: “${st.message}”.` : ""}`
        : `You have no request to join ${name}: you are not a participant.`}`;
    form.hidden = st.pending || st.participant;
    pending.hidden = !st.pending || st.participant;
    ask.disabled = false;
    cancel.disabled = false;
  };
  await show();
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = String(new FormData(form).get("message") ?? "").trim();
    if (new TextEncoder().encode(text).length > 280) {
      state.innerHTML = message("bad", "The message is at most 280 bytes.").html;
      return;
    }
    ask.disabled = true;
    try {
      const account = await ensureAccount();
      state.innerHTML = message("", "Sign the request in your wallet…").html;
      await signAndRelay(account, { action: "requestJoin", subsystem: name, data: text });
      form.reset();
      await show();
    } catch (e) {
      state.innerHTML = message("bad", actionErrorText(e, { subsystem: name })).html;
      ask.disabled = false;
    }
  });
  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    try {
      const account = await ensureAccount();
      state.innerHTML = message("", "Sign the cancellation in your wallet; this node relays it…").html;
      await signAndRelay(account, { action: "cancelJoin", subsystem: name });
      await show("Request cancelled. ");
      ask.focus();
    } catch (e) {
      state.innerHTML = message("bad", actionErrorText(e, { subsystem: name })).html;
      cancel.disabled = false;
    }
  });
}
