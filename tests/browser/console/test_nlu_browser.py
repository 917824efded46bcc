"""The maintainers' inbox in headless Chromium at 1366×768 (issue 12): a maintainer lands on the
inbox, sees only masked text with its conversation, marks an entity span with the mouse and
saves the annotation; a clerk flags a resident's turn from a petition page; the redacted
conversation browser. Each step leaves a screenshot under tests/artifacts/browser-console/."""

from __future__ import annotations

import secrets
import uuid

import httpx
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONE = "13912345678"
TEXT = f"俺家在幸福里小区8号楼 电话{PHONE} 房本到底啥时候能下来"
ADDRESS = "幸福里小区8号楼"


@pytest.fixture(scope="module")
def nlu_accounts(console_url: str, accounts: dict[str, tuple[str, str]]) -> dict[str, tuple]:
    """A maintainer and a clerk of this module's own (the shared accounts' logins per minute
    are spent by the other console tests), created by the admin over the staff API."""
    username, password = accounts["admin"]
    token = httpx.post(
        f"{console_url}/api/v1/auth/token",
        data={"username": username, "password": password},
        timeout=10,
    )
    token.raise_for_status()
    admin = {"Authorization": f"Bearer {token.json()['access_token']}"}
    made = {}
    for role in ("maintainer", "clerk"):
        name, secret = f"{role}-{uuid.uuid4().hex[:6]}", secrets.token_urlsafe(12)
        r = httpx.post(
            f"{console_url}/api/v1/staff/users",
            json={"username": name, "password": secret, "role": role},
            headers=admin,
            timeout=10,
        )
        assert r.status_code == 201, r.text
        made[role] = (name, secret)
    return made


def _login(browser, console_url: str, account: tuple[str, str]):
    ctx = browser.new_context(
        viewport={"width": 1366, "height": 768}, locale="zh-CN", base_url=console_url
    )
    page = ctx.new_page()
    page.set_default_timeout(15_000)
    page.goto("/console")
    page.fill("input[name=username]", account[0])
    page.fill("input[name=password]", account[1])
    page.click("button[type=submit]")
    page.wait_for_selector("header nav")
    return ctx, page


def _report(console_url: str, text: str, **fields) -> int:
    """The bot's report of a message it did not understand."""
    from app.core.config import settings

    sender = "web-" + uuid.uuid4().hex
    body = {
        "text": text,
        "predicted_intent": "ask_certificate_status",
        "confidence": 0.41,
        "reason": "low_confidence",
        "channel": "webchat",
        "project_code": "QS001",
        "context": [
            {"from": "resident", "text": "你好"},
            {"from": "bot", "text": "您好，我是房本助手，可以帮您查房本办到哪一步。"},
            {"from": "resident", "text": text},
            {"from": "bot", "text": "抱歉，这句我没太看懂。"},
        ],
        **fields,
    }
    headers = {"Authorization": f"Service {settings.service_token}", "X-Sender-Id": sender}
    r = httpx.post(f"{console_url}/api/v1/nlu/observations", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _select(page, item_id: int, start: int, end: int) -> None:
    """Drag the mouse over characters start..end of the item's message, as a person does."""
    box = page.evaluate(
        """([id, start, end]) => {
            const el = document.querySelector(`.nlu-text[data-item="${id}"]`);
            el.scrollIntoView({block: "center"});
            const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
            let seen = 0, node, a = null, b = null;
            while ((node = walker.nextNode())) {
                const n = node.textContent.length;
                if (a === null && start < seen + n) a = [node, start - seen];
                if (b === null && end <= seen + n) { b = [node, end - seen]; break; }
                seen += n;
            }
            const first = document.createRange();
            first.setStart(a[0], a[1]); first.setEnd(a[0], a[1] + 1);
            const last = document.createRange();
            last.setStart(b[0], b[1] - 1); last.setEnd(b[0], b[1]);
            const r1 = first.getBoundingClientRect(), r2 = last.getBoundingClientRect();
            return {x1: r1.left + 1, y1: r1.top + r1.height / 2,
                    x2: r2.right - 1, y2: r2.top + r2.height / 2};
        }""",
        [item_id, start, end],
    )
    page.mouse.move(box["x1"], box["y1"])
    page.mouse.down()
    page.mouse.move((box["x1"] + box["x2"]) / 2, box["y2"], steps=5)
    page.mouse.move(box["x2"], box["y2"], steps=5)
    page.mouse.up()


def test_maintainer_annotates_a_span_with_the_mouse(browser, console_url, nlu_accounts, shot):
    """The inbox shows the masked message with its conversation; dragging over the address
    fills start/end, the annotation is saved and the span highlighted."""
    item_id = _report(console_url, TEXT)
    _report(
        console_url,
        "物业费一年交多少啊",
        reason="out_of_scope",
        predicted_intent="out_of_scope",
        confidence=0.93,
    )
    ctx, page = _login(browser, console_url, nlu_accounts["maintainer"])
    try:
        assert page.url.endswith("/console/nlu")
        nav = page.inner_text("header nav")
        assert "收件箱" in nav and "信访件" not in nav and "项目与卡点" not in nav
        body = page.inner_text("main")
        assert PHONE not in page.content() and "139****5678" in body
        card = page.locator(f"#item-{item_id}")
        assert "置信度低" in card.inner_text() and "0.41" in card.inner_text()
        assert "您好，我是房本助手" in card.locator(".nlu-context").inner_text()
        shot(page, "nlu-01-inbox")

        start = TEXT.index(ADDRESS)
        _select(page, item_id, start, start + len(ADDRESS))
        form = page.locator(f"form.annotate[data-item='{item_id}']")
        assert form.locator("input[name=start]").input_value() == str(start)
        assert form.locator("input[name=end]").input_value() == str(start + len(ADDRESS))
        assert ADDRESS in form.locator(".picked").inner_text()
        form.locator("select[name=entity]").select_option("address")
        form.locator("select[name=intent]").select_option("ask_certificate_status")
        shot(page, "nlu-02-span-selected")
        form.locator("button[value=annotate]").click()
        assert "标注已保存" in page.inner_text(".flash.ok")
        page.goto("/console/nlu?status=annotated")
        card = page.locator(f"#item-{item_id}")
        assert card.locator("mark[data-entity=address]").inner_text() == ADDRESS
        assert "已标注为" in card.inner_text()
        shot(page, "nlu-03-span-annotated")

        page.goto("/console/nlu/conversations")
        assert page.locator("table.list tbody tr").count() >= 2
        page.locator("table.list a.button").first.click()
        assert "生成测试用例" in page.inner_text("main")
        assert PHONE not in page.content()
        shot(page, "nlu-04-conversation")
        page.goto("/console/petitions")
        assert page.locator(".flash.err, h1").first.inner_text()
        assert "没有这项权限" in page.inner_text("main")
    finally:
        ctx.close()


def test_clerk_flags_a_turn_for_the_maintainers(browser, console_url, nlu_accounts, shot):
    """「标记给维护员」 beside a resident's turn on the petition page; the maintainer finds it."""
    conversation = [
        {"at": "2026-11-23T02:00:00Z", "from": "resident", "text": "俺那个证咋整 急死了"},
        {"at": "2026-11-23T02:00:02Z", "from": "bot", "text": "抱歉，这句我没太看懂。"},
        {"at": "2026-11-23T02:00:09Z", "from": "resident", "text": "我要信访"},
    ]
    r = httpx.post(
        f"{console_url}/api/v1/petitions",
        json={
            "person_name": "赵大娘",
            "phone": "13700004444",
            "project_code": "QS001",
            "description": "交房六年办不了房本。",
            "consent": True,
            "channel": "webchat",
            "conversation": conversation,
        },
        timeout=10,
    )
    r.raise_for_status()
    number = r.json()["number"]
    ctx, page = _login(browser, console_url, nlu_accounts["clerk"])
    try:
        page.goto(f"/console/petitions/{number}")
        card = page.locator("#conversation")
        assert card.locator("form.flag").count() == 2  # resident turns only
        card.locator("form.flag button").first.click()
        assert "已标记给模型维护员" in page.inner_text(".flash.ok")
        page.evaluate("window.scrollTo(0, 0)")
        shot(page, "nlu-05-flagged-from-petition")
    finally:
        ctx.close()
    ctx, page = _login(browser, console_url, nlu_accounts["maintainer"])
    try:
        page.goto("/console/nlu?reason=staff_flag")
        assert "俺那个证咋整 急死了" in page.inner_text("main")
        assert "赵大娘" not in page.content() and "13700004444" not in page.content()
    finally:
        ctx.close()
