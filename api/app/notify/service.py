"""Contacts, the notification outbox and its delivery, the bot's turn, the waiting queue and
staff takeovers (docs/loop.md). Service functions flush; the caller's boundary commits, except
`deliver` and `sweep`, which are job boundaries of their own."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import and_, event, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, SessionTransaction

from app.audit import service as audit_service
from app.core.config import settings
from app.core.database import utcnow
from app.core.errors import AppError
from app.core.security import mask_name, mask_personal, pseudonym
from app.core.workdays import SHANGHAI
from app.notify import channels
from app.notify.hours import next_open_text, office_hours
from app.notify.models import (
    CHANNELS,
    ConversationMessage,
    Notification,
    ResidentContact,
    decrypt_address,
    encrypt_address,
)
from app.staff.models import StaffUser

log = logging.getLogger("app.notify")

# Injectable clock (tests pin office hours and the 48-hour window with it).
clock: Callable[[], datetime] = utcnow

WECHAT_WINDOW = timedelta(hours=48)
MAX_BACKOFF_SECONDS = 3600.0
# The sweep leaves a due row this long to the retry the queue already holds for it.
SWEEP_GRACE = timedelta(seconds=30)
SWEEP_BATCH = 500
RECENT_INBOUND = timedelta(minutes=30)
MAX_TEXT = 2000

KIND_LABELS = {
    "state": "办理进展",
    "answer": "部门答复",
    "closed": "已办结",
    "staff_message": "工作人员回复",
    "review": "复查",
}
TEMPLATE_FIRST = "您的信访有新进展"
_PENDING_KEY = "notify.pending_ids"

NOT_FOUND_MESSAGE = "没有找到这个对话。"
TAKEN_MESSAGE = "该对话已由其他工作人员接管。"
NOT_TAKEN_MESSAGE = "请先接管该对话，再发送消息。"


def _now() -> datetime:
    # Always UTC: SQLite stores datetimes without their offset.
    return clock().astimezone(UTC)


def _utc(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything is stored in UTC.
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# --- contacts ------------------------------------------------------------------------------


def get_contact(db: Session, sender_id: str) -> ResidentContact | None:
    """The contact row of a sender id, if any."""
    return db.scalar(select(ResidentContact).where(ResidentContact.sender_id == sender_id))


def touch_contact(
    db: Session,
    *,
    sender_id: str,
    channel: str,
    address: str | None = None,
    at: datetime | None = None,
) -> ResidentContact:
    """Create or update a resident's contact: last message now, the address encrypted."""
    contact = get_contact(db, sender_id)
    if contact is None:
        contact = ResidentContact(sender_id=sender_id, channel=channel, notify=True, mode="bot")
        try:
            with db.begin_nested():
                db.add(contact)
                db.flush()
        except IntegrityError:
            # Another request created it between our read and our insert.
            found = get_contact(db, sender_id)
            if found is None:
                raise
            contact = found
    if channel in CHANNELS:
        contact.channel = channel
    if address and decrypt_address(contact.address_enc) != address:
        contact.address_enc = encrypt_address(address)
    contact.last_inbound_at = _utc(at) or _now()
    db.flush()
    return contact


def _contact_or_new(db: Session, sender_id: str) -> ResidentContact:
    contact = get_contact(db, sender_id)
    if contact is None:
        contact = touch_contact(db, sender_id=sender_id, channel="bot")
    return contact


# --- the outbox ----------------------------------------------------------------------------


def _enqueue(ids: Sequence[int]) -> None:
    """Queue a delivery job per id; a queue that is down is logged (the sweep catches up)."""
    from app.notify.tasks import deliver_notification

    for notification_id in ids:
        try:
            deliver_notification(notification_id)
        except Exception as exc:  # noqa: BLE001 - the sweep re-queues what is left pending
            log.warning("could not queue notification %s (%s)", notification_id, type(exc).__name__)


def _after_commit(session: Session) -> None:
    ids = sorted(session.info.pop(_PENDING_KEY, set()))
    if ids:
        _enqueue(ids)


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    # The outermost transaction ended without a commit (rolled back or closed): nothing is sent.
    if transaction.parent is None and not transaction.nested:
        session.info.pop(_PENDING_KEY, None)


def enqueue_after_commit(db: Session, notification_id: int) -> None:
    """Queue the delivery of a notification once the caller's transaction has committed."""
    if not db.info.get("notify.hooks"):
        event.listen(db, "after_commit", _after_commit)
        event.listen(db, "after_transaction_end", _after_transaction_end)
        db.info["notify.hooks"] = True
    db.info.setdefault(_PENDING_KEY, set()).add(notification_id)


def _reachable(contact: ResidentContact | None) -> bool:
    return bool(contact and contact.channel in CHANNELS and contact.address_enc)


class PetitionRef(Protocol):
    """What the outbox needs of a petition (this package sits below the petition area)."""

    id: int
    number: str
    sender_id: str | None

    @property
    def status_label(self) -> str: ...


def add_notification(
    db: Session, *, petition: PetitionRef, kind: str, text: str
) -> Notification | None:
    """Add a notification about a petition in the caller's transaction (no commit); `skipped`
    when the resident cannot be reached or asked not to be notified. None when text is empty."""
    text = (text or "").strip()
    if not text:
        return None
    if petition.id is None:
        db.flush()
    sender_id = petition.sender_id
    contact = get_contact(db, sender_id) if sender_id else None
    pending = _reachable(contact) and bool(contact and contact.notify)
    return _outbox(
        db,
        contact,
        pending,
        petition_id=petition.id,
        petition_number=petition.number,
        status_label=petition.status_label,
        awaiting_reply=kind == "closed",
        sender_id=sender_id,
        kind=kind,
        text=text[:MAX_TEXT],
    )


def _outbox(
    db: Session, contact: ResidentContact | None, pending: bool, **fields: Any
) -> Notification:
    """Add the row (`pending`, queued after the commit; else `skipped`, kept for staff)."""
    now = _now()
    row = Notification(
        channel=contact.channel if contact else None,
        status="pending" if pending else "skipped",
        attempts=0,
        next_attempt_at=now if pending else None,
        created_at=now,
        **fields,
    )
    db.add(row)
    db.flush()
    if pending:
        enqueue_after_commit(db, row.id)
    return row


def add_staff_message(
    db: Session, *, sender_id: str, staff_username: str, text: str
) -> Notification:
    """A clerk's message: kept in the live conversation and sent to the resident (the opt-out
    does not apply: the resident is talking to staff)."""
    masked = mask_personal(text.strip())[:MAX_TEXT]
    if not masked:
        raise AppError(422, "empty", "请输入要发送的内容。")
    contact = get_contact(db, sender_id)
    now = _now()
    db.add(
        ConversationMessage(
            sender_id=sender_id, at=now, sender="staff", text=masked, staff_username=staff_username
        )
    )
    return _outbox(
        db,
        contact,
        _reachable(contact),
        petition_id=None,
        sender_id=sender_id,
        kind="staff_message",
        text=masked,
        staff_username=staff_username,
    )


def list_notifications(
    db: Session, *, status: str | None = None, limit: int = 100
) -> Sequence[Notification]:
    """Notifications newest first, optionally of one status."""
    stmt = select(Notification).order_by(Notification.id.desc()).limit(limit)
    if status:
        stmt = stmt.where(Notification.status == status)
    return db.scalars(stmt).all()


def retry(db: Session, *, notification_id: int, user: StaffUser) -> Notification:
    """Send a failed notification again (attempts start over); audited."""
    row = db.get(Notification, notification_id)
    if row is None:
        raise AppError(404, "not_found", "没有找到这条通知。")
    if row.status not in ("failed", "pending"):
        raise AppError(409, "not_retryable", "只有发送失败或待发送的通知可以重发。")
    if not _reachable(get_contact(db, row.sender_id) if row.sender_id else None):
        raise AppError(409, "unreachable", "这位群众没有可用的联系方式，无法重发。")
    before = {"status": row.status, "attempts": row.attempts, "last_error": row.last_error}
    row.status, row.attempts, row.next_attempt_at = "pending", 0, _now()
    row.claimed_at = None
    db.flush()
    audit_service.record(
        db=db,
        actor=f"staff:{user.username}",
        action="notification.retry",
        entity_type="notification",
        entity_id=row.id,
        before=before,
        after={"status": "pending"},
    )
    enqueue_after_commit(db, row.id)
    return row


# --- delivery ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one delivery run did; `retry_in` seconds when another attempt is due."""

    status: str  # delivered | retry | failed | skipped | not_claimed
    retry_in: float | None = None


def backoff_seconds(attempts: int) -> float:
    """Wait before attempt `attempts + 1`: the base doubled per attempt, at most an hour."""
    base = max(settings.notify_retry_seconds, 0.0)
    return float(min(base * (2 ** max(attempts - 1, 0)), MAX_BACKOFF_SECONDS))


def _claim(db: Session, notification_id: int, now: datetime) -> bool:
    stale = now - timedelta(seconds=settings.notify_claim_timeout_seconds)
    result = db.execute(
        update(Notification)
        .where(
            Notification.id == notification_id,
            or_(
                Notification.status == "pending",
                and_(Notification.status == "sending", Notification.claimed_at < stale),
            ),
        )
        .values(status="sending", claimed_at=now, attempts=Notification.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def _finish(
    db: Session,
    notification_id: int,
    claimed_at: datetime,
    *,
    delivered: bool,
    via: str | None = None,
    error: str | None = None,
    permanent: bool = False,
    skipped: bool = False,
) -> Outcome:
    """Record the end of an attempt (in the current transaction, then commit)."""
    row = db.get(Notification, notification_id, populate_existing=True)
    if row is None:
        db.commit()
        return Outcome("not_claimed")
    now = _now()
    if delivered:
        row.status, row.delivered_at, row.via, row.last_error = "delivered", now, via, None
        db.commit()
        return Outcome("delivered")
    if row.status != "sending" or _utc(row.claimed_at) != _utc(claimed_at):
        # Another worker took the row over (ours was taken for lost): leave it to that one.
        db.commit()
        return Outcome("not_claimed")
    if skipped:
        row.status, row.last_error = "skipped", error
        db.commit()
        return Outcome("skipped")
    row.last_error = (error or "error")[:200]
    if permanent or row.attempts >= settings.notify_max_attempts:
        row.status = "failed"
        db.commit()
        log.warning(
            "notification %s failed after %s attempt(s): %s", row.id, row.attempts, row.last_error
        )
        return Outcome("failed")
    delay = backoff_seconds(row.attempts)
    row.status, row.next_attempt_at = "pending", now + timedelta(seconds=delay)
    db.commit()
    log.info(
        "notification %s attempt %s failed (%s), retry in %.0fs",
        row.id,
        row.attempts,
        row.last_error,
        delay,
    )
    return Outcome("retry", retry_in=delay)


def _template(row: Notification) -> dict[str, Any]:
    return {
        "template_id": settings.wechat_template_id,
        "data": {
            "first": {"value": TEMPLATE_FIRST},
            "keyword1": {"value": row.petition_number or ""},
            "keyword2": {"value": row.status_label or KIND_LABELS.get(row.kind, "")},
            "remark": {"value": row.text},
        },
    }


def _send_wechat(
    row: Notification, openid: str, inbound: datetime | None, signed: str | None = None
) -> tuple[channels.ChannelAnswer, str]:
    """Customer-service message inside the 48-hour window, else the template; a 45015 answer
    to the customer-service message means the window closed: the template goes at once.
    `signed` is a clerk's message with who wrote it (WeChat shows no sender of its own)."""
    now = _now()
    in_window = inbound is not None and now - inbound < WECHAT_WINDOW
    text = signed or row.text
    body: dict[str, Any] = {"notification_id": row.id, "openid": openid, "text": text}
    if in_window:
        answer = channels.post_wechat(body | {"mode": "custom", "template": None})
        if answer.delivered or answer.duplicate or answer.errcode != channels.ERR_WINDOW_CLOSED:
            return answer, "custom"
    if not settings.wechat_template_id:
        return channels.ChannelAnswer(False, error="no template id"), "template"
    template = _template(row)
    return channels.post_wechat(body | {"mode": "template", "template": template}), "template"


def _deliver_webchat(db: Session, row: Notification, transcript_key: str) -> None:
    staff = row.kind == "staff_message"
    channels.webchat_delivery()(
        db,
        transcript_key=transcript_key,
        notification_id=row.id,
        role="staff" if staff else "notice",
        text=row.text,
        staff_name=staff_display(db, row.staff_username) if staff else None,
    )


def deliver(db: Session, notification_id: int) -> Outcome:
    """Deliver one notification (a job boundary: commits). Claims the row so no other worker
    sends it meanwhile; web chat in one transaction, WeChat through the channel; a failure is
    retried with backoff up to NOTIFY_MAX_ATTEMPTS, then the row is `failed`."""
    now = _now()
    if not _claim(db, notification_id, now):
        db.rollback()
        return Outcome("not_claimed")
    row = db.get(Notification, notification_id, populate_existing=True)
    assert row is not None
    contact = get_contact(db, row.sender_id) if row.sender_id else None
    if contact is not None and not contact.notify and row.kind != "staff_message":
        # The resident said 不用通知我了 after this was queued.
        return _finish(db, row.id, now, delivered=False, skipped=True, error="opted out")
    address = decrypt_address(contact.address_enc) if contact else None
    if contact is None or address is None or contact.channel not in CHANNELS:
        return _finish(db, row.id, now, delivered=False, error="no address", permanent=True)
    if contact.channel == "webchat":
        try:
            with db.begin_nested():
                _deliver_webchat(db, row, address)
        except Exception as exc:  # noqa: BLE001 - recorded on the row, retried
            return _finish(db, row.id, now, delivered=False, error=type(exc).__name__)
        return _finish(db, row.id, now, delivered=True, via="webchat")
    # WeChat: make the claim visible before the slow call, so no other worker sends it too.
    inbound = _utc(contact.last_inbound_at)
    signed = None
    if row.kind == "staff_message":
        name = staff_display(db, row.staff_username) or ""
        signed = f"【工作人员{name}】{row.text}"
    db.commit()
    answer, mode = _send_wechat(row, address, inbound, signed)
    if answer.delivered or answer.duplicate:
        return _finish(db, notification_id, now, delivered=True, via=mode)
    error = answer.error or f"errcode {answer.errcode}"
    permanent = answer.errcode in channels.PERMANENT_ERRCODES or error == "no template id"
    return _finish(db, notification_id, now, delivered=False, error=error, permanent=permanent)


def give_up(db: Session, notification_id: int, error: str = "worker error") -> None:
    """Mark a notification failed after its job failed for good (flushes)."""
    db.execute(
        update(Notification)
        .where(Notification.id == notification_id, Notification.status.in_(("pending", "sending")))
        .values(status="failed", last_error=error)
        .execution_options(synchronize_session=False)
    )
    db.flush()


def sweep(db: Session, *, enqueue: bool = True) -> list[int]:
    """Re-queue rows left `pending` past their time and rows stuck in `sending` (a killed
    worker); returns their ids. Nothing is lost when a job was never queued or died."""
    now = _now()
    stale = now - timedelta(seconds=settings.notify_claim_timeout_seconds)
    due = now - SWEEP_GRACE
    ids = list(
        db.scalars(
            select(Notification.id)
            .where(
                or_(
                    and_(
                        Notification.status == "pending",
                        or_(
                            Notification.next_attempt_at.is_(None),
                            Notification.next_attempt_at <= due,
                        ),
                    ),
                    and_(Notification.status == "sending", Notification.claimed_at < stale),
                )
            )
            .order_by(Notification.id)
            .limit(SWEEP_BATCH)
        )
    )
    db.rollback()
    if ids and enqueue:
        log.info("sweep re-queues %s notification(s)", len(ids))
        _enqueue(ids)
    return ids


# --- the bot's turn ------------------------------------------------------------------------


def staff_display(db: Session, username: str | None) -> str | None:
    """What a resident is shown of a clerk: the family name only (`李*`)."""
    if not username:
        return None
    user = db.scalar(select(StaffUser).where(StaffUser.username == username))
    name = user.display_name if user and user.display_name else None
    return mask_name(name) if name else None


def _today_shanghai(moment: datetime) -> datetime:
    """Midnight of the moment's Asia/Shanghai day, in UTC."""
    local = moment.astimezone(SHANGHAI)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def _expire_waiting(contact: ResidentContact, now: datetime) -> None:
    # The waiting queue is a day's: yesterday's place in it is gone.
    since = _utc(contact.waiting_since)
    if contact.mode == "waiting" and (since is None or since < _today_shanghai(now)):
        contact.mode, contact.waiting_since = "bot", None


def feedback_for(db: Session, sender_id: str) -> str | None:
    """The petition number of this sender's newest delivered `closed` notification that still
    awaits the resident's satisfaction answer."""
    number = db.scalar(
        select(Notification.petition_number)
        .where(
            Notification.sender_id == sender_id,
            Notification.kind == "closed",
            Notification.status == "delivered",
            Notification.awaiting_reply.is_(True),
        )
        .order_by(Notification.id.desc())
        .limit(1)
    )
    return str(number) if number else None


def reply_received(db: Session, *, petition_id: int) -> None:
    """The resident answered the satisfaction question of this petition: stop asking."""
    db.execute(
        update(Notification)
        .where(Notification.petition_id == petition_id, Notification.awaiting_reply.is_(True))
        .values(awaiting_reply=False)
        .execution_options(synchronize_session=False)
    )


def turn(db: Session, *, sender_id: str, channel: str, text: str) -> dict[str, Any]:
    """The start of every bot turn: who is answering this resident, whether they want news,
    and which closed petition awaits their satisfaction answer."""
    contact = touch_contact(db, sender_id=sender_id, channel=channel)
    now = _now()
    contact.turns = (contact.turns or 0) + 1
    _expire_waiting(contact, now)
    if contact.mode in ("staff", "waiting") and text.strip():
        db.add(
            ConversationMessage(
                sender_id=sender_id,
                at=now,
                sender="resident",
                text=mask_personal(text.strip())[:MAX_TEXT],
            )
        )
    db.flush()
    return {
        "mode": contact.mode,
        "staff_name": staff_display(db, contact.staff_username)
        if contact.mode == "staff"
        else None,
        "notify": contact.notify,
        "feedback_for": feedback_for(db, sender_id),
    }


def set_notify(db: Session, *, sender_id: str, notify: bool) -> dict[str, bool]:
    """'不用通知我了' (False) or '恢复通知' (True)."""
    contact = _contact_or_new(db, sender_id)
    contact.notify = notify
    db.flush()
    return {"notify": contact.notify}


def _queue_position(db: Session, contact: ResidentContact, now: datetime) -> int:
    since = contact.waiting_since or now
    return int(
        db.scalar(
            select(func.count())
            .select_from(ResidentContact)
            .where(
                ResidentContact.mode == "waiting",
                ResidentContact.waiting_since >= _today_shanghai(now),
                or_(
                    ResidentContact.waiting_since < since,
                    and_(ResidentContact.waiting_since == since, ResidentContact.id < contact.id),
                ),
            )
        )
        or 0
    )


def handoff(db: Session, *, sender_id: str, channel: str) -> dict[str, Any]:
    """'转人工': during office hours the resident joins the waiting queue (place and estimated
    wait); outside them nothing is queued and the answer says when a person is next there."""
    hours = office_hours()
    now = _now()
    base: dict[str, Any] = {"hours_text": hours.text}
    contact = get_contact(db, sender_id) or touch_contact(db, sender_id=sender_id, channel=channel)
    contact.handoff_at = contact.handoff_at or now  # asked for a person (the transfer rate)
    db.flush()
    if not hours.is_open(now):
        opening = hours.next_open(now)
        return base | {
            "office_hours": False,
            "position": None,
            "estimated_wait_minutes": None,
            "next_open": next_open_text(opening, now) if opening else None,
        }
    _expire_waiting(contact, now)
    if contact.mode == "bot":
        contact.mode, contact.waiting_since = "waiting", now
        db.flush()
    position = 0 if contact.mode == "staff" else _queue_position(db, contact, now)
    return base | {
        "office_hours": True,
        "position": position,
        "estimated_wait_minutes": position * hours.minutes_per_resident,
        "next_open": None,
    }


# --- staff takeover ------------------------------------------------------------------------


def conversation_key(contact: ResidentContact) -> str:
    """The opaque key staff use for a conversation (never the sender id)."""
    return str(contact.id)


def contact_by_key(db: Session, key: str) -> ResidentContact:
    """The contact behind a conversation key, or a Chinese 404."""
    contact = db.get(ResidentContact, int(key)) if key.isdigit() else None
    if contact is None:
        raise AppError(404, "not_found", NOT_FOUND_MESSAGE)
    return contact


def _audit(
    db: Session, user: StaffUser, action: str, contact: ResidentContact, **after: Any
) -> None:
    audit_service.record(
        db=db,
        actor=f"staff:{user.username}",
        action=action,
        entity_type="conversation",
        entity_id=pseudonym(contact.sender_id),
        after=after or None,
    )


def take_over(db: Session, *, sender_id: str, user: StaffUser) -> ResidentContact:
    """A clerk takes the conversation: the bot stays silent until they hand it back."""
    contact = get_contact(db, sender_id)
    if contact is None:
        raise AppError(404, "not_found", NOT_FOUND_MESSAGE)
    if contact.mode == "staff" and contact.staff_username not in (None, user.username):
        raise AppError(409, "taken", TAKEN_MESSAGE)
    previous = contact.mode
    contact.mode, contact.staff_username, contact.waiting_since = "staff", user.username, None
    contact.staff_at = contact.staff_at or _now()
    db.flush()
    _audit(db, user, "conversation.takeover", contact, mode="staff", previous=previous)
    return contact


def hand_back(db: Session, *, sender_id: str, user: StaffUser) -> ResidentContact:
    """The clerk gives the conversation back to the bot."""
    contact = get_contact(db, sender_id)
    if contact is None:
        raise AppError(404, "not_found", NOT_FOUND_MESSAGE)
    previous = contact.staff_username
    contact.mode, contact.staff_username, contact.waiting_since = "bot", None, None
    db.flush()
    _audit(db, user, "conversation.handback", contact, mode="bot", previous_staff=previous)
    return contact


def send_staff_message(
    db: Session, *, contact: ResidentContact, user: StaffUser, text: str
) -> Notification:
    """A message from the clerk who holds the conversation; audited (without the text)."""
    if contact.mode != "staff" or contact.staff_username != user.username:
        raise AppError(409, "not_taken", NOT_TAKEN_MESSAGE)
    row = add_staff_message(
        db, sender_id=contact.sender_id, staff_username=user.username, text=text
    )
    _audit(db, user, "conversation.message", contact, notification_id=row.id)
    return row


def active_conversations(db: Session) -> list[ResidentContact]:
    """Residents waiting for a person (longest first), then those with a clerk, then those who
    wrote in the last 30 minutes."""
    now = _now()
    waiting = db.scalars(
        select(ResidentContact)
        .where(
            ResidentContact.mode == "waiting",
            ResidentContact.waiting_since >= _today_shanghai(now),
        )
        .order_by(ResidentContact.waiting_since, ResidentContact.id)
    ).all()
    staff = db.scalars(
        select(ResidentContact)
        .where(ResidentContact.mode == "staff")
        .order_by(ResidentContact.last_inbound_at.desc())
    ).all()
    recent = db.scalars(
        select(ResidentContact)
        .where(
            ResidentContact.mode == "bot",
            ResidentContact.last_inbound_at >= now - RECENT_INBOUND,
        )
        .order_by(ResidentContact.last_inbound_at.desc())
        .limit(100)
    ).all()
    return [*waiting, *staff, *recent]


def conversation_messages(
    db: Session, sender_id: str, limit: int = 200
) -> list[ConversationMessage]:
    """The live conversation of a sender, oldest first (the last `limit`)."""
    rows = db.scalars(
        select(ConversationMessage)
        .where(ConversationMessage.sender_id == sender_id)
        .order_by(ConversationMessage.id.desc())
        .limit(limit)
    ).all()
    return list(reversed(rows))
