"""Audit rows written in the same transaction as the change, and optimistic locking."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select
from staff.staffkit import make_petition, make_user

from app.audit import service as audit
from app.audit.models import AuditLog
from app.core.database import session_scope
from app.core.errors import AppError
from app.petition import staff_service
from app.petition.models import Petition


def _setup(committing_sessions):
    with session_scope(committing_sessions) as db:
        clerk = make_user(db, "clerk")
        supervisor = make_user(db, "supervisor")
        petition = make_petition(db, status="accepted")
        return clerk.id, supervisor.id, petition.id


def _audits(db, number):
    return db.scalar(select(func.count()).where(AuditLog.entity_id == number))


def test_failed_audit_leaves_neither_change_nor_audit(committing_sessions, monkeypatch):
    """When writing the audit row fails, the state change is rolled back with it."""
    from app.staff.models import StaffUser

    clerk_id, _, petition_id = _setup(committing_sessions)

    def broken_record(**_kwargs):
        raise RuntimeError("audit store down")

    monkeypatch.setattr(audit, "record", broken_record)
    with pytest.raises(RuntimeError), session_scope(committing_sessions) as db:
        petition = db.get(Petition, petition_id)
        staff_service.assign(
            db=db,
            user=db.get(StaffUser, clerk_id),
            petition=petition,
            departments_=["housing_bureau"],
            version=petition.version,
            today=date(2026, 11, 23),
        )
    monkeypatch.undo()
    with session_scope(committing_sessions) as db:
        petition = db.get(Petition, petition_id)
        assert petition.status == "accepted" and petition.assignments == []
        assert _audits(db, petition.number) == 0


def test_failed_change_leaves_no_audit(committing_sessions):
    """A change refused at flush (a lost race) leaves no audit row either."""
    from app.staff.models import StaffUser

    clerk_id, _, petition_id = _setup(committing_sessions)
    with pytest.raises(AppError), session_scope(committing_sessions) as db:
        petition = db.get(Petition, petition_id)
        staff_service.assign(
            db=db,
            user=db.get(StaffUser, clerk_id),
            petition=petition,
            departments_=["housing_bureau"],
            version=petition.version,
            today=date(2026, 11, 23),
        )
        staff_service.add_note(db=db, user=db.get(StaffUser, clerk_id), petition=petition, text="")
    with session_scope(committing_sessions) as db:
        petition = db.get(Petition, petition_id)
        assert petition.status == "accepted" and _audits(db, petition.number) == 0


def test_successful_change_commits_change_and_audit_together(committing_sessions):
    """The normal path: state and audit row are both there after commit."""
    from app.staff.models import StaffUser

    clerk_id, _, petition_id = _setup(committing_sessions)
    with session_scope(committing_sessions) as db:
        petition = db.get(Petition, petition_id)
        staff_service.assign(
            db=db,
            user=db.get(StaffUser, clerk_id),
            petition=petition,
            departments_=["housing_bureau"],
            version=petition.version,
            today=date(2026, 11, 23),
        )
    with session_scope(committing_sessions) as db:
        petition = db.get(Petition, petition_id)
        row = db.scalars(select(AuditLog).where(AuditLog.entity_id == petition.number)).one()
        assert petition.status == "assigned"
        assert row.action == "petition.assign"
        assert row.before["status"] == "accepted" and row.after["status"] == "assigned"
        assert row.after["answer_due"] == {"housing_bureau": "2026-11-30"}


def test_audit_rows_cannot_be_changed(db):
    """Audit rows are insert-only: an update or delete through the ORM is refused."""
    row = audit.record(
        db=db, actor="staff:x", action="petition.note", entity_type="petition", entity_id="XF-1"
    )
    row.actor = "someone else"
    with pytest.raises(RuntimeError):
        db.flush()
    db.rollback()


def test_concurrent_edit_gets_a_conflict(committing_sessions):
    """Two clerks load version N; the first saves, the second gets a Chinese 409."""
    from app.staff.models import StaffUser

    clerk_id, supervisor_id, petition_id = _setup(committing_sessions)
    first = committing_sessions()
    second = committing_sessions()
    try:
        p1 = first.get(Petition, petition_id)
        p2 = second.get(Petition, petition_id)
        assert p1.version == p2.version
        staff_service.assign(
            db=first,
            user=first.get(StaffUser, clerk_id),
            petition=p1,
            departments_=["housing_bureau"],
            version=p1.version,
            today=date(2026, 11, 23),
        )
        first.commit()
        with pytest.raises(AppError) as err:
            staff_service.transition(
                db=second,
                user=second.get(StaffUser, supervisor_id),
                petition=p2,
                action="supervise",
                version=p2.version,
                today=date(2026, 11, 23),
            )
        second.rollback()
        assert err.value.status_code == 409 and err.value.code == "version_conflict"
        assert "其他人修改" in err.value.message
    finally:
        first.close()
        second.close()
    with session_scope(committing_sessions) as db:
        petition = db.get(Petition, petition_id)
        assert petition.status == "assigned"
        actions = db.scalars(
            select(AuditLog.action).where(AuditLog.entity_id == petition.number)
        ).all()
        assert actions == ["petition.assign"]


def test_stale_version_is_refused_before_any_change(db):
    """A form posted with an old version is refused and changes nothing."""
    clerk = make_user(db, "clerk")
    petition = make_petition(db, status="accepted")
    old = petition.version
    staff_service.add_note(db=db, user=clerk, petition=petition, text="先电话联系")
    staff_service.assign(
        db=db,
        user=clerk,
        petition=petition,
        departments_=["housing_bureau"],
        version=old,
        today=date(2026, 11, 23),
    )
    with pytest.raises(AppError) as err:
        staff_service.transition(
            db=db, user=clerk, petition=petition, action="transfer", version=old, note="移送法院"
        )
    assert err.value.code == "version_conflict"
    assert petition.status == "assigned"
