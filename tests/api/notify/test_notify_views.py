"""The bot's conversation endpoints (service token, X-Sender-Id) and the staff takeover:
waiting queue in office hours, the bot silent while a clerk answers, hand back; audited."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from huey import Huey
from huey.consumer import Consumer
from notify.outbox_fixtures import CommittedDb
from notify.outboxkit import bubbles, new_petition, status_is, transcript, wait_for
from sqlalchemy import select
from sqlalchemy.orm import Session
from staff.staffkit import bearer, make_user

from app.audit.models import AuditLog
from app.core.config import settings
from app.core.database import get_db
from app.core.security import mask_name, pseudonym
from app.notify import service as notify_service
from app.notify.hours import office_hours
from app.notify.models import ConversationMessage, Notification, ResidentContact

SERVICE = {"Authorization": f"Service {settings.service_token}"}


def bot(sender: str) -> dict[str, str]:
    """Headers of the action server speaking for one conversation."""
    return SERVICE | {"X-Sender-Id": sender}


def shanghai(*args: int) -> datetime:
    """A moment given in Asia/Shanghai wall time, as UTC."""
    from app.core.workdays import SHANGHAI

    return datetime(*args, tzinfo=SHANGHAI).astimezone(UTC)


@pytest.fixture
def at(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[datetime]]:
    """Pin the notify clock: `at[0] = moment`."""
    moment = [shanghai(2026, 12, 2, 10, 0)]  # a Wednesday, 10:00
    monkeypatch.setattr(notify_service, "clock", lambda: moment[0])
    yield moment


@pytest.mark.parametrize(
    "path,body",
    [
        ("turn", {"channel": "webchat", "text": "你好"}),
        ("notify", {"notify": False}),
        ("handoff", {"channel": "webchat"}),
        ("contact", {"channel": "wechat", "openid": "o-abc"}),
    ],
)
def test_bot_endpoints_need_the_service_token(
    client: TestClient, sqlite_queue: Huey, path: str, body: dict[str, object]
) -> None:
    """A browser (no service token) gets a Chinese 403; a wrong token a 401; no sender a 422."""
    url = f"/api/v1/conversations/{path}"
    refused = client.post(url, json=body, headers={"X-Sender-Id": "web-x"})
    assert refused.status_code == 403
    assert refused.json() == {"code": "service_only", "message": "此接口仅供智能客服调用。"}
    bad = client.post(url, json=body, headers={"Authorization": "Service nope", "X-Sender-Id": "x"})
    assert bad.status_code == 401
    missing = client.post(url, json=body, headers=SERVICE)
    assert missing.status_code == 422 and missing.json()["code"] == "missing_sender"


def test_turn_notify_and_contact(client: TestClient, db: Session, sqlite_queue: Huey) -> None:
    """First turn makes the contact (bot mode, notified); 不用通知我了 turns news off; the
    WeChat channel's contact call stores the openid encrypted."""
    first = client.post(
        "/api/v1/conversations/turn",
        json={"channel": "wechat", "text": "你好"},
        headers=bot("wx-1"),
    )
    assert first.status_code == 200, first.text
    assert first.json() == {"mode": "bot", "staff_name": None, "notify": True, "feedback_for": None}
    off = client.post("/api/v1/conversations/notify", json={"notify": False}, headers=bot("wx-1"))
    assert off.json() == {"notify": False}
    turn = client.post("/api/v1/conversations/turn", json={"text": "嗯"}, headers=bot("wx-1"))
    assert turn.json()["notify"] is False
    saved = client.post(
        "/api/v1/conversations/contact",
        json={"channel": "wechat", "openid": "o-secret-1"},
        headers=bot("wx-1"),
    )
    assert saved.status_code == 204 and saved.content == b""
    contact = db.scalar(select(ResidentContact).where(ResidentContact.sender_id == "wx-1"))
    assert contact is not None and contact.channel == "wechat"
    assert "o-secret-1" not in (contact.address_enc or "")
    # A bot-mode turn is not copied into the live conversation.
    assert db.scalars(select(ConversationMessage)).all() == []


@pytest.mark.parametrize(
    "moment,next_open",
    [
        (shanghai(2026, 12, 2, 8, 0), "今天 9:00"),
        (shanghai(2026, 12, 2, 17, 30), "明天 9:00"),
        (shanghai(2026, 12, 4, 18, 0), "周一 9:00"),
        (shanghai(2026, 12, 5, 10, 0), "周一 9:00"),
        (shanghai(2026, 9, 30, 18, 0), "10月8日（周四）9:00"),  # 国庆
        (shanghai(2026, 10, 9, 18, 0), "明天 9:00"),  # Saturday 10-10 is a working day (调休)
    ],
)
def test_handoff_outside_office_hours_queues_nobody(
    client: TestClient,
    db: Session,
    sqlite_queue: Huey,
    at: list[datetime],
    moment: datetime,
    next_open: str,
) -> None:
    """Outside the hours: when a person is next there, in Chinese; nobody is queued."""
    at[0] = moment
    answer = client.post(
        "/api/v1/conversations/handoff", json={"channel": "webchat"}, headers=bot("web-out")
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "office_hours": False,
        "position": None,
        "estimated_wait_minutes": None,
        "next_open": next_open,
        "hours_text": office_hours().text,
    }
    assert db.scalars(select(ResidentContact).where(ResidentContact.mode == "waiting")).all() == []


def test_handoff_in_office_hours_joins_the_queue(
    client: TestClient, db: Session, sqlite_queue: Huey, at: list[datetime]
) -> None:
    """In office hours: place in the queue and the estimated wait; asking again keeps the place;
    yesterday's queue is gone the next day."""
    per = office_hours().minutes_per_resident
    answers = []
    for sender in ("web-a", "web-b", "web-c"):
        client.post("/api/v1/conversations/turn", json={"text": "转人工"}, headers=bot(sender))
        r = client.post(
            "/api/v1/conversations/handoff", json={"channel": "webchat"}, headers=bot(sender)
        )
        assert r.status_code == 200, r.text
        answers.append(r.json())
    assert [(a["position"], a["estimated_wait_minutes"]) for a in answers] == [
        (0, 0),
        (1, per),
        (2, 2 * per),
    ]
    assert all(a["office_hours"] and a["next_open"] is None for a in answers)
    again = client.post("/api/v1/conversations/handoff", json={}, headers=bot("web-b")).json()
    assert again["position"] == 1
    turn = client.post("/api/v1/conversations/turn", json={"text": "在吗"}, headers=bot("web-b"))
    assert turn.json()["mode"] == "waiting"
    at[0] = shanghai(2026, 12, 3, 9, 30)
    turn = client.post("/api/v1/conversations/turn", json={"text": "在吗"}, headers=bot("web-b"))
    assert turn.json()["mode"] == "bot"


@pytest.fixture
def committed_client(outbox_db: CommittedDb) -> Iterator[TestClient]:
    """A TestClient whose requests commit to the committed database (as in production)."""
    from app.main import app

    def _override() -> Iterator[Session]:
        db = outbox_db.sessions()
        try:
            yield db
            db.commit()
        except Exception:
            db.rollback()
            raise
        finally:
            db.close()

    app.dependency_overrides[get_db] = _override
    with TestClient(app) as c:
        yield c
    app.dependency_overrides.pop(get_db, None)


def test_takeover_staff_message_and_hand_back(
    outbox_db: CommittedDb,
    worker: Consumer,
    committed_client: TestClient,
    at: list[datetime],
) -> None:
    """Waiting resident first in the staff list → takeover → the bot is told `staff` (and the
    resident's words go to the clerk, masked) → the clerk's message reaches the web chat as a
    staff bubble → hand back → `bot`. Audited under a pseudonym, never the sender id."""
    c = committed_client
    sender, key = "web-take-1", transcript(991)
    with outbox_db.sessions() as db:
        notify_service.touch_contact(db, sender_id=sender, channel="webchat", address=key)
        notify_service.touch_contact(db, sender_id="web-idle", channel="webchat", address="b" * 64)
        clerk = make_user(db, "clerk")
        other = make_user(db, "supervisor")
        headers, other_headers = bearer(db, clerk), bearer(db, other)
        officer_headers = bearer(db, make_user(db, "officer"))
        db.commit()
    c.post("/api/v1/conversations/handoff", json={"channel": "webchat"}, headers=bot(sender))

    listed = c.get("/api/v1/staff/conversations", headers=headers)
    assert listed.status_code == 200, listed.text
    conversations = listed.json()["conversations"]
    assert [x["mode"] for x in conversations] == ["waiting", "bot"]
    ckey = conversations[0]["key"]
    assert sender not in listed.text
    assert c.get("/api/v1/staff/conversations", headers=officer_headers).status_code == 403

    taken = c.post(f"/api/v1/staff/conversations/{ckey}/takeover", headers=headers)
    assert taken.status_code == 200, taken.text
    assert taken.json()["mode"] == "staff" and taken.json()["staff_username"] == clerk.username
    clash = c.post(f"/api/v1/staff/conversations/{ckey}/takeover", headers=other_headers)
    assert clash.status_code == 409
    not_holder = c.post(
        f"/api/v1/staff/conversations/{ckey}/messages", json={"text": "您好"}, headers=other_headers
    )
    assert not_holder.status_code == 409

    turn = c.post(
        "/api/v1/conversations/turn",
        json={"channel": "webchat", "text": "我的电话13812345678"},
        headers=bot(sender),
    )
    shown_name = mask_name(clerk.display_name)
    assert turn.json()["mode"] == "staff" and turn.json()["staff_name"] == shown_name

    sent = c.post(
        f"/api/v1/staff/conversations/{ckey}/messages",
        json={"text": "您好，我是信访办工作人员，您的材料已收到。"},
        headers=headers,
    )
    assert sent.status_code == 200, sent.text
    messages = sent.json()["messages"]
    assert [(m["from"], m["text"]) for m in messages] == [
        ("resident", "我的电话138****5678"),
        ("staff", "您好，我是信访办工作人员，您的材料已收到。"),
    ]
    assert messages[0]["at"].endswith("+08:00")
    with outbox_db.sessions() as db:
        nid = db.scalar(select(Notification.id).where(Notification.kind == "staff_message"))
    assert nid is not None
    wait_for(status_is(outbox_db.sessions, nid, "delivered"))
    [bubble] = bubbles(outbox_db.sessions, key)
    assert (bubble.role, bubble.staff_name) == ("staff", shown_name)

    back = c.post(f"/api/v1/staff/conversations/{ckey}/handback", headers=headers)
    assert back.status_code == 200 and back.json()["mode"] == "bot"
    turn = c.post("/api/v1/conversations/turn", json={"text": "谢谢"}, headers=bot(sender))
    assert turn.json()["mode"] == "bot"
    detail = c.get(f"/api/v1/staff/conversations/{ckey}", headers=headers).json()
    assert len(detail["messages"]) == 2  # after hand back the bot's turns are not copied
    assert c.get("/api/v1/staff/conversations/999999", headers=headers).status_code == 404

    with outbox_db.sessions() as db:
        audit = db.scalars(
            select(AuditLog).where(AuditLog.entity_type == "conversation").order_by(AuditLog.id)
        ).all()
    assert [a.action for a in audit] == [
        "conversation.takeover",
        "conversation.message",
        "conversation.handback",
    ]
    assert {a.entity_id for a in audit} == {pseudonym(sender)}
    assert all(sender not in str(a.after) for a in audit)


def test_feedback_for_names_the_closed_petition_once_its_news_was_delivered(
    outbox_db: CommittedDb, worker: Consumer, committed_client: TestClient
) -> None:
    """feedback_for: the `closed` notification (the satisfaction question) was delivered and
    the resident has not answered it yet."""
    sender, key = "web-fb-1", transcript(992)
    with outbox_db.sessions() as db:
        notify_service.touch_contact(db, sender_id=sender, channel="webchat", address=key)
        petition = new_petition(db, sender_id=sender, status="closed")
        row = notify_service.add_notification(db, petition=petition, kind="closed", text="已办结")
        db.commit()
        assert row is not None
        nid, number, pid = row.id, petition.number, petition.id
    wait_for(status_is(outbox_db.sessions, nid, "delivered"))
    turn = committed_client.post("/api/v1/conversations/turn", json={}, headers=bot(sender))
    assert turn.json()["feedback_for"] == number
    with outbox_db.sessions() as db:
        notify_service.reply_received(db, petition_id=pid)
        db.commit()
    turn = committed_client.post("/api/v1/conversations/turn", json={}, headers=bot(sender))
    assert turn.json()["feedback_for"] is None
