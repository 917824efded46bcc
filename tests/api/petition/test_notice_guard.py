"""Issue 14: no path closes a petition before its public notice (公示) has run its 15 working
days — 督办 and 转办 included — and the buttons offered are the ones that can succeed.

Every state × action with a notice that began today (both backends): a close is refused, the
petition is unchanged and nothing is audited; the other moves behave as the machine says."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select
from staff.staffkit import do_move, make_petition, make_user

from app.audit.models import AuditLog
from app.core.errors import AppError
from app.core.workdays import calendar
from app.petition import staff_service, workflow
from app.petition.models import PetitionNotice

TODAY = date(2026, 12, 1)
END = calendar().add_working_days(TODAY, 15)[0]
MATRIX = [(s, a) for s in workflow.STATES for a in workflow.ACTIONS]


def _audits(db, number: str) -> int:
    return db.scalar(
        select(func.count()).where(AuditLog.entity_type == "petition", AuditLog.entity_id == number)
    )


def _notice_today(db, petition) -> None:
    row = db.get(PetitionNotice, petition.id)
    if row is None:
        db.add(PetitionNotice(petition_id=petition.id, started_on=TODAY, earliest_end=END))
    else:
        row.started_on, row.earliest_end = TODAY, END
    db.flush()


def _do(db, user, petition, action: str, today: date = TODAY):
    return do_move(db, user, petition, action, today)


@pytest.mark.parametrize(("state", "action"), MATRIX, ids=[f"{s}-{a}" for s, a in MATRIX])
def test_every_move_while_a_notice_runs(db, state, action):
    admin = make_user(db, "admin")
    petition = make_petition(db, status=state, answered=True)
    _notice_today(db, petition)
    audits = _audits(db, petition.number)
    legal = workflow.is_legal(state, action)
    offered = [a.code for a in staff_service.allowed_actions(admin, petition, db=db, today=TODAY)]

    if action == "close" or not legal:
        with pytest.raises(AppError) as err:
            _do(db, admin, petition, action)
        assert err.value.status_code == 409
        expected = "notice_running" if legal else "illegal_transition"
        assert err.value.code == expected
        if legal:
            assert f"{END:%Y年%m月%d日}" in err.value.message
        db.refresh(petition)
        assert petition.status == state
        assert _audits(db, petition.number) == audits
        assert action not in offered
    else:
        assert action in offered
        _do(db, admin, petition, action)
        assert petition.status == workflow.target_of(state, action)
        assert _audits(db, petition.number) == audits + 1


@pytest.mark.parametrize("detour", ["supervise", "transfer"])
def test_a_detour_does_not_shorten_the_notice(db, detour):
    """公示 begun today → 督办 (or 转办) → 办结 the same day: refused; on the notice's last day
    it closes."""
    supervisor = make_user(db, "supervisor")
    petition = make_petition(db, status="verifying", answered=True)
    _do(db, supervisor, petition, "start_notice")
    _do(db, supervisor, petition, detour)
    assert petition.status == workflow.target_of("public_notice", detour)
    for day in (TODAY, calendar().add_working_days(TODAY, 14)[0]):
        with pytest.raises(AppError) as err:
            _do(db, supervisor, petition, "close", today=day)
        assert err.value.code == "notice_running"
    reasons = staff_service.unavailable_actions(supervisor, petition, db=db, today=TODAY)
    assert [r["code"] for r in reasons] == ["close"]
    assert f"{END:%Y年%m月%d日}" in reasons[0]["reason"]
    _do(db, supervisor, petition, "close", today=END)
    assert petition.status == "closed"


def test_buttons_that_would_be_refused_are_not_offered(db):
    """开始核实 waits for every answer; 办结 waits for the notice; each says why."""
    clerk = make_user(db, "clerk")
    petition = make_petition(db, status="assigned", departments=("housing_bureau", "tax_bureau"))
    petition.assignments[0].answer = "已书面答复。"
    db.flush()
    offered = [a.code for a in staff_service.allowed_actions(clerk, petition, db=db, today=TODAY)]
    assert "verify" not in offered and "assign" in offered and "transfer" in offered
    waiting = staff_service.unavailable_actions(clerk, petition, db=db, today=TODAY)
    assert [w["code"] for w in waiting] == ["verify"]
    assert "税务局" in waiting[0]["reason"] and "住建局" not in waiting[0]["reason"]

    petition.assignments[1].answer = "已书面答复。"
    db.flush()
    offered = [a.code for a in staff_service.allowed_actions(clerk, petition, db=db, today=TODAY)]
    assert "verify" in offered
    assert staff_service.unavailable_actions(clerk, petition, db=db, today=TODAY) == []


def test_the_staff_api_offers_only_what_can_succeed(client, db):
    from staff.staffkit import bearer

    clerk = make_user(db, "clerk")
    petition = make_petition(db, status="verifying", answered=True)
    db.commit()
    headers = bearer(db, clerk)
    db.commit()
    url = f"/api/v1/staff/petitions/{petition.number}"
    body = client.get(url, headers=headers).json()
    assert "close" in body["allowed_actions"] and "start_notice" in body["allowed_actions"]
    started = client.post(
        f"{url}/transition",
        json={"action": "start_notice", "version": body["version"]},
        headers=headers,
    )
    assert started.status_code == 200, started.text
    body = started.json()
    assert body["status"] == "public_notice"
    assert "close" not in body["allowed_actions"]
    assert [u["code"] for u in body["unavailable_actions"]] == ["close"]
    refused = client.post(
        f"{url}/close",
        json={"outcome": "已办证。", "version": body["version"]},
        headers=headers,
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "notice_running"
    assert "公示期" in refused.json()["message"]
