"""Builders for outbox tests: committed petitions and contacts, waiting for the worker."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.chat.models import ChatMessage
from app.notify import service as notify_service
from app.notify.models import Notification
from app.petition.models import Petition

_seq = itertools.count(1)


def new_petition(db: Session, *, sender_id: str | None, status: str = "assigned") -> Petition:
    """A petition filed from the conversation `sender_id` (flushed, not committed)."""
    n = next(_seq)
    petition = Petition(
        number=f"XF-20261102-{n:04d}",
        status=status,
        person_name="张三",
        phone="13812345678",
        address="观象山庄3号楼2单元501",
        description="交房八年了还没有房本。",
        consent=True,
        channel="webchat",
        intake_date=date(2026, 11, 2),
        answer_due=date(2026, 11, 9),
    )
    db.add(petition)
    db.flush()
    # The lead adds Petition.sender_id; until then an instance attribute plays it.
    petition.sender_id = sender_id  # type: ignore[attr-defined,unused-ignore]
    db.flush()
    return petition


def transcript(n: int) -> str:
    """A web-chat transcript key (64 hex characters, like app.chat.service.transcript_key)."""
    return f"{n:064x}"


def webchat_resident(db: Session, n: int | None = None) -> tuple[str, str]:
    """(sender id, transcript key) of a web-chat resident with a contact row."""
    n = n or next(_seq)
    sender, key = f"web-test-{n}", transcript(n)
    notify_service.touch_contact(db, sender_id=sender, channel="webchat", address=key)
    return sender, key


def wechat_resident(db: Session, *, openid: str | None = None) -> tuple[str, str]:
    """(sender id, openid) of a WeChat resident who wrote just now."""
    n = next(_seq)
    sender, oid = f"wx-test-{n}", openid or f"o-test-openid-{n}"
    notify_service.touch_contact(db, sender_id=sender, channel="wechat", address=oid)
    return sender, oid


def wait_for(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll until `check()` is truthy; its value, or AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {check}")
        time.sleep(interval)


def notification(factory: sessionmaker[Session], notification_id: int) -> Notification:
    """A fresh read of one notification row."""
    with factory() as db:
        row = db.get(Notification, notification_id)
        assert row is not None
        db.expunge(row)
        return row


def status_is(
    factory: sessionmaker[Session], notification_id: int, *statuses: str
) -> Callable[[], bool]:
    """A check for wait_for: the row has reached one of `statuses`."""
    return lambda: notification(factory, notification_id).status in statuses


def bubbles(factory: sessionmaker[Session], key: str) -> list[ChatMessage]:
    """The notice/staff bubbles of a web-chat transcript."""
    with factory() as db:
        rows = db.scalars(
            select(ChatMessage)
            .where(ChatMessage.conversation == key, ChatMessage.notification_id.is_not(None))
            .order_by(ChatMessage.id)
        ).all()
        for r in rows:
            db.expunge(r)
        return list(rows)
