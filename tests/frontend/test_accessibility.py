"""Basic accessibility checks on every main page, in the real browser: every form control
has an accessible name, every button and link has a name, the keyboard reaches the skip link
first and can operate the navigation, and text contrast meets WCAG AA (4.5:1)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.node import InProcessNode

PAGES = ["overview", "txs", "assignment", "nodes", "wallet", "admin", "subsystem/main"]
WCAG_AA_CONTRAST = 4.5

# Returns the problems found on the current page (empty when it passes).
AUDIT_JS = r"""
(min) => {
  const problems = [];
  const visible = (el) => {
    const r = el.getBoundingClientRect(); const s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== "hidden" && s.display !== "none";
  };
  const name = (el) => (el.getAttribute("aria-label") || "").trim()
    || (el.getAttribute("aria-labelledby") || "").split(/\s+/).filter(Boolean)
         .map((id) => (document.getElementById(id) || {}).textContent || "").join(" ").trim()
    || [...(el.labels || [])].map((l) => l.textContent).join(" ").trim()
    || (el.getAttribute("title") || "").trim();
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (el.type === "hidden" || !visible(el)) continue;
    if (!name(el)) problems.push(`form control without a label: ${el.outerHTML.slice(0, 80)}`);
  }
  for (const el of document.querySelectorAll("button, a[href]")) {
    if (!visible(el)) continue;
    if (!(el.textContent.trim() || name(el) || el.querySelector("img[alt]")))
      problems.push(`${el.tagName.toLowerCase()} without a name: ${el.outerHTML.slice(0, 80)}`);
  }
  const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const texts = document.querySelectorAll(
    "p, li, td, th, dt, dd, label, a, button, h1, h2, h3, span, code");
  for (const el of texts) {
    if (!visible(el) || ![...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim()))
      continue;
    const fg = rgb(getComputedStyle(el).color).slice(0, 3);
    const [a, b] = [lum(fg), lum(background(el))].sort((x, y) => y - x);
    const ratio = (a + 0.05) / (b + 0.05);
    if (ratio < min)
      problems.push(`contrast ${ratio.toFixed(2)}: "${el.textContent.trim().slice(0, 40)}"`);
  }
  if (!document.documentElement.lang) problems.push("<html> has no lang");
  if (!document.querySelector("main, [role=main]")) problems.push("no main landmark");
  return problems;
}
"""


@pytest.mark.parametrize("route", PAGES)
def test_page_passes_basic_accessibility_checks(
    node: InProcessNode, context: Any, route: str
) -> None:
    page = context.new_page()
    page.goto(f"{node.url}/#/{route}")
    page.wait_for_function("!document.body.innerText.includes('Loading…')")
    problems = page.evaluate(AUDIT_JS, WCAG_AA_CONTRAST)
    assert problems == [], f"#/{route}: " + "; ".join(problems[:10])


def test_keyboard_reaches_skip_link_then_navigation(node: InProcessNode, context: Any) -> None:
    page = context.new_page()
    page.goto(f"{node.url}/#/overview")
    page.wait_for_function("!document.body.innerText.includes('Loading…')")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Skip to content"
    for _ in range(12):  # tab on until a navigation link has the focus, then follow it
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.closest('nav') !== null"):
            break
    target = page.evaluate("document.activeElement.getAttribute('href')")
    assert target and target.startswith("#/")
    page.keyboard.press("Enter")
    page.wait_for_function(f"location.hash === {target!r}")
    outline = page.evaluate(
        "(() => { const s = getComputedStyle(document.activeElement);"
        " return s.outlineStyle !== 'none' || s.boxShadow !== 'none'; })()"
    )
    assert outline, "the focused link shows no focus indicator"


def test_the_audit_itself_catches_each_kind_of_problem(context: Any) -> None:
    page = context.new_page()
    page.set_content(
        "<html><body><input id=x><button></button>"
        "<p style='color:#bbb;background:#fff'>faint text</p></body></html>"
    )
    problems = page.evaluate(AUDIT_JS, WCAG_AA_CONTRAST)
    kinds = {p.split(":")[0].split(" ")[0] for p in problems}
    assert any(p.startswith("form control without a label") for p in problems)
    assert any(p.startswith("button without a name") for p in problems)
    assert any(p.startswith("contrast") and "faint text" in p for p in problems)
    assert "<html> has no lang" in problems and "no main landmark" in problems, kinds
