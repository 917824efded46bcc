"""The staff notification centre (我的提醒): each user's own reminders through the staff API and
the console (badge, list, mark one / all read, CSRF, nobody else's), and the optional outgoing
webhook posted by a queue job to a real local HTTP server (off by default)."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from notify.outbox_fixtures import CommittedDb
from sqlalchemy import select
from staff.staffkit import bearer, make_user
from staff.test_staff_auth import console_login, page_csrf

from app.core.config import settings
from app.inbox import service as inbox
from app.inbox import tasks as inbox_tasks
from app.inbox.models import StaffNotification

URL = "/api/v1/staff/inbox"


def give(db, user, n: int = 1, prefix: str = "提醒") -> list[StaffNotification]:
    rows = []
    for i in range(n):
        rows += inbox.notify_users(
            db,
            [user],
            kind="answer_due",
            key=f"{prefix}:{user.id}:{i}",
            text=f"{prefix}{i}：信访 XF-20261102-{i:04d} 明天到期",
            link="/console/petitions/XF-20261102-0001",
        )
    db.flush()
    return rows


def badge(html: str) -> str | None:
    match = re.search(r"data-inbox-unread>(\d+)<", html)
    return match.group(1) if match else None


# ---------------------------------------------------------------- the staff API


def test_unauthenticated_is_401(client):
    assert client.get(URL).status_code == 401
    assert client.post(f"{URL}/1/read").status_code == 401
    assert client.post(f"{URL}/read-all").status_code == 401


def test_each_user_lists_reads_and_marks_only_their_own(client, db):
    alice, bob = make_user(db, "clerk"), make_user(db, "officer")
    mine = give(db, alice, 2, "甲")
    [theirs] = give(db, bob, 1, "乙")
    a, b = bearer(db, alice), bearer(db, bob)

    body = client.get(URL, headers=a).json()
    assert body["unread"] == 2
    assert {i["text"] for i in body["items"]} == {r.text for r in mine}
    assert all(i["read_at"] is None and i["link"] for i in body["items"])
    assert [i["text"] for i in client.get(URL, headers=b).json()["items"]] == [theirs.text]

    # Bob cannot read or mark Alice's (no hint it exists).
    refused = client.post(f"{URL}/{mine[0].id}/read", headers=b)
    assert refused.status_code == 404 and refused.json()["code"] == "not_found"
    assert client.get(URL, headers=a).json()["unread"] == 2

    one = client.post(f"{URL}/{mine[0].id}/read", headers=a)
    assert one.status_code == 200 and one.json()["read_at"]
    listed = client.get(URL, headers=a).json()
    assert listed["unread"] == 1
    assert listed["items"][0]["read_at"] is None  # unread first

    done = client.post(f"{URL}/read-all", headers=a).json()
    assert done == {"marked": 1, "unread": 0}
    # Bob's stays unread.
    assert client.get(URL, headers=b).json()["unread"] == 1


def test_the_same_reminder_is_given_once_per_user(db):
    user = make_user(db, "supervisor")
    for _ in range(3):
        inbox.notify_users(db, [user], kind="supervised", key="k:1", text="超期督办")
    assert inbox.unread_count(db, user.id) == 1


def test_the_residents_notifications_endpoint_is_still_the_outbox(client, db):
    """/staff/notifications stays the residents' outgoing queue (a contract)."""
    clerk = make_user(db, "clerk")
    give(db, clerk, 1)
    body = client.get("/api/v1/staff/notifications", headers=bearer(db, clerk)).json()
    assert "notifications" in body


# ---------------------------------------------------------------- the console


def test_console_badge_list_and_mark_read(client, db):
    alice = make_user(db, "clerk")
    rows = give(db, alice, 2, "提醒")
    console_login(client, alice.username)

    home = client.get("/console/petitions")
    assert home.status_code == 200 and badge(home.text) == "2"
    page = client.get("/console/inbox")
    assert page.status_code == 200 and "我的提醒" in page.text
    assert all(r.text in page.text for r in rows)

    # Without the CSRF token: refused, nothing changes.
    refused = client.post(f"/console/inbox/{rows[0].id}/read", follow_redirects=False)
    assert refused.status_code == 403
    assert inbox.unread_count(db, alice.id) == 2

    marked = client.post(
        f"/console/inbox/{rows[0].id}/read",
        data={"csrf_token": page_csrf(page.text)},
        follow_redirects=False,
    )
    assert marked.status_code == 303
    page = client.get("/console/inbox")
    assert badge(page.text) == "1" and "已读" in page.text

    assert client.post("/console/inbox/read-all", follow_redirects=False).status_code == 403
    client.post(
        "/console/inbox/read-all",
        data={"csrf_token": page_csrf(page.text)},
        follow_redirects=False,
    )
    page = client.get("/console/inbox")
    assert badge(page.text) is None
    assert inbox.unread_count(db, alice.id) == 0


def test_console_cannot_mark_another_users_reminder(client, db):
    alice, bob = make_user(db, "clerk"), make_user(db, "supervisor")
    [row] = give(db, alice, 1)
    console_login(client, bob.username)
    page = client.get("/console/inbox")
    assert row.text not in page.text
    response = client.post(
        f"/console/inbox/{row.id}/read",
        data={"csrf_token": page_csrf(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 404
    assert inbox.unread_count(db, alice.id) == 1


def test_console_inbox_needs_a_login(client):
    response = client.get("/console/inbox", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/login")


def test_residents_notification_page_still_works(client, db):
    clerk = make_user(db, "clerk")
    console_login(client, clerk.username)
    page = client.get("/console/notifications")
    assert page.status_code == 200 and "群众通知" in page.text


# ---------------------------------------------------------------- the webhook


class _Receiver(BaseHTTPRequestHandler):
    bodies: list[dict[str, object]]
    status = 200

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers.get("Content-Length") or 0)
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(type(self).status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"errcode":0}')

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[_Receiver]]]:
    """A real HTTP server on 127.0.0.1 playing the WeCom robot."""
    handler = type("Receiver", (_Receiver,), {"bodies": [], "status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/cgi-bin/webhook/send?key=SECRET", handler
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_webhook_is_off_by_default(outbox_db: CommittedDb, sqlite_queue) -> None:
    assert settings.staff_webhook_url == ""
    with outbox_db.sessions() as db:
        user = make_user(db, "supervisor")
        inbox.notify_users(db, [user], kind="supervised", key="k", text="超期督办：信访 X")
        db.commit()
    assert sqlite_queue.pending_count() == 0


def test_webhook_posts_each_new_reminder_from_the_queue_after_commit(
    outbox_db: CommittedDb, sqlite_queue, receiver, monkeypatch
) -> None:
    url, handler = receiver
    monkeypatch.setattr(settings, "staff_webhook_url", url)
    with outbox_db.sessions() as db:
        user = make_user(db, "supervisor")
        # Rolled back: never posted.
        inbox.notify_users(db, [user], kind="supervised", key="gone", text="不会发出")
        db.rollback()
        user = make_user(db, "supervisor")
        inbox.notify_users(
            db, [user], kind="supervised", key="k1", text="超期督办：信访 XF-20261102-0001"
        )
        assert sqlite_queue.pending_count() == 0  # not before the commit
        db.commit()
        # The same reminder again: already had, nothing new to post.
        inbox.notify_users(
            db, [user], kind="supervised", key="k1", text="超期督办：信访 XF-20261102-0001"
        )
        db.commit()
    assert sqlite_queue.pending_count() == 1
    assert handler.bodies == []  # the request never posts inline

    from app.worker import running_consumer

    with running_consumer(periodic=False):
        deadline = time.monotonic() + 15
        while not handler.bodies and time.monotonic() < deadline:
            time.sleep(0.05)
    assert handler.bodies == [
        {"msgtype": "text", "text": {"content": "超期督办：信访 XF-20261102-0001"}}
    ]
    with outbox_db.sessions() as db:
        assert len(db.scalars(select(StaffNotification)).all()) == 1


def test_webhook_failure_raises_for_retry_and_logs_no_url_or_text(
    receiver, monkeypatch, caplog
) -> None:
    url, handler = receiver
    handler.status = 500
    monkeypatch.setattr(settings, "staff_webhook_url", url)
    with caplog.at_level(logging.WARNING, logger="app.inbox"), pytest.raises(httpx.HTTPError):
        inbox_tasks.post_staff_webhook.call_local("超期督办：信访 XF-20261102-0001")
    assert len(handler.bodies) == 1
    logged = caplog.text
    assert "HTTPStatusError" in logged and "500" in logged
    assert "SECRET" not in logged and "XF-20261102" not in logged and "127.0.0.1" not in logged
    assert inbox_tasks.post_staff_webhook.task_class.default_retries >= 3
