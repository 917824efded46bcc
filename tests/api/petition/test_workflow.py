"""The petition state machine: every legal and every illegal move, guards and roles."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select
from staff.staffkit import do_move, make_petition, make_user

from app.audit.models import AuditLog
from app.core.errors import AppError
from app.petition import staff_service, workflow
from app.petition.models import STATUS_LABELS

TODAY = date(2026, 12, 1)
ALL_MOVES = [(s, a) for s in workflow.STATES for a in workflow.ACTIONS]
LEGAL = [(s, a) for s, a in ALL_MOVES if workflow.is_legal(s, a)]
ILLEGAL = [(s, a) for s, a in ALL_MOVES if not workflow.is_legal(s, a)]


def _audit_count(db, number: str) -> int:
    return db.scalar(
        select(func.count()).where(AuditLog.entity_type == "petition", AuditLog.entity_id == number)
    )


def _do(db, user, petition, action: str):
    return do_move(db, user, petition, action, TODAY)


def test_the_procedure_is_covered():
    """Every state appears as a source or target, and closed is final."""
    sources = {s for s, _ in LEGAL}
    targets = {a.target for a in workflow.ACTIONS.values()}
    assert sources | targets == set(STATUS_LABELS)
    assert not workflow.actions_from("closed")
    assert len(LEGAL) + len(ILLEGAL) == len(STATUS_LABELS) * len(workflow.ACTIONS)


@pytest.mark.parametrize(("state", "action"), LEGAL, ids=[f"{s}-{a}" for s, a in LEGAL])
def test_legal_move(db, state, action):
    """A legal move reaches its target state and writes one audit row with before/after."""
    supervisor = make_user(db, "supervisor")
    petition = make_petition(db, status=state, answered=True)
    before_rows = _audit_count(db, petition.number)
    version = petition.version
    target = workflow.target_of(state, action)
    _do(db, supervisor, petition, action)
    db.flush()
    assert petition.status == target
    assert petition.version == version + 1
    rows = db.scalars(
        select(AuditLog).where(AuditLog.entity_id == petition.number).order_by(AuditLog.id.desc())
    ).all()
    assert len(rows) == before_rows + 1
    assert rows[0].actor == f"staff:{supervisor.username}"
    assert rows[0].before["status"] == state
    assert rows[0].after["status"] == target


@pytest.mark.parametrize(("state", "action"), ILLEGAL, ids=[f"{s}-{a}" for s, a in ILLEGAL])
def test_illegal_move(db, state, action):
    """An illegal move is refused with a Chinese message; nothing changes, nothing audited."""
    admin = make_user(db, "admin")
    petition = make_petition(db, status=state, answered=True)
    before_rows = _audit_count(db, petition.number)
    with pytest.raises(AppError) as err:
        _do(db, admin, petition, action)
    assert err.value.status_code == 409
    assert err.value.code == "illegal_transition"
    assert STATUS_LABELS[state] in err.value.message
    assert workflow.ACTIONS[action].label in err.value.message
    db.refresh(petition)
    assert petition.status == state
    assert _audit_count(db, petition.number) == before_rows


def test_unknown_action_is_refused(db):
    """An action that is not in the machine is a 422."""
    petition = make_petition(db, status="assigned")
    with pytest.raises(AppError) as err:
        _do(db, make_user(db, "admin"), petition, "reopen")
    assert err.value.status_code == 422


@pytest.mark.parametrize(
    ("role", "state", "action"),
    [
        ("clerk", "assigned", "supervise"),
        ("officer", "accepted", "assign"),
        ("officer", "verifying", "close"),
        ("officer", "assigned", "transfer"),
    ],
)
def test_roles_limit_moves(db, role, state, action):
    """督办 is for supervisors; officers do not move petitions."""
    user = make_user(db, role)
    petition = make_petition(db, status=state, answered=True)
    with pytest.raises(AppError) as err:
        _do(db, user, petition, action)
    assert err.value.status_code == 403
    assert petition.status == state


def test_verify_waits_for_every_answer(db):
    """核实 starts only when every assigned department has answered in writing."""
    petition = make_petition(db, status="assigned", departments=("housing_bureau", "tax_bureau"))
    petition.assignments[0].answer = "已答复"
    db.flush()
    with pytest.raises(AppError) as err:
        _do(db, make_user(db, "clerk"), petition, "verify")
    assert err.value.code == "answers_missing"
    assert "税务局" in err.value.message and "住建局" not in err.value.message


def test_close_needs_outcome_and_satisfaction(db):
    """Closing asks for the outcome; a phone satisfaction, when given, is one of the labels."""
    clerk = make_user(db, "clerk")
    petition = make_petition(db, status="verifying", answered=True)
    for outcome, satisfaction, code in [
        ("", "satisfied", "outcome_required"),
        ("已办证", "happy", "satisfaction_invalid"),
    ]:
        with pytest.raises(AppError) as err:
            staff_service.close(
                db=db,
                user=clerk,
                petition=petition,
                outcome=outcome,
                satisfaction=satisfaction,
                version=petition.version,
            )
        assert err.value.code == code
    assert petition.status == "verifying"
    staff_service.close(
        db=db,
        user=clerk,
        petition=petition,
        outcome="已办证",
        satisfaction="unreached",
        version=petition.version,
    )
    assert (petition.status, petition.satisfaction, petition.outcome) == (
        "closed",
        "unreached",
        "已办证",
    )
    assert petition.satisfaction_source == "clerk_phone"
    assert petition.closed_at is not None


def test_close_without_satisfaction_waits_for_the_resident(db):
    """Without a phone entry nobody has judged the outcome yet: the resident will be asked."""
    clerk = make_user(db, "clerk")
    petition = make_petition(db, status="verifying", answered=True)
    staff_service.close(
        db=db,
        user=clerk,
        petition=petition,
        outcome="已办证",
        satisfaction=None,
        version=petition.version,
    )
    assert petition.status == "closed"
    assert petition.satisfaction is None and petition.satisfaction_source is None


def test_public_notice_lasts_fifteen_working_days(db):
    """A notice begun on 2026-11-23 may not end before 2026-12-14 (15 working days)."""
    clerk = make_user(db, "clerk")
    petition = make_petition(db, status="verifying", answered=True)
    staff_service.transition(
        db=db,
        user=clerk,
        petition=petition,
        action="start_notice",
        version=petition.version,
        today=date(2026, 11, 23),
    )
    notice = staff_service.notice(db=db, petition=petition)
    assert notice is not None and notice.earliest_end == date(2026, 12, 14)
    with pytest.raises(AppError) as err:
        staff_service.close(
            db=db,
            user=clerk,
            petition=petition,
            outcome="公告期满无异议，已登记。",
            satisfaction="satisfied",
            version=petition.version,
            today=date(2026, 12, 11),
        )
    assert err.value.code == "notice_running" and "2026年12月14日" in err.value.message
    staff_service.close(
        db=db,
        user=clerk,
        petition=petition,
        outcome="公告期满无异议，已登记。",
        satisfaction="satisfied",
        version=petition.version,
        today=date(2026, 12, 14),
    )
    assert petition.status == "closed"


def test_transfer_needs_a_reason(db):
    """转办 says where to and why."""
    petition = make_petition(db, status="assigned")
    with pytest.raises(AppError) as err:
        staff_service.transition(
            db=db,
            user=make_user(db, "clerk"),
            petition=petition,
            action="transfer",
            version=petition.version,
        )
    assert err.value.code == "reason_required"


def test_assign_to_several_departments_and_reject_duplicates(db):
    """Several departments at once; unknown or already-assigned ones are refused."""
    clerk = make_user(db, "clerk")
    petition = make_petition(db, status="accepted")
    staff_service.assign(
        db=db,
        user=clerk,
        petition=petition,
        departments_=["housing_bureau", "tax_bureau"],
        version=petition.version,
        today=TODAY,
    )
    assert sorted(a.department for a in petition.assignments) == ["housing_bureau", "tax_bureau"]
    with pytest.raises(AppError) as err:
        staff_service.assign(
            db=db,
            user=clerk,
            petition=petition,
            departments_=["tax_bureau"],
            version=petition.version,
        )
    assert err.value.code == "already_assigned"
    with pytest.raises(AppError) as err:
        staff_service.assign(
            db=db,
            user=clerk,
            petition=petition,
            departments_=["no_such_bureau"],
            version=petition.version,
        )
    assert err.value.code == "unknown_department"


def test_officer_answers_only_own_department(db):
    """An officer records their own department's answer, never another's."""
    officer = make_user(db, "officer", department="tax_bureau")
    petition = make_petition(db, status="assigned", departments=("housing_bureau", "tax_bureau"))
    with pytest.raises(AppError) as err:
        staff_service.answer(
            db=db,
            user=officer,
            petition=petition,
            text="我们来答复住建局的部分",
            version=petition.version,
            department="housing_bureau",
        )
    assert err.value.status_code == 403
    staff_service.answer(
        db=db,
        user=officer,
        petition=petition,
        text="开发企业欠税已另案追缴。",
        version=petition.version,
    )
    answers = {a.department: a.answer for a in petition.assignments}
    assert answers == {"housing_bureau": None, "tax_bureau": "开发企业欠税已另案追缴。"}
