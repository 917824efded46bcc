"""Issue 14, the published procedure complete (both backends): an objection during the notice
sends the petition to the court and it resumes with the court's document; a resettlement case
needs the 征收办's 回迁确认书 before its notice; 督办 of an overdue department reaches 纪委监委;
a case goes to the office meeting and its decision is recorded."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select
from staff.staffkit import make_petition, make_project, make_user

from app.audit.models import AuditLog
from app.core.errors import AppError
from app.core.workdays import calendar
from app.notify.models import Notification
from app.petition import procedure, staff_service

TODAY = date(2026, 12, 1)
END = calendar().add_working_days(TODAY, 15)[0]


def _move(db, user, petition, action, today=TODAY, note=""):
    return staff_service.transition(
        db=db,
        user=user,
        petition=petition,
        action=action,
        version=petition.version,
        note=note,
        today=today,
    )


def _close(db, user, petition, today):
    return staff_service.close(
        db=db,
        user=user,
        petition=petition,
        outcome="公示期满，已办理首次登记。",
        satisfaction=None,
        version=petition.version,
        today=today,
    )


def _told(db, petition) -> list[str]:
    rows = db.scalars(select(Notification).where(Notification.petition_id == petition.id))
    return [n.text for n in rows]


def test_an_objection_sends_the_petition_to_the_court_and_back(db):
    clerk = make_user(db, "clerk")
    petition = make_petition(db, status="verifying", answered=True)
    petition.sender_id = "web-" + "d" * 32
    _move(db, clerk, petition, "start_notice")
    procedure.record_objection(
        db=db,
        user=clerk,
        petition=petition,
        raised_by="同楼住户",
        content="认为该户面积登记有误",
        received_on=date(2026, 12, 3),
        version=petition.version,
        today=date(2026, 12, 3),
    )
    # Even once the notice period is over, an open objection blocks the close.
    with pytest.raises(AppError) as err:
        _close(db, clerk, petition, END)
    assert err.value.code == "objection_open"
    waiting = staff_service.unavailable_actions(clerk, petition, db=db, today=END)
    assert [w["code"] for w in waiting] == ["close"] and "异议" in waiting[0]["reason"]

    _move(db, clerk, petition, "transfer", note="面积争议，转区法院依法处理")
    assert petition.status == "transferred"
    objection = procedure.objections(db=db, petition=petition)[0]
    assert objection.status == "transferred"
    assert any("收到异议，已转法院" in t for t in _told(db, petition))
    with pytest.raises(AppError) as err:
        _close(db, clerk, petition, END)
    assert err.value.code == "objection_open"  # still waiting for the court

    procedure.record_court_document(
        db=db,
        user=clerk,
        petition=petition,
        objection_id=objection.id,
        document="（2026）鲁0203民初88号",
        document_on=date(2026, 12, 20),
        summary="驳回异议",
        version=petition.version,
        today=date(2026, 12, 21),
    )
    assert petition.status == "public_notice" and objection.status == "decided"
    assert any("法院已出具文书，现恢复办理" in t for t in _told(db, petition))
    _close(db, clerk, petition, END)
    assert petition.status == "closed"
    actions = [
        r.action for r in db.scalars(select(AuditLog).where(AuditLog.entity_id == petition.number))
    ]
    assert "petition.objection" in actions and "petition.court_document" in actions


def test_objections_only_during_the_notice_and_with_a_sensible_date(db):
    clerk = make_user(db, "clerk")
    petition = make_petition(db, status="verifying", answered=True)
    with pytest.raises(AppError) as err:
        procedure.record_objection(
            db=db,
            user=clerk,
            petition=petition,
            raised_by="住户",
            content="有异议",
            received_on=None,
            version=petition.version,
        )
    assert err.value.code == "not_in_notice"
    _move(db, clerk, petition, "start_notice")
    for received, code in [(date(2026, 12, 9), "bad_date"), (date(2026, 11, 1), "bad_date")]:
        with pytest.raises(AppError) as err:
            procedure.record_objection(
                db=db,
                user=clerk,
                petition=petition,
                raised_by="住户",
                content="有异议",
                received_on=received,
                version=petition.version,
                today=date(2026, 12, 2),
            )
        assert err.value.code == code
    with pytest.raises(AppError) as err:
        procedure.record_objection(
            db=db,
            user=clerk,
            petition=petition,
            raised_by=" ",
            content="有异议",
            received_on=None,
            version=petition.version,
            today=TODAY,
        )
    assert err.value.status_code == 422 and "提出异议的人" in err.value.message


def test_a_resettlement_case_needs_its_confirmation_before_the_notice(db):
    clerk = make_user(db, "clerk")
    project = make_project(db, blockers=(("resettlement_unconfirmed", "expropriation_office"),))
    petition = make_petition(
        db,
        status="verifying",
        answered=True,
        project=project,
        departments=("expropriation_office",),
    )
    offered = [a.code for a in staff_service.allowed_actions(clerk, petition, db=db, today=TODAY)]
    assert "start_notice" not in offered
    with pytest.raises(AppError) as err:
        _move(db, clerk, petition, "start_notice")
    assert err.value.code == "resettlement_unconfirmed" and "回迁确认书" in err.value.message

    housing = make_user(db, "officer", department="housing_bureau")
    with pytest.raises(AppError) as err:
        procedure.record_resettlement(
            db=db,
            user=housing,
            petition=petition,
            document_number="征确字〔2026〕8号",
            confirmed_on=None,
            version=petition.version,
        )
    assert err.value.status_code == 403
    expropriation = make_user(db, "officer", department="expropriation_office")
    procedure.record_resettlement(
        db=db,
        user=expropriation,
        petition=petition,
        document_number="征确字〔2026〕8号",
        confirmed_on=date(2026, 11, 30),
        version=petition.version,
        today=TODAY,
    )
    assert procedure.detail(db, petition)["resettlement"] == {
        "document_number": "征确字〔2026〕8号",
        "confirmed_on": date(2026, 11, 30),
    }
    _move(db, clerk, petition, "start_notice")
    assert petition.status == "public_notice"


def test_other_petitions_start_their_notice_without_a_confirmation(db):
    clerk = make_user(db, "clerk")
    petition = make_petition(db, status="verifying", answered=True, project=make_project(db))
    assert procedure.detail(db, petition)["resettlement_case"] is False
    _move(db, clerk, petition, "start_notice")
    assert petition.status == "public_notice"


def test_supervising_an_overdue_department_reaches_the_supervision_group(db):
    supervisor = make_user(db, "supervisor")
    late = make_petition(
        db, status="assigned", departments=("tax_bureau",), assigned_on=date(2026, 11, 2)
    )
    _move(db, supervisor, late, "supervise")
    assert [a.department for a in late.assignments] == ["tax_bureau", "discipline_commission"]
    row = db.scalars(
        select(AuditLog).where(AuditLog.entity_id == late.number).order_by(AuditLog.id.desc())
    ).first()
    assert row.after["overdue_departments"] == ["tax_bureau"]
    assert row.after["supervision"] == "discipline_commission"

    on_time = make_petition(db, status="assigned", departments=("tax_bureau",), assigned_on=TODAY)
    _move(db, supervisor, on_time, "supervise")
    assert [a.department for a in on_time.assignments] == ["tax_bureau"]


def test_the_office_meeting_and_its_decision(db):
    clerk = make_user(db, "clerk")
    petition = make_petition(db, status="verifying", answered=True)
    with pytest.raises(AppError) as err:
        procedure.record_meeting_decision(
            db=db, user=clerk, petition=petition, decision="同意", decided_on=None, version=1
        )
    assert err.value.code == "not_flagged"
    with pytest.raises(AppError) as err:
        procedure.flag_meeting(
            db=db, user=clerk, petition=petition, kind="urgent", reason="x", version=1
        )
    assert err.value.code == "meeting_kind"
    procedure.flag_meeting(
        db=db,
        user=clerk,
        petition=petition,
        kind="special",
        reason="开发企业失联，需专班兜底",
        version=petition.version,
    )
    with pytest.raises(AppError) as err:
        procedure.flag_meeting(
            db=db,
            user=clerk,
            petition=petition,
            kind="general",
            reason="再提",
            version=petition.version,
        )
    assert err.value.code == "already_flagged"
    procedure.record_meeting_decision(
        db=db,
        user=clerk,
        petition=petition,
        decision="由办证专班牵头，先行办理首次登记",
        decided_on=date(2026, 11, 30),
        version=petition.version,
        today=TODAY,
    )
    meeting = procedure.detail(db, petition)["meeting"]
    assert (meeting["kind_label"], meeting["decided_on"]) == ("特殊情形", date(2026, 11, 30))
    assert meeting["decision"].startswith("由办证专班牵头")
