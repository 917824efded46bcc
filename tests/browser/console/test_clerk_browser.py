"""A clerk's desk in headless Chromium (issue 14): a phone call registered with consent, the
petition page preselecting the departments of the project's open blockers with the reason, a
refused close keeping its text, only the buttons that can succeed, an objection during the
notice. Screenshots at 1366×768 and 768×1024."""

from __future__ import annotations

import re

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_phone_intake_then_dispatch_from_the_blockers(desk, shot):
    clerk = desk("clerk")
    clerk.goto("/console/petitions")
    clerk.click("text=登记来电 / 来访")
    clerk.fill("input[name=person_name]", "孙丽")
    clerk.fill("input[name=phone]", "139 0000 3333")
    clerk.fill("input[name=project_code]", "QS001")
    clerk.fill("textarea[name=description]", "来电反映：交房六年了还没有房本。")
    # Without the caller's consent the form is refused and keeps what was typed.
    clerk.click("#intake button[type=submit]")
    assert "同意" in clerk.inner_text(".flash.err")
    assert clerk.input_value("textarea[name=description]").startswith("来电反映")
    shot(clerk, "clerk-01-intake-refused")
    clerk.check("input[name=consent]")
    clerk.click("#intake button[type=submit]")
    assert "已登记电话信访" in clerk.inner_text(".flash.ok")
    number = re.search(r"XF-\d{8}-\d{4}", clerk.url).group(0)

    suggested = clerk.inner_text("#suggested")
    assert "→" in suggested
    ticked = clerk.locator("#assign input[name=departments]:checked")
    assert ticked.count() >= 1
    shot(clerk, "clerk-02-suggested-1366", full_page=True)
    clerk.set_viewport_size({"width": 768, "height": 1024})
    clerk.reload()
    width = clerk.evaluate("document.documentElement.scrollWidth")
    assert width <= 768 + 1, f"the petition page is {width}px wide at 768"
    shot(clerk, "clerk-03-suggested-768", full_page=True)
    clerk.set_viewport_size({"width": 1366, "height": 768})
    clerk.reload()
    clerk.click("#assign button[type=submit]")
    assert "已分派" in clerk.inner_text(".flash.ok")
    # 开始核实 waits for the answers: not offered, and the page says why.
    assert clerk.locator("button", has_text="开始核实").count() == 0
    assert "书面答复" in clerk.inner_text("#waiting")
    entries = clerk.locator("ol.audit > li")
    assert "分派部门" in entries.first.inner_text()  # newest first
    assert "登记来电/来访" in clerk.inner_text("ol.audit")
    assert "staff:" not in clerk.inner_text("ol.audit")
    assert "来源：电话" in clerk.inner_text("ol.audit")
    shot(clerk, "clerk-04-assigned", full_page=True)
    assert number in clerk.url
