"""The maintainers' quality page in headless Chromium at 1366×768 (issue 12), on figures made
the way the running helpdesk makes them: residents' turns reported by the bot
(/api/v1/conversations/turn), a 转人工, a petition filed from a conversation, messages the bot
did not understand (/api/v1/nlu/observations, two model versions) and a maintainer's
annotations over the staff API. Screenshot under tests/artifacts/browser-console/."""

from __future__ import annotations

import secrets
import uuid

import httpx
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

OLD_MODEL, NEW_MODEL = "a1b2c3d4", "e5f6a7b8"


def _service(sender: str) -> dict[str, str]:
    from app.core.config import settings

    return {"Authorization": f"Service {settings.service_token}", "X-Sender-Id": sender}


def _staff(console_url: str, admin: tuple[str, str]) -> tuple[tuple[str, str], dict[str, str]]:
    """A maintainer of this module's own (logins per minute are per username) and its token."""
    token = httpx.post(
        f"{console_url}/api/v1/auth/token",
        data={"username": admin[0], "password": admin[1]},
        timeout=10,
    )
    token.raise_for_status()
    name, secret = f"quality-{uuid.uuid4().hex[:6]}", secrets.token_urlsafe(12)
    r = httpx.post(
        f"{console_url}/api/v1/staff/users",
        json={"username": name, "password": secret, "role": "maintainer"},
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    mine = httpx.post(
        f"{console_url}/api/v1/auth/token", data={"username": name, "password": secret}, timeout=10
    )
    mine.raise_for_status()
    return (name, secret), {"Authorization": f"Bearer {mine.json()['access_token']}"}


def _conversation(console_url: str, turns: int) -> str:
    sender = "web-" + uuid.uuid4().hex
    for n in range(turns):
        r = httpx.post(
            f"{console_url}/api/v1/conversations/turn",
            json={"channel": "webchat", "text": f"第{n + 1}句"},
            headers=_service(sender),
            timeout=10,
        )
        assert r.status_code == 200, r.text
    return sender


def _observe(console_url: str, sender: str, text: str, **fields: object) -> int:
    body = {"text": text, "channel": "webchat", "context": [], **fields}
    r = httpx.post(
        f"{console_url}/api/v1/nlu/observations", json=body, headers=_service(sender), timeout=10
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def test_quality_page_from_real_conversations(browser, console_url, accounts, shot):
    """Four conversations (16 turns): one answered by the bot alone, one filed a petition, one
    asked for a person, one only chatted; the unanswered messages ranked; per-intent F1 of both
    model versions from the annotations; the confusion matrix drawn as an image."""
    account, staff = _staff(console_url, accounts["admin"])
    alone = _conversation(console_url, 4)
    filed = _conversation(console_url, 5)
    person = _conversation(console_url, 3)
    chatted = _conversation(console_url, 4)
    r = httpx.post(
        f"{console_url}/api/v1/conversations/handoff",
        json={"channel": "webchat"},
        headers=_service(person),
        timeout=10,
    )
    assert r.status_code == 200, r.text
    petition = {
        "person_name": "王小梅",
        "phone": "13912345678",
        "address": "幸福里小区5号楼1单元302",
        "description": "住了八年还没有房本，开发商联系不上。",
        "consent": True,
        "channel": "webchat",
    }
    r = httpx.post(
        f"{console_url}/api/v1/petitions", json=petition, headers=_service(filed), timeout=10
    )
    assert r.status_code in (200, 201), r.text

    # Unanswered: the same words twice (punctuation aside), another once.
    _observe(console_url, alone, "孩子上学要房本吗？", reason="fallback", model_id=NEW_MODEL)
    _observe(
        console_url,
        chatted,
        "孩子上学要房本吗",
        reason="out_of_scope",
        predicted_intent="out_of_scope",
        confidence=0.9,
        model_id=NEW_MODEL,
    )
    _observe(console_url, chatted, "物业费怎么交", reason="fallback", model_id=NEW_MODEL)
    # Misread by the old model, read right by the new one; a maintainer settles both.
    wrong = _observe(
        console_url,
        alone,
        "房本啥时候下来",
        reason="low_confidence",
        predicted_intent="ask_next_steps",
        confidence=0.41,
        model_id=OLD_MODEL,
    )
    right = _observe(
        console_url,
        filed,
        "我家证咋还没有",
        reason="low_confidence",
        predicted_intent="ask_certificate_status",
        confidence=0.55,
        model_id=NEW_MODEL,
    )
    for item in (wrong, right):
        r = httpx.post(
            f"{console_url}/api/v1/staff/nlu/inbox/{item}/annotation",
            json={"intent": "ask_certificate_status"},
            headers=staff,
            timeout=10,
        )
        assert r.status_code == 200, r.text

    ctx = browser.new_context(
        viewport={"width": 1366, "height": 768}, locale="zh-CN", base_url=console_url
    )
    page = ctx.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto("/console")
        page.fill("input[name=username]", account[0])
        page.fill("input[name=password]", account[1])
        page.click("button[type=submit]")
        page.wait_for_selector("header nav")
        page.click("header nav a[href='/console/quality']")
        page.wait_for_selector(".kpis")
        kpis = page.inner_text(".kpis")
        # Other console tests share this api: the rates are checked against the table's counts.
        rows = dict(
            line.split("\t")
            for line in page.locator("table.list.num").first.inner_text().splitlines()
        )
        conversations, contained = int(rows["对话数"]), int(rows["机器人独立答完"])
        assert conversations >= 4 and int(rows["回合数"]) >= 16
        assert int(rows["登记了信访"]) >= 1 and int(rows["要求人工或被接管"]) >= 1
        assert f"{100 * contained / conversations:.1f}%" in kpis
        unanswered = page.locator("section:has(h2:has-text('最常没答上的话')) tbody tr")
        first = unanswered.first.inner_text()
        assert "孩子上学要房本吗" in first and first.rstrip().endswith("2")
        f1 = page.locator("section:has(h2:has-text('各意图 F1'))")
        header = f1.locator("thead").inner_text()
        assert f"模型 {OLD_MODEL}" in header and f"模型 {NEW_MODEL}" in header
        status_row = f1.locator("tr:has(td:text-is('ask_certificate_status'))").inner_text()
        assert "0.00" in status_row and "1.00" in status_row
        image = page.locator("img[alt^='混淆矩阵']")
        image.scroll_into_view_if_needed()
        page.wait_for_function(
            "() => { const i = document.querySelector(\"img[alt^='混淆矩阵']\");"
            " return i && i.complete && i.naturalWidth > 100; }"
        )
        assert "13912345678" not in page.content()
        shot(page, "quality-01-page", full_page=True)
    finally:
        ctx.close()
