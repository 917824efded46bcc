"""Issue 11, the petition side of the loop (both backends): a petition remembers the
conversation that filed it and the blockers explained; department answers reach residents only
once approved; every change puts one short Chinese notification in the outbox in the same
transaction; the resident's own satisfaction, and 不满意 → 复查中 (review) → closed again."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.config import settings
from app.core.errors import AppError
from app.core.workdays import calendar, today_shanghai
from app.notify import service as notify
from app.notify.models import Notification
from app.petition import staff_service
from app.petition.models import Petition
from tests.api.staff.staffkit import bearer, make_user

SENDER = "web-" + "a" * 32
OTHER_SENDER = "web-" + "b" * 32
PHONE = "13912345678"
BODY = {
    "person_name": "李桂芳",
    "phone": PHONE,
    "address": "幸福里小区5号楼1单元302",
    "description": "住了八年还没有房本，开发商联系不上。",
    "consent": True,
    "channel": "webchat",
}


def service(sender: str = SENDER) -> dict[str, str]:
    return {"Authorization": f"Service {settings.service_token}", "X-Sender-Id": sender}


def file_petition(client, db: Session, sender: str = SENDER, **extra) -> Petition:
    resp = client.post("/api/v1/petitions", json={**BODY, **extra}, headers=service(sender))
    assert resp.status_code == 201, resp.text
    petition = db.scalar(select(Petition).where(Petition.number == resp.json()["number"]))
    assert petition is not None
    return petition


def outbox(db: Session, petition: Petition) -> list[Notification]:
    return list(
        db.scalars(
            select(Notification)
            .where(Notification.petition_id == petition.id)
            .order_by(Notification.id)
        )
    )


def lookup(client, number: str) -> dict:
    resp = client.post(
        "/api/v1/petitions/lookup",
        json={"petition_number": number, "phone": PHONE},
        headers=service(),
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.fixture
def staff(db):
    users = {
        "clerk": make_user(db, "clerk"),
        "officer": make_user(db, "officer", department="housing_bureau"),
        "supervisor": make_user(db, "supervisor"),
    }
    db.flush()
    return users


@pytest.fixture
def resident(db):
    """A web-chat resident the api can reach."""
    notify.touch_contact(db, sender_id=SENDER, channel="webchat", address="k" * 64)
    db.flush()


def test_petition_records_its_sender_and_the_blockers_explained(client, db):
    petition = file_petition(
        client, db, blockers=["fire_acceptance", "no_such_code", "fire_acceptance", "mortgage"]
    )
    assert petition.sender_id == SENDER
    assert petition.blockers == ["fire_acceptance", "mortgage"]  # unknown dropped, no repeats


def test_a_browser_cannot_claim_a_conversation(client, db):
    """Only the action server names the conversation a petition came from."""
    resp = client.post("/api/v1/petitions", json=BODY, headers={"X-Sender-Id": SENDER})
    assert resp.status_code == 201
    stored = db.scalar(select(Petition).where(Petition.number == resp.json()["number"]))
    assert stored is not None and stored.sender_id is None


def test_staff_detail_shows_the_blockers_by_name(client, db, staff):
    petition = file_petition(client, db, blockers=["fire_acceptance"])
    db.commit()
    resp = client.get(
        f"/api/v1/staff/petitions/{petition.number}", headers=bearer(db, staff["clerk"])
    )
    assert resp.status_code == 200
    assert resp.json()["blockers"] == [{"code": "fire_acceptance", "name": "消防验收未通过"}]


def test_answer_reaches_the_resident_only_once_approved(client, db, staff, resident):
    petition = file_petition(client, db)
    clerk, officer = staff["clerk"], staff["officer"]
    assign(db, staff, petition)
    assert [n.kind for n in outbox(db, petition)] == ["state"]
    assert "住建局" in outbox(db, petition)[0].text

    staff_service.answer(
        db=db,
        user=officer,
        petition=petition,
        text="内部答复：已约谈开发企业，限期整改。",
        version=petition.version,
        resident_text="已约谈开发企业，要求月底前补交材料。",
    )
    db.commit()
    seen = lookup(client, petition.number)
    assert seen["answers"] == []  # recorded (counts for the workflow) but not approved
    assert [n.kind for n in outbox(db, petition)] == ["state"]

    staff_service.approve_answer(
        db=db,
        user=clerk,
        petition=petition,
        department="housing_bureau",
        version=petition.version,
    )
    db.commit()
    seen = lookup(client, petition.number)
    assert [(a["department_name"], a["text"]) for a in seen["answers"]] == [
        ("住建局", "已约谈开发企业，要求月底前补交材料。")
    ]
    assert seen["answers"][0]["at"].endswith("+08:00")
    assert "内部答复" not in str(seen)
    answer_note = outbox(db, petition)[-1]
    assert answer_note.kind == "answer" and "月底前补交材料" in answer_note.text
    with pytest.raises(AppError) as again:
        staff_service.approve_answer(
            db=db,
            user=clerk,
            petition=petition,
            department="housing_bureau",
            version=petition.version,
        )
    assert again.value.code == "already_published"


def test_officer_may_publish_their_own_answer_through_the_api(client, db, staff, resident):
    petition = file_petition(client, db)
    assign(db, staff, petition)
    db.commit()
    resp = client.post(
        f"/api/v1/staff/petitions/{petition.number}/answer",
        json={"answer": "已受理，正在补办验收。", "version": petition.version, "publish": True},
        headers=bearer(db, staff["officer"]),
    )
    assert resp.status_code == 200, resp.text
    row = resp.json()["assignments"][0]
    assert row["resident_text"] == "已受理，正在补办验收。"  # defaults to the answer
    assert row["approved_by"] == staff["officer"].username
    assert lookup(client, petition.number)["answers"][0]["text"] == "已受理，正在补办验收。"


def test_officer_cannot_approve_answers(client, db, staff):
    petition = file_petition(client, db)
    assign(db, staff, petition)
    staff_service.answer(
        db=db, user=staff["officer"], petition=petition, text="已答复", version=petition.version
    )
    db.commit()
    resp = client.post(
        f"/api/v1/staff/petitions/{petition.number}/answers/housing_bureau/approve",
        json={"version": petition.version},
        headers=bearer(db, staff["officer"]),
    )
    assert resp.status_code == 403


def test_notification_is_written_with_the_change_or_not_at_all(client, db, staff, resident):
    """A refused change (stale version) leaves no notification behind."""
    petition = file_petition(client, db)
    with pytest.raises(AppError):
        staff_service.assign(
            db=db,
            user=staff["clerk"],
            petition=petition,
            departments_=["housing_bureau"],
            version=petition.version + 5,
        )
    assert outbox(db, petition) == []


def assign(
    db: Session, staff: dict, petition: Petition, department: str = "housing_bureau"
) -> None:
    staff_service.assign(
        db=db,
        user=staff["clerk"],
        petition=petition,
        departments_=[department],
        version=petition.version,
    )


def _verifying(client, db, staff) -> Petition:
    """A petition filed by SENDER, assigned to 住建局, answered (published) and in 核实中."""
    petition = file_petition(client, db)
    clerk = staff["clerk"]
    assign(db, staff, petition)
    staff_service.answer(
        db=db,
        user=staff["officer"],
        petition=petition,
        text="已办理",
        version=petition.version,
        publish=True,
    )
    staff_service.transition(
        db=db, user=clerk, petition=petition, action="verify", version=petition.version
    )
    return petition


def _closed(client, db, staff, satisfaction: str | None = None) -> Petition:
    petition = _verifying(client, db, staff)
    staff_service.close(
        db=db,
        user=staff["clerk"],
        petition=petition,
        outcome="已完成首次登记，可以申请转移登记。",
        satisfaction=satisfaction,
        version=petition.version,
    )
    db.commit()
    return petition


def test_closing_asks_the_resident_and_the_check_shows_the_outcome(client, db, staff, resident):
    petition = _closed(client, db, staff)
    last = outbox(db, petition)[-1]
    assert last.kind == "closed"
    assert "已完成首次登记" in last.text and "满意" in last.text
    seen = lookup(client, petition.number)
    assert seen["status"] == "closed" and seen["outcome"].startswith("已完成首次登记")
    assert seen["closed_at"].endswith("+08:00")
    assert "不满意" in seen["next_step"]


def test_resident_satisfied(client, db, staff, resident):
    petition = _closed(client, db, staff)
    resp = client.post(
        f"/api/v1/petitions/{petition.number}/feedback",
        json={"satisfaction": "basically_satisfied"},
        headers=service(),
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "number": petition.number,
        "status": "closed",
        "status_label": "已办结",
        "review_due": None,
    }
    db.refresh(petition)
    assert (petition.satisfaction, petition.satisfaction_source) == (
        "basically_satisfied",
        "resident",
    )


def test_only_the_filing_conversation_answers(client, db, staff, resident):
    petition = _closed(client, db, staff)
    url = f"/api/v1/petitions/{petition.number}/feedback"
    body = {"satisfaction": "satisfied"}
    assert client.post(url, json=body, headers=service(OTHER_SENDER)).status_code == 404
    browser = client.post(url, json=body, headers={"X-Sender-Id": SENDER})
    assert browser.status_code == 403
    assert any("\u4e00" <= ch <= "\u9fff" for ch in browser.json()["message"])


def test_feedback_before_closing_is_refused(client, db, staff):
    petition = file_petition(client, db)
    db.commit()
    resp = client.post(
        f"/api/v1/petitions/{petition.number}/feedback",
        json={"satisfaction": "satisfied"},
        headers=service(),
    )
    assert resp.status_code == 409 and "办结" in resp.json()["message"]


def test_unsatisfied_opens_a_review_that_closes_again(client, db, staff, resident):
    petition = _closed(client, db, staff)
    resp = client.post(
        f"/api/v1/petitions/{petition.number}/feedback",
        json={"satisfaction": "unsatisfied", "reason": "证还是办不下来"},
        headers=service(),
    )
    assert resp.status_code == 200, resp.text
    db.refresh(petition)
    expected, _ = calendar().add_working_days(today_shanghai(), staff_service.review_days())
    assert resp.json()["status"] == "review" and resp.json()["status_label"] == "复查中"
    assert petition.review_due == expected == petition.closure_due
    assert petition.satisfaction_reason == "证还是办不下来"
    assert outbox(db, petition)[-1].kind == "review"
    assert "复查" in lookup(client, petition.number)["next_step"]

    clerk = staff["clerk"]
    # A review gets its own assignment and answer; while one is missing it cannot close.
    staff_service.assign(
        db=db,
        user=clerk,
        petition=petition,
        departments_=["tax_bureau"],
        version=petition.version,
    )
    assert petition.status == "review"
    with pytest.raises(AppError) as missing:
        staff_service.close(
            db=db,
            user=clerk,
            petition=petition,
            outcome="复查维持",
            satisfaction=None,
            version=petition.version,
        )
    assert missing.value.code == "answers_missing"
    staff_service.answer(
        db=db,
        user=clerk,
        petition=petition,
        text="税款已补缴",
        version=petition.version,
        department="tax_bureau",
    )
    staff_service.close(
        db=db,
        user=clerk,
        petition=petition,
        outcome="复查后已补缴税款，可以办证。",
        satisfaction=None,
        version=petition.version,
    )
    assert petition.status == "closed" and petition.review_count == 1
    # The new outcome is asked about again.
    assert petition.satisfaction is None and outbox(db, petition)[-1].kind == "closed"


def test_dashboard_counts_reviews(client, db, staff, resident):
    from app.dashboard import service as dashboard_service

    petition = _closed(client, db, staff)
    client.post(
        f"/api/v1/petitions/{petition.number}/feedback",
        json={"satisfaction": "unsatisfied"},
        headers=service(),
    )
    figures = dashboard_service.build(db=db, today=today_shanghai()).petitions
    assert figures.in_review >= 1 and figures.reviews >= 1


def test_a_phone_answer_is_not_asked_again_but_unreached_is(client, db, staff, resident):
    """满意 heard on the phone: the resident is told, not asked; 未联系上: asked in the chat."""
    for satisfaction, kind in (("satisfied", "state"), ("unreached", "closed")):
        petition = _closed(client, db, staff, satisfaction)
        last = outbox(db, petition)[-1]
        assert last.kind == kind
        assert ("满意吗" in last.text) is (kind == "closed")
