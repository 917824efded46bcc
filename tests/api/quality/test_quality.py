"""The maintainers' quality page (both backends): containment, fallback and transfer rates from
real conversations, the most frequent unanswered messages, per-intent F1 by model version from
annotated messages, and the confusion matrix as an image; only maintainers and admins see it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from staff.staffkit import make_user
from staff.test_staff_auth import console_login

from app.nlu.models import NluInboxItem
from app.notify.models import ResidentContact
from app.petition.models import Petition
from app.quality import charts
from app.quality import service as quality_service

DAY = date(2026, 11, 20)
AT = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai


def contact(db, sender: str, turns: int, **extra) -> ResidentContact:
    row = ResidentContact(sender_id=sender, channel="webchat", created_at=AT, turns=turns, **extra)
    db.add(row)
    return row


def item(db, text: str, reason: str, **extra) -> NluInboxItem:
    row = NluInboxItem(
        text=text,
        reason=reason,
        channel="webchat",
        created_at=AT,
        predicted_intent=extra.pop("predicted", "nlu_fallback"),
        confidence=0.3,
        **extra,
    )
    db.add(row)
    return row


@pytest.fixture
def data(db):
    # Four conversations: one answered by the bot alone, one that filed a petition, one that
    # asked for a person, one taken over by staff; and one from last month (outside the period).
    contact(db, "web-a", 4)
    contact(db, "web-b", 6)
    contact(db, "web-c", 3, handoff_at=AT)
    contact(db, "web-d", 7, staff_at=AT)
    old = contact(db, "web-old", 5)
    old.created_at = AT - timedelta(days=40)
    db.flush()
    petition = db.query(Petition).first()
    if petition is None:
        from staff.staffkit import make_petition

        petition = make_petition(db)
    petition.sender_id = "web-b"
    # Unanswered: the same words twice (width and punctuation aside), another once.
    item(db, "孩子上学要房本吗？", "fallback")
    item(db, "孩子上学要房本吗", "out_of_scope", predicted="out_of_scope")
    item(db, "物业费怎么交", "fallback")
    # Annotated by maintainers, two model versions.
    item(
        db,
        "房本啥时候下来",
        "low_confidence",
        predicted="ask_next_steps",
        model_id="aaaa1111",
        intent="ask_certificate_status",
        status="annotated",
    )
    item(
        db,
        "我家证咋还没有",
        "low_confidence",
        predicted="ask_certificate_status",
        model_id="bbbb2222",
        intent="ask_certificate_status",
        status="exported",
    )
    item(
        db,
        "天气怎么样",
        "low_confidence",
        predicted="ask_materials",
        model_id="bbbb2222",
        status="out_of_scope",
    )
    item(db, "还没看的", "low_confidence", predicted="greet", model_id="bbbb2222", status="new")
    db.flush()


def test_rates_over_the_period(db, data):
    q = quality_service.build(db=db, since=DAY - timedelta(days=1), until=DAY)
    assert (q.conversations, q.with_petition, q.with_person, q.contained) == (4, 1, 2, 1)
    assert q.containment_rate == 25.0 and q.transfer_rate == 50.0
    assert q.turns == 20 and q.fallback_turns == 2 and q.fallback_rate == 10.0
    assert q.unanswered[0][1] == 2 and "孩子上学" in q.unanswered[0][0]
    assert [n for _, n in q.unanswered] == [2, 1]


def test_f1_by_model_version_and_the_confusion_matrix(db, data):
    q = quality_service.build(db=db, since=DAY, until=DAY)
    assert q.versions == ["aaaa1111", "bbbb2222"]
    assert q.annotated == 3  # the unannotated one does not count
    status = q.by_intent["ask_certificate_status"]
    assert status["aaaa1111"].f1 == 0.0  # support 1, predicted 0 → wrong
    assert status["bbbb2222"].f1 == 1.0
    assert q.by_intent["out_of_scope"]["bbbb2222"].f1 == 0.0
    assert q.confusion == {
        ("ask_certificate_status", "ask_next_steps"): 1,
        ("ask_certificate_status", "ask_certificate_status"): 1,
        ("out_of_scope", "ask_materials"): 1,
    }
    svg = charts.confusion_svg(q)
    assert svg.startswith("<svg") and "ask_certificate_status → ask_next_steps：1" in svg


def test_only_maintainers_and_admins_see_it(client, db, data):
    maintainer = make_user(db, "maintainer")
    clerk = make_user(db, "clerk")
    db.commit()
    console_login(client, clerk.username)
    assert client.get("/console/quality").status_code == 403
    assert client.get("/console/quality/confusion.svg").status_code == 403
    client.cookies.clear()
    console_login(client, maintainer.username)
    page = client.get("/console/quality?since=2026-11-19&until=2026-11-20")
    assert page.status_code == 200
    assert "25.0%" in page.text and "50.0%" in page.text and "孩子上学要房本吗" in page.text
    image = client.get("/console/quality/confusion.svg?since=2026-11-20&until=2026-11-20")
    assert image.headers["content-type"].startswith("image/svg+xml")
    assert "混淆矩阵" in image.text
    assert client.get("/console/quality?since=yesterday").status_code == 422
