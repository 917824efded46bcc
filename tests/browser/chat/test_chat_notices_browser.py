"""The web chat receives news of the resident's petition and a clerk's messages live, in headless
Chromium at 360×640: written into the api's database as the notifier does (deliver_notice), shown
without a reload, each once (also when delivered twice or while a send is in flight), and once
again after a reload; a taken-over bot's silence shows no error; polling slows when hidden."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_rasa import FakeRasaServer
from playwright.sync_api import Page, expect
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.chat import service as chat_service
from app.core.database import make_engine

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOTICE = (
    "您的信访 XF-20261123-0007 有了新进展：已转交市住建局办理，"
    "承办人会在12月8日前给您答复。如有新情况，也可以在这里留言。"
)
STAFF = "您好，我是信访办的工作人员。您反映的消防验收问题我已经联系住建局，今天下班前给您回复。"
STAFF_NAME = "工作人员 李**"
# Poll every ~4 s while visible: allow one missed poll.
LIVE_MS = 12_000


@pytest.fixture(scope="module")
def api_db(chat_db: Path, api_url: str) -> Iterator[Engine]:
    """An engine on the api's own SQLite file (the api is running on it)."""
    engine = make_engine(f"sqlite:///{chat_db}")
    yield engine
    engine.dispose()


_ids = iter(range(10_000, 20_000))


def deliver(
    engine: Engine,
    page: Page,
    role: str,
    text: str,
    notification_id: int | None = None,
    staff_name: str | None = None,
) -> tuple[int, bool]:
    """Deliver a notice or staff message into this page's conversation and commit, as the
    notifier's worker does; (notification id, inserted now)."""
    cookie = next(c for c in page.context.cookies() if c["name"] == chat_service.COOKIE_NAME)
    key = chat_service.transcript_key(chat_service.read_conversation(cookie["value"]))
    nid = notification_id if notification_id is not None else next(_ids)
    with Session(engine) as db:
        inserted = chat_service.deliver_notice(
            db,
            transcript_key=key,
            notification_id=nid,
            role=role,
            text=text,
            staff_name=staff_name,
        )
        db.commit()
    return nid, inserted


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


def no_horizontal_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"page is {width}px wide at a 360px viewport"


def set_visibility(page: Page, state: str) -> None:
    """Make the page `hidden` (another app in front) or `visible` again, as the browser does."""
    page.evaluate(
        """(state) => {
            const get = () => state;
            Object.defineProperty(document, "visibilityState", {configurable: true, get});
            document.dispatchEvent(new Event("visibilitychange"));
        }""",
        state,
    )


def ids_on_page(page: Page) -> list[str]:
    return page.eval_on_selector_all("[data-id]", "els => els.map(e => e.dataset.id)")


def test_notice_and_staff_message_arrive_live_once(
    new_phone: Any, api_url: str, api_db: Engine, rasa_server: FakeRasaServer, shot: Any
) -> None:
    page = open_chat(new_phone, api_url)
    page.get_by_role("button", name="查信访进度").click()
    expect(bot_bubbles(page)).to_have_count(2)
    expect(page.locator("#staff-bar")).to_be_hidden()

    # A state change of the petition: a card titled 信访进展, without a reload.
    notice_id, inserted = deliver(api_db, page, "notice", NOTICE)
    assert inserted
    cards = page.locator(".row.notice-row .card")
    expect(cards).to_have_count(1, timeout=LIVE_MS)
    expect(cards.locator(".card-title")).to_have_text("信访进展")
    expect(cards.locator(".card-text")).to_have_text(NOTICE)
    expect(cards).to_be_in_viewport()
    # The notice card is inside the aria-live log, so screen readers announce it.
    assert page.locator("#log[aria-live=polite] .notice-row").count() == 1
    no_horizontal_scroll(page)
    shot(page, "chat_notice_360")

    # A clerk takes over and writes: the name above the bubble, the bar under the title.
    staff_id, inserted = deliver(api_db, page, "staff", STAFF, staff_name=STAFF_NAME)
    assert inserted
    staff = page.locator(".row.staff")
    expect(staff).to_have_count(1, timeout=LIVE_MS)
    expect(staff.locator(".name")).to_have_text(STAFF_NAME)
    expect(staff.locator(".bubble")).to_have_text(STAFF)
    expect(staff.locator(".avatar")).to_have_text("工")
    bar = page.locator("#staff-bar")
    expect(bar).to_be_visible()
    expect(bar).to_have_text("工作人员正在为您解答")
    expect(bar).to_have_attribute("role", "status")
    no_horizontal_scroll(page)
    shot(page, "chat_staff_360")

    # Delivered again (at least once): nothing new in the database, nothing new on the page.
    assert deliver(api_db, page, "notice", NOTICE, notification_id=notice_id) == (notice_id, False)
    assert (
        deliver(api_db, page, "staff", STAFF, notification_id=staff_id, staff_name=STAFF_NAME)[1]
        is False
    )

    # The resident answers while the bot is silent (taken over): no error, no apology.
    rasa_server.fake.takeover = "marker"
    try:
        type_and_send(page, "好的，谢谢您，我等您消息")
        expect(page.locator(".row.user .bubble").last).to_have_text("好的，谢谢您，我等您消息")
        expect(page.locator(".typing-row")).to_have_count(0)
    finally:
        rasa_server.fake.takeover = None
    expect(page.locator(".notice")).to_have_count(0)
    expect(page.locator(".row.user.failed")).to_have_count(0)
    expect(bot_bubbles(page)).to_have_count(2)
    expect(bar).to_be_visible()

    # A notice delivered while a send is in flight, so a poll races the send: all once.
    rasa_server.fake.delay_all = 5.0
    try:
        page.get_by_role("button", name="要带什么材料").click()
        expect(page.locator(".typing-row")).to_be_visible()
        deliver(api_db, page, "notice", "您的信访已办结，请对办理结果进行评价。")
        expect(bot_bubbles(page)).to_have_count(3, timeout=15_000)
    finally:
        rasa_server.fake.delay_all = 0.0
    expect(cards).to_have_count(2, timeout=LIVE_MS)
    # The bot answered again: the clerk's bar goes.
    expect(bar).to_be_hidden()
    page.wait_for_timeout(5_000)  # at least one more poll
    ids = ids_on_page(page)
    assert len(ids) == len(set(ids)) == 8, ids  # 3 user, 2 bot, 2 notices, 1 staff
    expect(page.locator(".row.user")).to_have_count(3)
    expect(cards).to_have_count(2)
    expect(staff).to_have_count(1)
    texts = page.locator(".bubble, .card-text").all_inner_texts()
    assert texts.count(STAFF) == 1 and texts.count(NOTICE) == 1

    # After a reload: each once, in the order they were stored.
    page.reload()
    expect(bot_bubbles(page).first).to_contain_text("我是房本助手")
    expect(cards).to_have_count(2)
    expect(staff).to_have_count(1)
    expect(page.locator(".row.user")).to_have_count(3)
    expect(bot_bubbles(page)).to_have_count(3)
    after = ids_on_page(page)
    assert sorted(after, key=int) == after and sorted(after) == sorted(ids)
    expect(bar).to_be_hidden()
    no_horizontal_scroll(page)


def sender_of(page: Page) -> str:
    cookie = next(c for c in page.context.cookies() if c["name"] == chat_service.COOKIE_NAME)
    return chat_service.rasa_sender_id(chat_service.read_conversation(cookie["value"]))


def test_a_clerk_takes_over_then_hands_back(
    new_phone: Any, api_url: str, api_db: Engine, rasa_server: FakeRasaServer, shot: Any
) -> None:
    """The real takeover: the contact the chat registered is taken by a clerk in the api's
    database, the bot goes silent (the REST channel answers nothing), the bar shows at once."""
    from app.notify import service as notify_service
    from app.staff.models import StaffUser

    page = open_chat(new_phone, api_url)
    page.get_by_role("button", name="转人工").click()
    expect(bot_bubbles(page)).to_have_count(2)
    bar = page.locator("#staff-bar")
    expect(bar).to_be_hidden()
    sender = sender_of(page)
    with Session(api_db) as db:
        clerk = StaffUser(
            username=f"clerk_{next(_ids)}",
            display_name="王芳",
            password_hash="x",
            role="clerk",
            department=None,
            active=True,
        )
        db.add(clerk)
        db.flush()
        notify_service.take_over(db, sender_id=sender, user=clerk)
        db.commit()
    rasa_server.fake.takeover = "silent"
    try:
        type_and_send(page, "我的房子在观象山庄，想问问什么时候能办证")
        expect(bar).to_be_visible()
        expect(page.locator(".typing-row")).to_have_count(0)
        expect(page.locator(".notice")).to_have_count(0)
        deliver(
            api_db,
            page,
            "staff",
            "您好，这里是人工客服。观象山庄的消防验收正在复查，预计本月底有结果。",
            staff_name="王*",  # what the notifier passes: the family name only
        )
        expect(page.locator(".row.staff")).to_have_count(1, timeout=LIVE_MS)
        expect(page.locator(".row.staff .name")).to_have_text("工作人员 王*")
        page.reload()
        expect(page.locator(".row.staff .name")).to_have_text("工作人员 王*")
        expect(bar).to_be_visible()
        page.get_by_role("button", name="大字").click()
        no_horizontal_scroll(page)
        shot(page, "chat_staff_big_360")
        page.get_by_role("button", name="标准字").click()
    finally:
        rasa_server.fake.takeover = None
    # Handed back: the bot answers again and the bar goes.
    with Session(api_db) as db:
        clerk = db.query(StaffUser).filter_by(display_name="王芳").order_by(StaffUser.id).all()[-1]
        notify_service.hand_back(db, sender_id=sender, user=clerk)
        db.commit()
    page.get_by_role("button", name="要带什么材料").click()
    expect(bot_bubbles(page)).to_have_count(3)
    expect(bar).to_be_hidden()


def test_polling_slows_when_hidden_and_catches_up_when_shown(
    new_phone: Any, api_url: str, api_db: Engine
) -> None:
    page = open_chat(new_phone, api_url)
    polls: list[float] = []
    page.on(
        "request",
        lambda r: polls.append(time.monotonic()) if "/chat/api/history?after=" in r.url else None,
    )
    page.wait_for_timeout(9_000)
    assert 2 <= len(polls) <= 4, polls  # every ~4 s while visible
    # The resident switches to another app: the page is hidden.
    set_visibility(page, "hidden")
    polls.clear()
    deliver(api_db, page, "notice", "您的信访已转交区不动产登记中心。")
    page.wait_for_timeout(9_000)
    assert polls == [], polls  # the next poll is 30 s away
    expect(page.locator(".notice-row")).to_have_count(0)
    # Back to the page: fetched at once, not after the 30 s back-off.
    set_visibility(page, "visible")
    expect(page.locator(".notice-row")).to_have_count(1, timeout=2_000)
