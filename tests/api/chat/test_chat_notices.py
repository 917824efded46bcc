"""Notices and staff messages in the web chat: delivered once per notification id (also when two
workers race, on SQLite and PostgreSQL), polled with `history?after=`, and a taken-over bot's
silence passed on quietly."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fake_rasa import FakeRasa
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.chat import service as chat_service
from app.chat.models import ChatMessage

H = {"X-Chat-Client": "web"}


def open_chat(client: TestClient) -> str:
    """Load the page like a browser; the transcript key of the conversation it was given."""
    assert client.get("/chat").status_code == 200
    token = client.cookies.get(chat_service.COOKIE_NAME)
    return chat_service.transcript_key(chat_service.read_conversation(token))


def say(client: TestClient, text: str) -> dict:
    r = client.post("/chat/api/messages", json={"text": text}, headers=H)
    assert r.status_code == 200, r.text
    return r.json()


def history(client: TestClient, after: int | None = None) -> list[dict]:
    params = {} if after is None else {"after": after}
    r = client.get("/chat/api/history", params=params, headers=H)
    assert r.status_code == 200, r.text
    return r.json()["messages"]


def count_rows(db: Session, notification_id: int) -> int:
    return db.scalar(
        select(func.count())
        .select_from(ChatMessage)
        .where(ChatMessage.notification_id == notification_id)
    )


NOTICE = "您的信访 XF-20261123-0007 已转交住建局办理，预计12月8日前答复。"


def test_deliver_notice_inserts_once_per_notification_id(db: Session) -> None:
    key = chat_service.transcript_key("a" * 24)
    assert chat_service.deliver_notice(
        db, transcript_key=key, notification_id=41, role="notice", text=NOTICE
    )
    # A retried delivery (at least once) of the same notification: no second bubble.
    assert not chat_service.deliver_notice(
        db, transcript_key=key, notification_id=41, role="notice", text=NOTICE + "（重发）"
    )
    assert count_rows(db, 41) == 1
    row = db.scalars(select(ChatMessage).where(ChatMessage.notification_id == 41)).one()
    assert (row.conversation, row.role, row.text, row.staff_name) == (key, "notice", NOTICE, None)
    # A different notification is a different bubble.
    assert chat_service.deliver_notice(
        db, transcript_key=key, notification_id=42, role="notice", text="第二条"
    )


def test_deliver_notice_masks_personal_data_and_keeps_the_shown_staff_name(db: Session) -> None:
    key = chat_service.transcript_key("b" * 24)
    assert chat_service.deliver_notice(
        db,
        transcript_key=key,
        notification_id=7,
        role="staff",
        text="已核对您的电话13812345678和身份证110101199003071234，马上为您处理。",
        staff_name="工作人员 李**",
    )
    row = db.scalars(select(ChatMessage).where(ChatMessage.notification_id == 7)).one()
    assert row.text == "已核对您的电话138****5678和身份证**************1234，马上为您处理。"
    assert row.staff_name == "工作人员 李**"


@pytest.mark.parametrize("role", ["bot", "user", "system", ""])
def test_deliver_notice_refuses_other_roles(db: Session, role: str) -> None:
    with pytest.raises(ValueError):
        chat_service.deliver_notice(
            db, transcript_key="k" * 64, notification_id=1, role=role, text="x"
        )
    assert count_rows(db, 1) == 0


def test_history_after_returns_only_newer_bubbles_in_the_same_shape(
    client: TestClient, rasa: FakeRasa, db: Session
) -> None:
    key = open_chat(client)
    say(client, "查房本进度")
    before = history(client)
    assert [m["role"] for m in before] == ["user", "bot"]
    last = before[-1]["id"]
    assert history(client, after=last) == []
    chat_service.deliver_notice(
        db, transcript_key=key, notification_id=501, role="notice", text=NOTICE
    )
    chat_service.deliver_notice(
        db,
        transcript_key=key,
        notification_id=502,
        role="staff",
        text="您好，我是信访办工作人员，您的情况我来跟进。",
        staff_name="工作人员 李**",
    )
    # Another conversation's notice never shows here.
    chat_service.deliver_notice(
        db,
        transcript_key=chat_service.transcript_key("z" * 24),
        notification_id=503,
        role="notice",
        text="别人的信访",
    )
    new = history(client, after=last)
    assert [(m["role"], m["text"], m["staff_name"], m["buttons"]) for m in new] == [
        ("notice", NOTICE, None, []),
        ("staff", "您好，我是信访办工作人员，您的情况我来跟进。", "工作人员 李**", []),
    ]
    assert set(new[0]) == {"id", "role", "text", "buttons", "staff_name", "at"}
    assert set(before[0]) == set(new[0])
    assert before[0]["staff_name"] is None and before[1]["staff_name"] is None
    assert new[0]["id"] > last and new[1]["id"] > new[0]["id"]
    assert history(client, after=new[0]["id"]) == new[1:]
    assert history(client, after=0) == before + new
    # The full history (a reload) shows them in order, once.
    assert [m["role"] for m in history(client)] == ["user", "bot", "notice", "staff"]
    # The resident writes again: polling from the staff message returns just that turn.
    say(client, "好的，谢谢")
    assert [m["role"] for m in history(client, after=new[1]["id"])] == ["user", "bot"]


@pytest.mark.parametrize("after", ["-1", "abc", str(2**31)])
def test_history_after_must_be_an_id(client: TestClient, after: str) -> None:
    open_chat(client)
    r = client.get("/chat/api/history", params={"after": after}, headers=H)
    assert r.status_code == 422


def test_history_after_still_needs_the_signed_cookie(client: TestClient) -> None:
    r = client.get("/chat/api/history", params={"after": 0}, headers=H)
    assert r.status_code == 403 and r.json()["code"] == "bad_conversation"


def test_two_workers_racing_leave_one_bubble(committing_sessions: sessionmaker[Session]) -> None:
    """Worker A has inserted but not committed; worker B delivering the same notification
    waits for A, then finds the row and inserts nothing (no error)."""
    key = chat_service.transcript_key("c" * 24)
    a, b = committing_sessions(), committing_sessions()
    try:
        assert chat_service.deliver_notice(
            a, transcript_key=key, notification_id=900, role="notice", text=NOTICE
        )
        result: dict[str, object] = {}

        def worker_b() -> None:
            try:
                result["inserted"] = chat_service.deliver_notice(
                    b, transcript_key=key, notification_id=900, role="notice", text=NOTICE
                )
                b.commit()
            except Exception as exc:  # pragma: no cover - reported below
                result["error"] = exc

        t = threading.Thread(target=worker_b)
        t.start()
        time.sleep(0.5)
        assert t.is_alive(), "B should wait for A's uncommitted row"
        a.commit()
        t.join(30)
        assert not t.is_alive()
        assert result == {"inserted": False}
    finally:
        a.close()
        b.close()
    with committing_sessions() as check:
        assert count_rows(check, 900) == 1


def test_a_racing_worker_inserts_when_the_first_rolls_back(
    committing_sessions: sessionmaker[Session],
) -> None:
    key = chat_service.transcript_key("d" * 24)
    a, b = committing_sessions(), committing_sessions()
    try:
        assert chat_service.deliver_notice(
            a, transcript_key=key, notification_id=901, role="notice", text=NOTICE
        )
        result: dict[str, bool] = {}

        def worker_b() -> None:
            result["inserted"] = chat_service.deliver_notice(
                b, transcript_key=key, notification_id=901, role="notice", text=NOTICE
            )
            b.commit()

        t = threading.Thread(target=worker_b)
        t.start()
        time.sleep(0.5)
        a.rollback()  # A's worker was killed mid-delivery
        t.join(30)
        assert result == {"inserted": True}
    finally:
        a.close()
        b.close()
    with committing_sessions() as check:
        assert count_rows(check, 901) == 1


def test_many_concurrent_deliveries_insert_exactly_once(
    committing_sessions: sessionmaker[Session],
) -> None:
    key = chat_service.transcript_key("e" * 24)
    start = threading.Barrier(8)

    def deliver(_: int) -> bool:
        with committing_sessions() as s:
            start.wait()
            inserted = chat_service.deliver_notice(
                s,
                transcript_key=key,
                notification_id=902,
                role="staff",
                text="您好",
                staff_name="工作人员 王*",
            )
            s.commit()
            return inserted

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(deliver, range(8)))
    assert sorted(results) == [False] * 7 + [True]
    with committing_sessions() as check:
        assert count_rows(check, 902) == 1


@pytest.mark.parametrize("mode", ["silent", "marker"])
def test_a_silent_bot_or_its_takeover_marker_is_no_error(
    client: TestClient, rasa: FakeRasa, mode: str
) -> None:
    open_chat(client)
    say(client, "查房本进度")
    rasa.takeover = mode
    out = say(client, "我家的房本到底什么时候能办")
    assert out["replies"] == []
    # The marker says a clerk is answering; silence alone does not (the contact is in `bot`).
    assert out["takeover"] is (mode == "marker")
    assert out["user"]["text"] == "我家的房本到底什么时候能办"
    # The resident's message is in the transcript; no bubble for the marker, no error text.
    assert [m["role"] for m in history(client)] == ["user", "bot", "user"]
    rasa.takeover = None
    assert say(client, "查房本进度")["takeover"] is False


def test_a_conversation_taken_over_by_a_clerk_says_so(
    client: TestClient, rasa: FakeRasa, db: Session
) -> None:
    from app.notify import service as notify_service
    from app.staff.models import StaffUser

    open_chat(client)
    say(client, "转人工")
    sender = rasa.received[-1][0]
    clerk = StaffUser(
        username="clerk_chat_1",
        display_name="李明",
        password_hash="x",
        role="clerk",
        department=None,
        active=True,
    )
    db.add(clerk)
    db.flush()
    notify_service.take_over(db, sender_id=sender, user=clerk)
    rasa.takeover = "silent"  # the REST channel drops the marker: an empty answer
    out = say(client, "您好，我等着呢")
    assert out == {**out, "replies": [], "takeover": True}
    notify_service.hand_back(db, sender_id=sender, user=clerk)
    rasa.takeover = None
    assert say(client, "查房本进度")["takeover"] is False


def test_every_message_registers_the_web_chat_contact(
    client: TestClient, rasa: FakeRasa, db: Session
) -> None:
    """The notifier reaches this conversation through its contact: the sender id Rasa sees,
    channel webchat, the transcript key as the (encrypted) address."""
    from app.notify import service as notify_service
    from app.notify.models import decrypt_address

    key = open_chat(client)
    say(client, "查房本进度")
    sender = rasa.received[-1][0]
    contact = notify_service.get_contact(db, sender)
    assert contact is not None
    assert contact.channel == "webchat"
    assert contact.address_enc and key not in contact.address_enc
    assert decrypt_address(contact.address_enc) == key
    first = contact.last_inbound_at
    assert first is not None
    say(client, "观象山庄3号楼2单元501")
    db.refresh(contact)
    assert contact.last_inbound_at is not None and contact.last_inbound_at >= first
    # Rasa down: the message is not stored, and a new conversation gets no contact from it.
    from app.main import app

    rasa.fail_status = 500
    with TestClient(app) as other:
        open_chat(other)
        cid = chat_service.read_conversation(other.cookies.get(chat_service.COOKIE_NAME))
        r = other.post("/chat/api/messages", json={"text": "你好"}, headers=H)
        assert r.status_code == 503
    assert notify_service.get_contact(db, chat_service.rasa_sender_id(cid)) is None
