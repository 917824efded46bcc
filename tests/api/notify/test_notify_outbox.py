"""The outbox: rows added in the caller's transaction, queued only after its commit, delivered
by the real worker to the web chat and to the WeChat channel (both backends, both queues)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from huey import Huey
from huey.consumer import Consumer
from notify.fake_channel import FakeChannel
from notify.outbox_fixtures import CommittedDb
from notify.outboxkit import (
    bubbles,
    new_petition,
    notification,
    status_is,
    wait_for,
    webchat_resident,
    wechat_resident,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.database import utcnow
from app.notify import service as notify_service
from app.notify.models import Notification, ResidentContact, decrypt_address
from app.worker import running_consumer


def test_contact_address_is_encrypted_and_upserted(db: Session) -> None:
    """touch_contact keeps one row per sender id; the address is stored encrypted."""
    first = notify_service.touch_contact(
        db, sender_id="wx-enc", channel="wechat", address="o-secret-openid"
    )
    again = notify_service.touch_contact(db, sender_id="wx-enc", channel="wechat")
    assert first.id == again.id
    assert "o-secret-openid" not in (again.address_enc or "")
    assert decrypt_address(again.address_enc) == "o-secret-openid"
    assert db.scalar(select(ResidentContact.notify).where(ResidentContact.id == first.id)) is True


def test_unreachable_or_opted_out_resident_is_skipped_but_stored(db: Session) -> None:
    """No contact, or 不用通知我了: the row is stored as skipped (staff can see it)."""
    nobody = new_petition(db, sender_id=None)
    row = notify_service.add_notification(db, petition=nobody, kind="state", text="已分派。")
    assert row is not None and row.status == "skipped"

    sender, _ = webchat_resident(db)
    notify_service.set_notify(db, sender_id=sender, notify=False)
    petition = new_petition(db, sender_id=sender)
    row = notify_service.add_notification(db, petition=petition, kind="state", text="已分派。")
    assert row is not None and row.status == "skipped"

    notify_service.set_notify(db, sender_id=sender, notify=True)
    row = notify_service.add_notification(db, petition=petition, kind="state", text="核实中。")
    assert row is not None and row.status == "pending" and row.channel == "webchat"


def test_rolled_back_notification_is_never_sent(
    outbox_db: CommittedDb, sqlite_queue: Huey, channel: FakeChannel
) -> None:
    """A change that rolls back takes its notification with it: nothing queued, nothing sent,
    even with the worker running and the sweep passing."""
    with outbox_db.sessions() as db:
        sender, _ = wechat_resident(db)
        db.commit()
        petition = new_petition(db, sender_id=sender)
        row = notify_service.add_notification(db, petition=petition, kind="state", text="已分派")
        assert row is not None and row.status == "pending"
        db.rollback()
    assert sqlite_queue.pending_count() == 0
    with running_consumer():
        time.sleep(1.5)
    assert channel.received == []
    with outbox_db.sessions() as db:
        assert db.scalars(select(Notification)).all() == []
        assert notify_service.sweep(db, enqueue=False) == []


def test_committed_notification_is_queued_after_commit_only(
    outbox_db: CommittedDb, sqlite_queue: Huey
) -> None:
    """The job is queued by the commit, not by the flush."""
    with outbox_db.sessions() as db:
        sender, _ = webchat_resident(db)
        petition = new_petition(db, sender_id=sender)
        notify_service.add_notification(db, petition=petition, kind="state", text="已分派")
        assert sqlite_queue.pending_count() == 0
        db.commit()
    assert sqlite_queue.pending_count() == 1


def test_committed_notification_reaches_the_web_chat(
    outbox_db: CommittedDb, any_queue: Huey
) -> None:
    """add_notification + commit → the running worker puts one notice bubble in the resident's
    transcript (SQLite and Redis queues)."""
    with outbox_db.sessions() as db:
        sender, key = webchat_resident(db)
        petition = new_petition(db, sender_id=sender)
        row = notify_service.add_notification(
            db, petition=petition, kind="state", text="您的信访已分派给住建局，5个工作日内答复。"
        )
        assert row is not None
        db.commit()
        nid = row.id
    with running_consumer():
        wait_for(status_is(outbox_db.sessions, nid, "delivered"))
    done = notification(outbox_db.sessions, nid)
    assert done.via == "webchat" and done.attempts == 1 and done.delivered_at is not None
    shown = bubbles(outbox_db.sessions, key)
    assert [(b.role, b.notification_id) for b in shown] == [("notice", nid)]
    assert "住建局" in shown[0].text


def test_wechat_inside_the_window_is_a_customer_service_message(
    outbox_db: CommittedDb, channel: FakeChannel, worker: Consumer
) -> None:
    """The resident wrote within 48 hours: `custom`, with the service token."""
    with outbox_db.sessions() as db:
        sender, openid = wechat_resident(db)
        petition = new_petition(db, sender_id=sender)
        row = notify_service.add_notification(db, petition=petition, kind="answer", text="答复")
        db.commit()
        assert row is not None
        nid = row.id
    wait_for(status_is(outbox_db.sessions, nid, "delivered"))
    assert notification(outbox_db.sessions, nid).via == "custom"
    [body] = channel.received
    assert body == {
        "notification_id": nid,
        "openid": openid,
        "text": "答复",
        "mode": "custom",
        "template": None,
    }


def test_wechat_outside_the_window_is_a_template_message(
    outbox_db: CommittedDb, channel: FakeChannel, worker: Consumer
) -> None:
    """Last message 49 hours ago: the template, with the petition number and state."""
    with outbox_db.sessions() as db:
        sender, _ = wechat_resident(db)
        notify_service.touch_contact(
            db, sender_id=sender, channel="wechat", at=utcnow() - timedelta(hours=49)
        )
        petition = new_petition(db, sender_id=sender, status="verifying")
        row = notify_service.add_notification(db, petition=petition, kind="state", text="核实中")
        db.commit()
        assert row is not None
        nid, number = row.id, petition.number
    wait_for(status_is(outbox_db.sessions, nid, "delivered"))
    assert notification(outbox_db.sessions, nid).via == "template"
    [body] = channel.received
    assert body["mode"] == "template"
    assert body["template"] == {
        "template_id": "TPL-TEST",
        "data": {
            "first": {"value": "您的信访有新进展"},
            "keyword1": {"value": number},
            "keyword2": {"value": "核实中"},
            "remark": {"value": "核实中"},
        },
    }


def test_window_closed_answer_falls_back_to_the_template(
    outbox_db: CommittedDb, channel: FakeChannel, worker: Consumer
) -> None:
    """45015 to the customer-service message: the template goes at once, same attempt."""
    channel.custom_errcode = 45015
    with outbox_db.sessions() as db:
        sender, _ = wechat_resident(db)
        petition = new_petition(db, sender_id=sender)
        row = notify_service.add_notification(db, petition=petition, kind="state", text="已分派")
        db.commit()
        assert row is not None
        nid = row.id
    wait_for(status_is(outbox_db.sessions, nid, "delivered"))
    done = notification(outbox_db.sessions, nid)
    assert (done.via, done.attempts) == ("template", 1)
    assert [b["mode"] for b in channel.received] == ["custom", "template"]
    assert list(channel.shown) == [nid]


def test_channel_down_is_retried_with_backoff_then_failed(
    outbox_db: CommittedDb,
    channel: FakeChannel,
    worker: Consumer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """WeChat down: each attempt waits longer than the one before, then the row is failed."""
    monkeypatch.setattr(notify_service.settings, "notify_max_attempts", 4)
    channel.fail_status = 502
    with outbox_db.sessions() as db:
        sender, _ = wechat_resident(db)
        petition = new_petition(db, sender_id=sender)
        row = notify_service.add_notification(db, petition=petition, kind="state", text="已分派")
        db.commit()
        assert row is not None
        nid = row.id
    stamps: list[float] = []
    last = 0

    def attempts_seen() -> bool:
        nonlocal last
        if len(channel.received) > last:
            stamps.extend([time.monotonic()] * (len(channel.received) - last))
            last = len(channel.received)
        return notification(outbox_db.sessions, nid).status == "failed"

    wait_for(attempts_seen, timeout=30, interval=0.02)
    failed = notification(outbox_db.sessions, nid)
    assert (failed.attempts, failed.last_error) == (4, "http 502")
    assert len(channel.received) == 4 and channel.shown == {}
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    # 0.2 s, 0.4 s, 0.8 s (the scheduler ticks once a second, so each gap is at least its delay).
    assert all(gap >= delay - 0.05 for gap, delay in zip(gaps, [0.2, 0.4, 0.8], strict=True))
    assert notify_service.backoff_seconds(1) < notify_service.backoff_seconds(3)
