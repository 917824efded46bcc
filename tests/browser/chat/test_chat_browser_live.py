"""The web chat against the real helpdesk: api (demo ledger) + action server + `rasa run` with
the trained model, in headless Chromium at 360×640. Skips when no model has been trained."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "e2e"))
import e2e_stack  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.e2e]


@pytest.fixture(scope="module")
def live_api() -> Iterator[str]:
    """The api URL of a running helpdesk (real Rasa behind /chat)."""
    try:
        e2e_stack.latest_model()
    except e2e_stack.StackError:
        if os.environ.get("CI") == "true":
            pytest.fail("no trained model under CI (scripts/test.d/20-bot.sh trains it)")
        pytest.skip("no trained model in bot/models/ (make train)")
    with e2e_stack.running_stack(tracker="memory") as stack:
        yield stack.api_url


def bot_bubbles(page: Page) -> Any:
    return page.locator(".row.bot:not(.typing-row) .bubble")


def send_and_wait(page: Page, text: str) -> str:
    n = bot_bubbles(page).count()
    page.fill("#input", text)
    page.press("#input", "Enter")
    expect(page.locator(".typing-row")).to_have_count(0, timeout=60_000)
    expect(bot_bubbles(page).nth(n)).to_be_visible(timeout=60_000)
    return "\n".join(bot_bubbles(page).all_inner_texts()[n:])


def test_real_status_conversation_and_reload(new_phone: Any, live_api: str, shot: Any) -> None:
    page = new_phone().new_page()
    page.goto(live_api + "/chat")
    expect(bot_bubbles(page).first).to_contain_text("我是房本助手")
    first = send_and_wait(page, "我家房本为什么一直办不下来")
    assert "地址" in first or "身份证" in first, first
    n = bot_bubbles(page).count()
    status = send_and_wait(page, "观象山庄3号楼2单元501")
    for word in ("观象山庄", "首次登记", "消防"):
        assert word in status, status
    # The new answer is shown from its start, not scrolled to its last line.
    start = bot_bubbles(page).nth(n).bounding_box()
    log = page.locator("#log").bounding_box()
    assert start and log and log["y"] <= start["y"] < log["y"] + log["height"] / 2, (start, log)
    shot(page, "live-01-status")
    chips = page.locator(".row.bot").last.locator(".chip")
    if chips.count():
        n = bot_bubbles(page).count()
        title = chips.first.inner_text()
        chips.first.click()
        expect(page.locator(".row.user .bubble").last).to_have_text(title)
        expect(bot_bubbles(page).nth(n)).to_be_visible(timeout=60_000)
        shot(page, "live-02-after-tap")
    before = page.locator(".bubble").all_inner_texts()
    page.reload()
    expect(bot_bubbles(page).first).to_contain_text("我是房本助手")
    expect(page.locator(".bubble")).to_have_count(len(before))
    assert page.locator(".bubble").all_inner_texts() == before


def test_real_petition(new_phone: Any, live_api: str, shot: Any) -> None:
    page = new_phone().new_page()
    page.goto(live_api + "/chat")
    page.get_by_role("button", name="我要信访").click()
    expect(page.locator(".typing-row")).to_have_count(0, timeout=60_000)
    expect(bot_bubbles(page).nth(1)).to_be_visible(timeout=60_000)
    reply = "\n".join(bot_bubbles(page).all_inner_texts()[1:])
    for _ in range(10):
        if re.search(r"XF-\d{8}-\d{4}", reply):
            break
        if "同意" in reply:
            consent = page.locator(".row.bot").last.locator(".chip", has_text="同意")
            if consent.count():
                n = bot_bubbles(page).count()
                consent.first.click()
                expect(bot_bubbles(page).nth(n)).to_be_visible(timeout=60_000)
                reply = "\n".join(bot_bubbles(page).all_inner_texts()[n:])
                continue
            answer = "同意"
        elif any(w in reply for w in ("经过", "情况", "什么问题", "什么事", "说说", "描述")):
            answer = "交房五年了房本一直办不下来，开发商说消防验收没过"
        elif "姓名" in reply or "称呼" in reply:
            answer = "刘桂芳"
        elif "手机" in reply or "电话" in reply:
            answer = "13912345678"
        elif "地址" in reply or "小区" in reply:
            answer = "观象山庄3号楼2单元501"
        else:
            raise AssertionError(f"unexpected prompt: {reply}")
        reply = send_and_wait(page, answer)
    assert re.search(r"XF-\d{8}-\d{4}", reply), reply
    assert "13912345678" not in page.content()
    shot(page, "live-03-petition")
