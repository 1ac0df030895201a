// The hash router (#/page/arg?query): the same files work at /, /ipfs/<cid>/ and any gateway.

import { h } from "./html";
import { currentRoute, nextRoute, onRefresh, render, StaleRoute } from "./page";
import { adminPage } from "./pages/admin";
import { assignment } from "./pages/assignment";
import { nodesPage } from "./pages/nodes";
import { overview } from "./pages/overview";
import { search } from "./pages/search";
import { subsystemPage } from "./pages/subsystem";
import { transaction } from "./pages/transaction";
import { transactions } from "./pages/transactions";
import { walletPage } from "./pages/wallet";
import { errorText, message } from "./view";

/** `/s/<subsystem>/`: a subsystem's front-end path (the system UI is served there as fallback). */
const SUBSYSTEM_PATH = /\/s\/([^/]+)\/(?:index\.html)?$/;

/** Show the page the location's hash names (a subsystem's landing page at /s/<name>/). */
export async function route(): Promise<void> {
  const hash = location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = hash.split("?", 2);
  const [page, ...rest] = path.split("/");
  const arg = decodeURIComponent(rest.join("/"));
  for (const a of document.querySelectorAll("nav a"))
    a.toggleAttribute("aria-current", a.getAttribute("href") === `#/${page}`);
  const mine = nextRoute();
  render(mine, h`<p>Loading…</p>`);
  try {
    const landing = page === "" ? SUBSYSTEM_PATH.exec(location.pathname) : null;
    if (landing) await subsystemPage(decodeURIComponent(landing[1]), true);
    else if (page === "" || page === "overview") await overview();
    else if (page === "txs") await transactions(query);
    else if (page === "tx") await transaction(arg);
    else if (page === "assignment") await assignment(query);
    else if (page === "nodes") await nodesPage();
    else if (page === "wallet") await walletPage();
    else if (page === "admin") await adminPage(arg);
    else if (page === "subsystem") await subsystemPage(arg);
    else if (page === "search") await search(arg);
    else render(mine, message("warn", `No page ${path}.`));
  } catch (e) {
    if (e instanceof StaleRoute || mine !== currentRoute()) return;
    render(mine, message("bad", errorText(e)));
  }
}

/** Route on every hash change and now; a page's refresh() routes again. */
export function startRouter(): void {
  onRefresh(() => void route());
  window.addEventListener("hashchange", () => void route());
  void route();
}
