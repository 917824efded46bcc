"""The optional outgoing webhook (STAFF_WEBHOOK_URL, e.g. a WeCom group robot): each new staff
reminder is posted by a job on the queue once the transaction that wrote it has committed,
never inside the request. Failures are retried, then logged with the error type only."""

from __future__ import annotations

import logging

import httpx
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from app.core.config import settings
from app.jobs.queue import huey

log = logging.getLogger("app.inbox")

_PENDING_KEY = "inbox.webhook"
WEBHOOK_RETRIES = 5
WEBHOOK_RETRY_DELAY = 30
TIMEOUT = httpx.Timeout(10.0, connect=3.0)


def payload(text: str) -> dict[str, object]:
    """The WeCom robot's text message."""
    return {"msgtype": "text", "text": {"content": text}}


# huey ships no type hints: its decorators are untyped for mypy
@huey.task(retries=WEBHOOK_RETRIES, retry_delay=WEBHOOK_RETRY_DELAY)  # type: ignore[untyped-decorator]
def post_staff_webhook(text: str) -> None:
    """POST one reminder to the webhook; a failure raises so that huey retries it."""
    url = settings.staff_webhook_url
    if not url:
        return
    try:
        response = httpx.post(url, json=payload(text), timeout=TIMEOUT)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        # The error type and status only: neither the URL (it holds the robot's key) nor text.
        status = getattr(getattr(exc, "response", None), "status_code", None)
        log.warning(
            "staff webhook failed (%s%s)", type(exc).__name__, f" {status}" if status else ""
        )
        raise


def _after_commit(session: Session) -> None:
    for text in session.info.pop(_PENDING_KEY, []):
        try:
            post_staff_webhook(text)
        except Exception as exc:  # noqa: BLE001 - a queue that is down loses a courtesy copy only
            log.warning("could not queue the staff webhook (%s)", type(exc).__name__)


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None and not transaction.nested:
        session.info.pop(_PENDING_KEY, None)


def queue_webhook(db: Session, text: str) -> None:
    """Post `text` to the webhook once the caller's transaction has committed."""
    if not db.info.get("inbox.hooks"):
        event.listen(db, "after_commit", _after_commit)
        event.listen(db, "after_transaction_end", _after_transaction_end)
        db.info["inbox.hooks"] = True
    db.info.setdefault(_PENDING_KEY, []).append(text)
