// The page on screen: which route is current, and rendering into <main> only while it still is.
// The router (router.ts) starts each route; the pages (pages/) render and ask for a refresh.

import type { Raw } from "./html";

const main = document.getElementById("main") as HTMLElement;
let routeId = 0;
let again: () => void = () => undefined;

/** Thrown to stop a page whose route is no longer the current one. */
export class StaleRoute extends Error {}

/** Return the id of the current route (a page keeps it to know whether it is still shown). */
export function currentRoute(): number {
  return routeId;
}

/** Start a new route and return its id: every page still rendering for an older one goes stale. */
export function nextRoute(): number {
  return ++routeId;
}

/** Show `content`; throw StaleRoute if the user navigated away since route `id` started. */
export function render(id: number, content: Raw): void {
  if (id !== routeId) throw new StaleRoute();
  main.innerHTML = content.html;
}

/** Set what refresh() does (the router: show the current hash again). */
export function onRefresh(fn: () => void): void {
  again = fn;
}

/** Show the current route again (after a change the page made). */
export function refresh(): void {
  again();
}
