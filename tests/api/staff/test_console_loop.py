"""Issue 11 in the console, through its forms (both backends): a clerk approves what the
resident sees of an answer; a resident waiting for a person shows in 人工对话, a clerk takes the
conversation over, writes, hands back — each step audited; undeliverable notifications are
listed and can be sent again."""

from __future__ import annotations

import re

from sqlalchemy import select
from staff.staffkit import make_user
from staff.test_staff_auth import console_login, page_csrf

from app.audit.models import AuditLog
from app.core.config import settings
from app.notify import service as notify
from app.notify.models import ConversationMessage, Notification, ResidentContact
from app.petition.models import Petition

SENDER = "web-" + "c" * 32


def _version(html: str) -> str:
    return re.search(r'name="version" value="(\d+)"', html).group(1)


def _post(client, url: str, data: dict, page_html: str):
    return client.post(
        url, data=data | {"csrf_token": page_csrf(page_html)}, follow_redirects=False
    )


def _service() -> dict[str, str]:
    return {"Authorization": f"Service {settings.service_token}", "X-Sender-Id": SENDER}


def _file(client) -> str:
    r = client.post(
        "/api/v1/petitions",
        json={
            "person_name": "王五",
            "phone": "13900002222",
            "address": "观象山庄3号楼2单元501",
            "description": "交房多年还没有房本。",
            "consent": True,
            "channel": "webchat",
        },
        headers=_service(),
    )
    assert r.status_code == 201, r.text
    return str(r.json()["number"])


def test_clerk_edits_and_approves_the_resident_text(client, db):
    clerk = make_user(db, "clerk")
    officer = make_user(db, "officer", department="housing_bureau")
    notify.touch_contact(db, sender_id=SENDER, channel="webchat", address="t" * 64)
    db.commit()
    number = _file(client)
    url = f"/console/petitions/{number}"
    console_login(client, clerk.username)
    page = client.get(url)
    _post(
        client,
        f"{url}/assign",
        {"departments": ["housing_bureau"], "version": _version(page.text)},
        page.text,
    )

    client.cookies.clear()
    console_login(client, officer.username)
    page = client.get(url)
    r = _post(
        client,
        f"{url}/answer",
        {
            "answer": "经查，开发企业欠缴配套费，已下达催缴通知书（内部文号2026-88）。",
            "department": "housing_bureau",
            "version": _version(page.text),
        },
        page.text,
    )
    assert r.status_code == 303
    page = client.get(url)
    assert "待审核" in page.text and "审核通过并发送" not in page.text  # officers cannot approve

    client.cookies.clear()
    console_login(client, clerk.username)
    page = client.get(url)
    assert "审核通过并发送" in page.text
    r = _post(
        client,
        f"{url}/answers/housing_bureau/approve",
        {"resident_text": "开发企业欠缴配套费，已要求限期补缴。", "version": _version(page.text)},
        page.text,
    )
    assert r.status_code == 303, r.text
    page = client.get(url)
    assert "已发给信访人" in page.text
    seen = client.post(
        "/api/v1/petitions/lookup",
        json={"petition_number": number, "phone": "13900002222"},
    ).json()
    assert [a["text"] for a in seen["answers"]] == ["开发企业欠缴配套费，已要求限期补缴。"]
    assert "内部文号" not in str(seen)
    petition = db.scalar(select(Petition).where(Petition.number == number))
    kinds = [
        n.kind
        for n in db.scalars(select(Notification).where(Notification.petition_id == petition.id))
    ]
    assert kinds == ["state", "answer"]
    actions = [r.action for r in db.scalars(select(AuditLog).where(AuditLog.entity_id == number))]
    assert "petition.approve_answer" in actions


def test_waiting_resident_is_taken_over_answered_and_handed_back(client, db):
    clerk = make_user(db, "clerk")
    db.commit()
    # The resident asks for a person in office hours (or not: the queue is what we test here).
    contact = notify.touch_contact(db, sender_id=SENDER, channel="webchat", address="t" * 64)
    contact.mode = "waiting"
    contact.waiting_since = contact.last_inbound_at
    db.commit()
    console_login(client, clerk.username)
    listing = client.get("/console/conversations")
    assert listing.status_code == 200 and "等待人工" in listing.text
    badge = client.get("/console/conversations/badge")
    assert ">1<" in badge.text

    url = f"/console/conversations/{contact.id}"
    page = client.get(url)
    assert "接管对话" in page.text
    r = _post(client, f"{url}/takeover", {}, page.text)
    assert r.status_code == 303
    db.expire_all()
    assert db.get(ResidentContact, contact.id).mode == "staff"

    # The bot's next turn is told to stay silent, and the resident's words reach the clerk.
    turn = client.post(
        "/api/v1/conversations/turn",
        json={"channel": "webchat", "text": "你好，有人吗"},
        headers=_service(),
    )
    assert turn.json()["mode"] == "staff"
    assert "你好，有人吗" in client.get(f"{url}/messages").text

    page = client.get(url)
    r = _post(client, f"{url}/messages", {"text": "您好，我是工作人员，正在帮您查。"}, page.text)
    assert r.status_code == 303
    staff_notes = list(db.scalars(select(Notification).where(Notification.kind == "staff_message")))
    assert [n.text for n in staff_notes] == ["您好，我是工作人员，正在帮您查。"]
    said = [m.sender for m in db.scalars(select(ConversationMessage))]
    assert said == ["resident", "staff"]

    page = client.get(url)
    r = _post(client, f"{url}/handback", {}, page.text)
    assert r.status_code == 303
    db.expire_all()
    assert db.get(ResidentContact, contact.id).mode == "bot"
    turn = client.post(
        "/api/v1/conversations/turn",
        json={"channel": "webchat", "text": "谢谢"},
        headers=_service(),
    )
    assert turn.json()["mode"] == "bot"
    actions = {
        r.action for r in db.scalars(select(AuditLog).where(AuditLog.entity_type == "conversation"))
    }
    assert {"conversation.takeover", "conversation.message", "conversation.handback"} <= actions


def test_officer_cannot_take_over(client, db):
    officer = make_user(db, "officer", department="housing_bureau")
    contact = notify.touch_contact(db, sender_id=SENDER, channel="webchat", address="t" * 64)
    db.commit()
    console_login(client, officer.username)
    assert client.get(f"/console/conversations/{contact.id}").status_code == 403
    assert client.get("/console/conversations").status_code == 403


def test_undeliverable_notifications_are_listed_and_resent(client, db):
    clerk = make_user(db, "clerk")
    notify.touch_contact(db, sender_id=SENDER, channel="webchat", address="t" * 64)
    db.commit()
    number = _file(client)
    petition = db.scalar(select(Petition).where(Petition.number == number))
    row = Notification(
        petition_id=petition.id,
        petition_number=petition.number,
        status_label=petition.status_label,
        sender_id=SENDER,
        channel="webchat",
        kind="state",
        text="您的信访已交给住建局办理。",
        status="failed",
        attempts=6,
        last_error="channel down",
    )
    db.add(row)
    db.commit()
    console_login(client, clerk.username)
    page = client.get("/console/notifications")
    assert number in page.text and "您的信访已交给住建局办理。" in page.text
    r = _post(client, f"/console/notifications/{row.id}/retry", {}, page.text)
    assert r.status_code == 303
    db.expire_all()
    assert db.get(Notification, row.id).status in ("pending", "sending", "delivered")
