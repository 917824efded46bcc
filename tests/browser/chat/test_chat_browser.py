"""The web chat in headless Chromium at phone size (360×640): a status conversation with
button taps, a petition, reload keeping the history, large-font mode, forged ids refused."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fake_rasa import FakeRasaServer
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def open_chat(new_phone: Any, api_url: str) -> Page:
    page = new_phone().new_page()
    page.goto(api_url + "/chat")
    expect(page.locator(".row.bot .bubble").first).to_contain_text("我是房本助手")
    return page


def bot_bubbles(page: Page) -> Any:
    return page.locator(".row.bot:not(.typing-row) .bubble")


def type_and_send(page: Page, text: str) -> None:
    page.fill("#input", text)
    page.press("#input", "Enter")


def wait_bot(page: Page, count: int) -> None:
    expect(bot_bubbles(page)).to_have_count(count)
    expect(page.locator(".typing-row")).to_have_count(0)


def no_horizontal_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"page is {width}px wide at a 360px viewport"


def test_status_conversation_with_button_taps(
    new_phone: Any, api_url: str, rasa_server: FakeRasaServer, shot: Any
) -> None:
    rasa_server.fake.delay_all = 0.0
    page = open_chat(new_phone, api_url)
    no_horizontal_scroll(page)
    shot(page, "01-welcome")
    # Quick-start chip.
    rasa_server.fake.delay_all = 0.8
    page.get_by_role("button", name="查房本进度").click()
    expect(page.locator(".row.user .bubble").last).to_have_text("查房本进度")
    expect(page.locator(".typing-row")).to_be_visible()  # typing indicator while Rasa thinks
    shot(page, "02-typing")
    wait_bot(page, 2)
    rasa_server.fake.delay_all = 0.0
    expect(bot_bubbles(page).last).to_contain_text("地址")
    type_and_send(page, "观象山庄3号楼2单元501")
    wait_bot(page, 3)
    expect(bot_bubbles(page).last).to_contain_text("消防验收")
    chips = page.locator(".row.bot").last.locator(".buttons .chip")
    expect(chips).to_have_text(["接下来怎么办", "要带什么材料", "我要信访"])
    expect(page.locator(".time").first).to_have_text(re.compile(r"^\d{2}:\d{2}$"))
    shot(page, "03-status-with-buttons")
    # Tapping a button sends its payload; the resident sees its title.
    chips.first.click()
    wait_bot(page, 4)
    assert rasa_server.fake.received[-1][1] == "/ask_next_steps"
    expect(page.locator(".row.user .bubble").last).to_have_text("接下来怎么办")
    expect(bot_bubbles(page).last).to_contain_text("首次登记完成后")
    # Older chips are spent.
    expect(page.locator(".buttons .chip", has_text="接下来怎么办")).to_be_disabled()
    # Typed "/…" is neutralised on the way.
    type_and_send(page, "/restart")
    wait_bot(page, 5)
    assert rasa_server.fake.received[-1][1] == "／restart"
    no_horizontal_scroll(page)
    shot(page, "04-after-taps")


def test_petition_and_reload_keeps_history(
    new_phone: Any, api_url: str, rasa_server: FakeRasaServer, shot: Any
) -> None:
    page = open_chat(new_phone, api_url)
    page.get_by_role("button", name="我要信访").click()
    wait_bot(page, 2)
    expect(bot_bubbles(page).last).to_contain_text("称呼")
    type_and_send(page, "王建国")
    wait_bot(page, 3)
    type_and_send(page, "13812345678")
    wait_bot(page, 4)
    # The resident's own phone number is shown masked once stored.
    expect(page.locator(".row.user .bubble").last).to_have_text("138****5678")
    type_and_send(page, "观象山庄交房五年了还没有房本，开发商联系不上")
    wait_bot(page, 5)
    consent = page.locator(".row.bot").last.locator(".chip")
    expect(consent).to_have_text(["同意", "不同意"])
    shot(page, "05-petition-consent")
    consent.first.click()
    wait_bot(page, 6)
    expect(bot_bubbles(page).last).to_contain_text(re.compile(r"XF-\d{8}-\d{4}"))
    shot(page, "06-petition-done")
    before = page.locator(".bubble").all_inner_texts()
    page.reload()
    expect(bot_bubbles(page)).to_have_count(6)
    after = page.locator(".bubble").all_inner_texts()
    assert after == before
    assert "13812345678" not in page.content()
    # Only the last turn's chips can still be tapped.
    expect(page.locator(".row.bot").last.locator(".chip").first).to_be_enabled()
    expect(page.get_by_role("button", name="同意", exact=True)).to_be_disabled()
    shot(page, "07-after-reload")


def test_human_handoff_entry(new_phone: Any, api_url: str) -> None:
    page = open_chat(new_phone, api_url)
    page.get_by_role("button", name="转人工").click()
    wait_bot(page, 2)
    expect(page.locator(".row.user .bubble").last).to_have_text("转人工")
    expect(bot_bubbles(page).last).to_contain_text("信访")


def test_large_font_mode_is_persisted(new_phone: Any, api_url: str, shot: Any) -> None:
    page = open_chat(new_phone, api_url)
    page.get_by_role("button", name="查房本进度").click()
    wait_bot(page, 2)
    normal = page.evaluate("getComputedStyle(document.querySelector('.bubble')).fontSize")
    page.get_by_role("button", name="大字").click()
    expect(page.locator("html")).to_have_class(re.compile(r"\bbig\b"))
    big = page.evaluate("getComputedStyle(document.querySelector('.bubble')).fontSize")
    assert float(big.rstrip("px")) >= float(normal.rstrip("px")) + 4
    expect(page.locator("#font-toggle")).to_have_attribute("aria-pressed", "true")
    no_horizontal_scroll(page)
    shot(page, "08-large-font")
    page.reload()
    expect(page.locator("html")).to_have_class(re.compile(r"\bbig\b"))
    expect(page.locator("#font-toggle")).to_have_text("标准字")
    page.locator("#font-toggle").click()
    page.reload()
    expect(page.locator("html")).not_to_have_class(re.compile(r"\bbig\b"))


def test_another_sessions_conversation_id_is_refused(
    new_phone: Any, api_url: str, shot: Any
) -> None:
    victim = open_chat(new_phone, api_url)
    type_and_send(victim, "海岸花园5号楼1单元302")
    wait_bot(victim, 2)
    victim_cookie = next(c for c in victim.context.cookies() if c["name"] == "fb_chat")
    assert victim_cookie["httpOnly"] and victim_cookie["sameSite"] == "Lax"
    assert victim.evaluate("document.cookie") == ""  # invisible to scripts
    victim_id, victim_sig = victim_cookie["value"].split(".", 1)

    attacker = open_chat(new_phone, api_url)
    own = next(c for c in attacker.context.cookies() if c["name"] == "fb_chat")
    own_sig = own["value"].split(".", 1)[1]
    for forged in (victim_id, f"{victim_id}.{own_sig}", f"{victim_id}.{victim_sig[:-3]}AAA"):
        attacker.context.add_cookies([{**own, "value": forged}])
        status = attacker.evaluate(
            """async () => {
                const h = {"X-Chat-Client": "web", "Content-Type": "application/json"};
                const r = await fetch('/chat/api/history', {headers: h});
                const w = await fetch('/chat/api/messages',
                    {method: 'POST', headers: h, body: JSON.stringify({text: '我要信访'})});
                return [r.status, (await r.json()).message, w.status];
            }"""
        )
        assert status == [403, "会话已失效，请刷新页面重新开始。", 403], forged
    # The page itself tells the resident, and never shows the other conversation.
    type_and_send(attacker, "你好")
    expect(attacker.locator(".notice.error")).to_contain_text("会话已失效")
    shot(attacker, "09-forged-id-refused")
    attacker.reload()
    expect(attacker.locator(".row.user")).to_have_count(0)
    assert "海岸花园5号楼1单元302" not in attacker.content()
    # The victim's conversation is intact.
    victim.reload()
    expect(victim.locator(".row.user .bubble")).to_have_text(["海岸花园5号楼1单元302"])


def test_rasa_down_shows_a_friendly_message(
    new_phone: Any, api_url: str, rasa_server: FakeRasaServer, shot: Any
) -> None:
    page = open_chat(new_phone, api_url)
    rasa_server.fake.fail_status = 500
    try:
        type_and_send(page, "查房本进度")
        expect(page.locator(".notice.error")).to_contain_text("小助手暂时没有响应")
        expect(page.locator(".row.user.failed")).to_have_count(1)
        shot(page, "10-rasa-down")
    finally:
        rasa_server.fake.fail_status = None
    # Once Rasa is back, one tap resends the same message.
    page.locator(".notice.error button", has_text="重发").click()
    expect(page.locator(".row.user.failed")).to_have_count(0)
    expect(page.locator(".row.user .bubble")).to_have_text(["查房本进度"])
    expect(bot_bubbles(page).last).to_contain_text("地址")


def test_desktop_layout(browser: Any, api_url: str, shot: Any) -> None:
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    try:
        page = ctx.new_page()
        page.goto(api_url + "/chat")
        page.get_by_role("button", name="要带什么材料").click()
        expect(bot_bubbles(page)).to_have_count(2)
        box = page.locator("#app").bounding_box()
        assert box and box["width"] <= 720
        shot(page, "11-desktop")
    finally:
        ctx.close()
