"""Undeliverable notifications: listed for staff, sent again on request; a worker killed in
the middle of a delivery loses nothing and the resident sees the message once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from huey import Huey
from huey.consumer import Consumer
from huey.storage import SqliteStorage
from notify.fake_channel import FakeChannel
from notify.outbox_fixtures import REDIS_URL, CommittedDb
from notify.outboxkit import new_petition, notification, status_is, wait_for, wechat_resident
from sqlalchemy import select
from sqlalchemy.orm import Session
from staff.staffkit import bearer, make_user

from app.audit.models import AuditLog
from app.core.config import settings
from app.core.database import get_db, utcnow
from app.notify import service as notify_service
from app.notify.models import ResidentContact

API_DIR = Path(__file__).resolve().parents[3] / "api"


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


def _failed_notification(outbox_db: CommittedDb, channel: FakeChannel) -> tuple[int, str, str]:
    with outbox_db.sessions() as db:
        sender, _ = wechat_resident(db)
        petition = new_petition(db, sender_id=sender)
        row = notify_service.add_notification(db, petition=petition, kind="state", text="已分派")
        db.commit()
        assert row is not None
        return row.id, petition.number, sender


def test_failed_notification_is_listed_for_staff_and_can_be_sent_again(
    outbox_db: CommittedDb,
    channel: FakeChannel,
    worker: Consumer,
    committed_client: TestClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """WeChat down → retried → failed; GET ?status=failed lists it (number, conversation key,
    no sender id); POST …/retry once WeChat is back → delivered, audited."""
    monkeypatch.setattr(settings, "notify_max_attempts", 2)
    channel.fail_status = 503
    nid, number, sender = _failed_notification(outbox_db, channel)
    wait_for(status_is(outbox_db.sessions, nid, "failed"), timeout=20)

    with outbox_db.sessions() as db:
        clerk = make_user(db, "clerk")
        officer = make_user(db, "officer")
        headers, officer_headers = bearer(db, clerk), bearer(db, officer)
        key = str(db.scalar(select(ResidentContact.id).where(ResidentContact.sender_id == sender)))
        db.commit()

    listed = committed_client.get("/api/v1/staff/notifications?status=failed", headers=headers)
    assert listed.status_code == 200, listed.text
    [item] = listed.json()["notifications"]
    assert item["id"] == nid and item["petition_number"] == number
    assert item["conversation"] == key and item["last_error"] == "http 503"
    assert item["attempts"] == 2 and item["created_at"].endswith("+08:00")
    assert sender not in listed.text
    assert (
        committed_client.get("/api/v1/staff/notifications?status=pending", headers=headers).json()
    ) == {"notifications": []}
    refused = committed_client.get("/api/v1/staff/notifications", headers=officer_headers)
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    assert committed_client.get("/api/v1/staff/notifications").status_code == 401

    channel.fail_status = None
    again = committed_client.post(f"/api/v1/staff/notifications/{nid}/retry", headers=headers)
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "pending"
    wait_for(status_is(outbox_db.sessions, nid, "delivered"))
    assert list(channel.shown) == [nid]
    with outbox_db.sessions() as db:
        audit = db.scalars(select(AuditLog).where(AuditLog.action == "notification.retry")).all()
        assert [(a.entity_type, a.entity_id, a.actor) for a in audit] == [
            ("notification", str(nid), f"staff:{clerk.username}")
        ]
    delivered = committed_client.post(f"/api/v1/staff/notifications/{nid}/retry", headers=headers)
    assert delivered.status_code == 409


def test_opt_out_after_queueing_is_honoured_at_delivery(
    outbox_db: CommittedDb, sqlite_queue: Huey, channel: FakeChannel
) -> None:
    """不用通知我了 between the change and the delivery: the row ends skipped, nothing sent."""
    from app.worker import running_consumer

    with outbox_db.sessions() as db:
        sender, _ = wechat_resident(db)
        petition = new_petition(db, sender_id=sender)
        row = notify_service.add_notification(db, petition=petition, kind="state", text="已分派")
        db.commit()
        assert row is not None
        nid = row.id
        notify_service.set_notify(db, sender_id=sender, notify=False)
        db.commit()
    with running_consumer():
        wait_for(status_is(outbox_db.sessions, nid, "skipped"))
    assert channel.received == []


def _queue_url(queue: Huey) -> str:
    """The JOB_QUEUE_URL that reaches this test's queue from another process."""
    if isinstance(queue.storage, SqliteStorage):
        return f"sqlite:///{queue.storage.filename}"
    return REDIS_URL


def _worker(outbox_db: CommittedDb, queue: Huey, channel_url: str) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "DATABASE_URL": outbox_db.url,
        "JOB_QUEUE_URL": _queue_url(queue),
        "JOB_QUEUE_NAME": queue.name,
        "RASA_URL": channel_url,
        "SERVICE_TOKEN": settings.service_token,
        "SECRET_KEY": settings.secret_key,
        "NOTIFY_CLAIM_TIMEOUT_SECONDS": "2",
        "NOTIFY_RETRY_SECONDS": "0.2",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "app.worker"],
        cwd=API_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_worker_killed_mid_delivery_delivers_after_restart_once(
    outbox_db: CommittedDb, any_queue: Huey, channel: FakeChannel
) -> None:
    """SIGKILL while WeChat is answering slowly: the row stays `sending` (the job itself is gone
    from the queue); a new worker's sweep takes it for lost and sends it again; the channel
    de-duplicates by notification id: the resident sees it once. SQLite and Redis queues."""
    channel.delay_first = 30.0
    first = _worker(outbox_db, any_queue, settings.rasa_url)
    try:
        with outbox_db.sessions() as db:
            sender, _ = wechat_resident(db)
            petition = new_petition(db, sender_id=sender)
            row = notify_service.add_notification(
                db, petition=petition, kind="state", text="已分派"
            )
            db.commit()
            assert row is not None
            nid = row.id
        wait_for(lambda: len(channel.received) == 1, timeout=30)
        assert notification(outbox_db.sessions, nid).status == "sending"
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    assert notification(outbox_db.sessions, nid).status == "sending"
    # The claim must look lost to the next worker (NOTIFY_CLAIM_TIMEOUT_SECONDS=2 there).
    claimed = notification(outbox_db.sessions, nid).claimed_at
    assert claimed is not None
    wait_until = claimed.replace(tzinfo=None) + timedelta(seconds=2.5)
    while utcnow().replace(tzinfo=None) < wait_until:
        time.sleep(0.1)
    assert any_queue.pending_count() == 0
    second = _worker(outbox_db, any_queue, settings.rasa_url)
    try:
        wait_for(status_is(outbox_db.sessions, nid, "delivered"), timeout=30)
    finally:
        second.send_signal(signal.SIGINT)
        try:
            second.wait(timeout=15)
        except subprocess.TimeoutExpired:
            second.kill()
    done = notification(outbox_db.sessions, nid)
    assert done.attempts == 2 and done.via == "custom"
    assert [b["notification_id"] for b in channel.received] == [nid, nid]
    assert list(channel.shown) == [nid]
