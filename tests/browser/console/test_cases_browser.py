"""Collective cases (并单) in headless Chromium: a clerk confirms a suggested case (dropping a
household), assigns it once; the 消防 officer answers it once; the case page and the project page
at 1366×768 and 768×1024. Each step leaves a screenshot."""

from __future__ import annotations

import httpx
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _file(console_url: str, phone: str) -> str:
    body = {
        "person_name": "赵六",
        "phone": phone,
        "project_code": "QS001",
        "description": "3号楼消防一直没复验，办不了房本。",
        "consent": True,
        "channel": "webchat",
        "blockers": ["fire_acceptance"],
    }
    r = httpx.post(f"{console_url}/api/v1/petitions", json=body, timeout=10)
    r.raise_for_status()
    return str(r.json()["number"])


def test_collective_case_from_suggestion_to_answer(desk, console_url, shot):
    kept = [_file(console_url, f"1360000{i:04d}") for i in range(2)]
    dropped = _file(console_url, "13600009999")
    clerk = desk("clerk")
    clerk.goto("/console/cases")
    form = clerk.locator("form.suggestion", has_text=kept[0])
    assert form.count() == 1 and "消防验收" in form.inner_text()
    # Only these two households (other tests may have filed petitions for the same project).
    for box in form.locator("input[name=petitions]").all():
        if box.get_attribute("value") not in kept:
            box.uncheck()
    assert dropped in form.inner_text()
    shot(clerk, "cases-01-suggestion")
    form.locator("button[type=submit]").click()
    assert "已确认并单" in clerk.inner_text(".flash.ok")
    case_url = clerk.url
    members = clerk.inner_text("#members")
    assert all(n in members for n in kept) and dropped not in members
    assert clerk.is_checked("form[action$='/assign'] input[value=fire_rescue]")
    clerk.click("form[action$='/assign'] button[type=submit]")
    assert "已统一分派 2 件" in clerk.inner_text(".flash.ok")
    shot(clerk, "cases-02-assigned")

    officer = desk("officer")
    officer.goto(case_url)
    officer.fill("form[action$='/answer'] textarea[name=answer]", "3号楼消防设施已整改，下周复验。")
    officer.click("form[action$='/answer'] button[type=submit]")
    assert "答复已发给每位信访人，共 2 件" in officer.inner_text(".flash.ok")

    clerk.goto(case_url)
    assert clerk.inner_text("#members").count("消防救援大队✓") == 2
    shot(clerk, "cases-03-case-1366", full_page=True)
    clerk.set_viewport_size({"width": 768, "height": 1024})
    clerk.reload()
    shot(clerk, "cases-04-case-768", full_page=True)
    clerk.goto("/console/projects/QS001")
    assert "并单" in clerk.inner_text("#petitions") and "居民查询" in clerk.inner_text("#petitions")
    shot(clerk, "cases-05-project-768", full_page=True)
    clerk.set_viewport_size({"width": 1366, "height": 768})
    clerk.reload()
    shot(clerk, "cases-06-project-1366", full_page=True)
