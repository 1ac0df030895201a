// The explorer's entry point: the header's search box, then the hash router (router.ts), which
// shows one page of pages/ at a time.

import "./style.css";
import { startRouter } from "./router";

document.getElementById("search")!.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const q = (document.getElementById("q") as HTMLInputElement).value.trim();
  if (q) location.hash = `#/search/${encodeURIComponent(q)}`;
});
startRouter();
