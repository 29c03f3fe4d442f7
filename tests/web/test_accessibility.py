"""Accessibility of the console's pages, measured in a real browser.

JIS X 8341-3:2016 (WCAG 2.1) level AA, the parts a browser can measure:

- 1.4.3 contrast: every visible text has a contrast ratio of at least 4.5:1
  against the background it is drawn on (3:1 for large text: 24 px, or
  18.66 px bold), computed from the styles Chromium applied (colours,
  alpha, the nearest opaque background up the tree);
- 1.3.1 / 4.1.2: every form control has an accessible name (a ``label``,
  ``aria-label``, ``aria-labelledby`` or ``title``), every button and link
  a text;
- 2.4.7 focus visible: the element the keyboard reaches has an outline or
  a shadow drawn around it.

Each demo role signs in, and every page its home page links to (the
console's own pages: auditors', admins', the disclosure desk's, 介護保険課's,
会計課's) is checked as that role sees it. Skipped without a browser, like
test_browser.py.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import KAGA

from .test_browser import console, page, sign_in  # noqa: F401 - fixtures

# Runs in the page through the DevTools protocol (the page's CSP, which
# forbids inline script, does not apply to it).
MEASURE = """
() => {
  const parse = (c) => {
    const m = c && c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(',').map((x) => parseFloat(x));
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const over = (top, base) => ({
    r: top.r * top.a + base.r * (1 - top.a),
    g: top.g * top.a + base.g * (1 - top.a),
    b: top.b * top.a + base.b * (1 - top.a),
    a: 1,
  });
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
    }
    let base = {r: 255, g: 255, b: 255, a: 1};
    for (let i = layers.length - 1; i >= 0; i--) base = over(layers[i], base);
    return base;
  };
  const lum = (c) => {
    const f = (v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const problems = [];
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('svg')) continue;  // charts: their text has its own fill (checked by eye)
    const text = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!text) continue;
    const s = getComputedStyle(el);
    if (s.display === 'none' || s.visibility === 'hidden' || parseFloat(s.opacity) === 0) continue;
    const box = el.getBoundingClientRect();
    if (box.width < 1 || box.height < 1 || box.right < 0 || box.bottom < 0) continue;
    if (el.disabled) continue;  // inactive controls are exempt (1.4.3)
    const back = background(el);
    const fg = over(parse(s.color), back);
    const [a, b] = [lum(fg), lum(back)];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(s.fontSize);
    const large = size >= 24 || (parseInt(s.fontWeight, 10) >= 700 && size >= 18.66);
    if (ratio < (large ? 3 : 4.5) - 0.01) {
      const what = `<${el.tagName.toLowerCase()} class="${el.className}">`;
      const said = el.textContent.trim().slice(0, 30);
      problems.push(`contrast ${ratio.toFixed(2)}:1 ${what} "${said}"`);
    }
  }
  for (const el of document.querySelectorAll('input, select, textarea')) {
    if (el.type === 'hidden') continue;
    const named = (el.labels && el.labels.length) || el.getAttribute('aria-label')
      || el.getAttribute('aria-labelledby') || el.title;
    if (!named) problems.push(`unlabelled control name="${el.name}" id="${el.id}"`);
  }
  for (const el of document.querySelectorAll('button, a[href]')) {
    const name = (el.textContent || '').trim() || el.getAttribute('aria-label') || el.title;
    const where = el.getAttribute('href') || '';
    if (!name) problems.push(`nameless ${el.tagName.toLowerCase()} ${where}`);
  }
  return problems;
}
"""

FOCUS_DRAWN = """
() => {
  const el = document.activeElement;
  if (!el || el === document.body) return 'nothing focused';
  const s = getComputedStyle(el);
  const outlined = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0;
  return outlined || s.boxShadow !== 'none' ? '' : `no focus indicator on ${el.tagName}`;
}
"""

ROLES = ("audit-0001", "admin-0001", "staff-0001", "kaigo-0001", "kaikei-0001")


async def _console_links(page: Any, base: str) -> list[str]:  # noqa: F811 - the fixture's name
    hrefs: list[str] = await page.eval_on_selector_all(
        "main a[href]", "(links) => links.map((a) => a.getAttribute('href'))"
    )
    seen: list[str] = []
    for href in hrefs:
        path = urlsplit(href).path
        if path.startswith("/console/") and "/static/" not in path and path not in seen:
            seen.append(path)
    return seen


@pytest.mark.parametrize("staff", ROLES)
async def test_every_page_a_role_reaches_meets_aa(
    console: str,  # noqa: F811 - the fixture
    page: Any,  # noqa: F811 - the fixture
    staff: str,
) -> None:
    await sign_in(page, console, KAGA, staff)
    pages = ["/console/home", *await _console_links(page, console)]
    assert len(pages) > 1, f"{staff}'s home page links to no page"
    problems: dict[str, list[str]] = {}
    for path in pages:
        await page.goto(console + path)
        found: list[str] = await page.evaluate(MEASURE)
        await page.keyboard.press("Tab")
        focus: str = await page.evaluate(FOCUS_DRAWN)
        if focus:
            found.append(focus)
        if found:
            problems[path] = found
    assert not problems, problems


async def test_the_measure_finds_what_it_looks_for(
    console: str,  # noqa: F811 - the fixture
    page: Any,  # noqa: F811 - the fixture
) -> None:
    """The checks above can fail: grey on white, an unlabelled field and an
    empty link planted in a real page are each reported."""
    await sign_in(page, console, KAGA, "audit-0001")
    assert await page.evaluate(MEASURE) == []
    await page.evaluate(
        """() => {
          const main = document.querySelector('main');
          const p = document.createElement('p');
          p.textContent = 'うすい文字';
          p.style.color = '#bbbbbb';
          main.append(p, document.createElement('input'));
          const a = document.createElement('a');
          a.href = '/console/home';
          main.append(a);
        }"""
    )
    found = await page.evaluate(MEASURE)
    assert any(f.startswith("contrast") and "うすい文字" in f for f in found), found
    assert any(f.startswith("unlabelled control") for f in found), found
    assert any(f.startswith("nameless a") for f in found), found
