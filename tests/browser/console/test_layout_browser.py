"""Every main console screen at 768×1024 (a tablet, a narrow window) and 1366×768 (an office
screen), in headless Chromium (issue 14): nothing wider than the window, and on the project
page the blocker table's 标记已化解 is on top and clickable (it ran under the audit card at
768 px). Each page at each size leaves a full-page screenshot."""

from __future__ import annotations

import re

import pytest
from test_console_browser import _new_petition

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SIZES = [pytest.param((768, 1024), id="768"), pytest.param((1366, 768), id="1366")]
PAGES = [
    ("petitions", "/console/petitions"),
    ("petition", None),  # the petition just filed
    ("projects", "/console/projects"),
    ("project", "/console/projects/QS001"),
    ("ledger", "/console/ledger"),
    ("dashboard", "/console/dashboard"),
    ("users", "/console/users"),
    ("cases", "/console/cases"),
]
# Whatever sticks out past the window's right edge (the page would scroll sideways).
OVERFLOW = """() => {
  const width = window.innerWidth;
  const out = [];
  for (const el of document.querySelectorAll("body *")) {
    const box = el.getBoundingClientRect();
    if (box.width && box.right > width + 1 && !el.closest(".table-wrap, .scroll, figure.chart")) {
      out.push(el.tagName.toLowerCase() + (el.className ? "." + el.className : "") +
               " right=" + Math.round(box.right));
    }
  }
  return {scroll: document.documentElement.scrollWidth, inner: width, out: out.slice(0, 10)};
}"""
# The button is inside its card's box (not spilling over the next column) and nothing lies
# on top of its centre.
ON_TOP = """(el) => {
  const box = el.getBoundingClientRect();
  const card = el.closest(".card").getBoundingClientRect();
  const hit = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
  return {inside: box.left >= card.left && box.right <= card.right,
          hit: hit === el || el.contains(hit)};
}"""


@pytest.mark.parametrize("size", SIZES)
def test_main_screens_fit_the_window(desk, console_url, shot, size):
    width, height = size
    number = _new_petition(console_url)
    admin = desk("admin")
    admin.set_viewport_size({"width": width, "height": height})
    admin.goto(f"/console/petitions?q={number}")
    petition_url = admin.locator("tr", has_text=number).locator("a").first.get_attribute("href")
    assert petition_url and re.match(r"^/console/petitions/", petition_url)
    problems = []
    for name, url in PAGES:
        admin.goto(url or petition_url)
        admin.wait_for_load_state("networkidle")
        shot(admin, f"layout-{name}-{width}", full_page=True)
        found = admin.evaluate(OVERFLOW)
        if found["scroll"] > found["inner"] + 1 or found["out"]:
            problems.append((name, found))
    assert not problems, f"wider than {width} px: {problems}"

    admin.goto("/console/projects/QS001")
    resolve = admin.locator("#blockers button", has_text="标记已化解").first
    resolve.scroll_into_view_if_needed()
    assert resolve.evaluate(ON_TOP) == {"inside": True, "hit": True}, f"标记已化解 at {width} px"
    resolve.click(trial=True)  # Playwright's own actionability check; nothing is resolved
    shot(admin, f"layout-project-blockers-{width}")


def test_ledger_errors_name_the_home_at_768(desk, shot, tmp_path):
    """A units file with bad rows: the error table gives each row's 幢号/单元/房号 as typed, and
    the page still fits a 768 px window."""
    bad = tmp_path / "房屋表.csv"
    bad.write_text(
        "项目编号,幢号,单元,房号,业主姓名,身份证号,转移登记\n"
        "QS001,9号楼,3单元,1201,,,不知道\n"
        "QS001,9号楼,,,,,未办理\n",
        encoding="utf-8",
    )
    admin = desk("admin")
    admin.set_viewport_size({"width": 768, "height": 1024})
    admin.goto("/console/ledger")
    admin.set_input_files("input[type=file]", str(bad))
    admin.click("form[action='/console/ledger'] button[type=submit]")
    admin.wait_for_selector("table.errors", timeout=30_000)
    rows = admin.locator("table.errors tbody tr")
    cells = [
        (rows.nth(i).locator("td").nth(1).inner_text(), rows.nth(i).locator("td.home").inner_text())
        for i in range(rows.count())
    ]
    assert cells == [("2", "9号楼/3单元/1201"), ("3", "9号楼/—/—")]
    found = admin.evaluate(OVERFLOW)
    assert found["scroll"] <= found["inner"] + 1 and not found["out"], found
    shot(admin, "layout-ledger-errors-768", full_page=True)
