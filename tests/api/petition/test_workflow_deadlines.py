"""Working-day deadlines (National Day, Spring Festival), overdue flags and ordering."""

from __future__ import annotations

from datetime import date

import pytest
from staff.staffkit import make_petition, make_user

from app.core.workdays import calendar
from app.petition import staff_service


@pytest.mark.parametrize(
    ("assigned_on", "due"),
    [
        (date(2026, 9, 30), date(2026, 10, 13)),  # 国庆: 10-01..10-08 off, 10-10 worked
        (date(2026, 2, 12), date(2026, 2, 26)),  # 春节: 02-15..02-23 off, 02-14 and 02-28 worked
        (date(2026, 11, 23), date(2026, 11, 30)),  # an ordinary week
    ],
)
def test_answer_deadline_in_working_days(db, assigned_on, due):
    """Each department's answer is due 5 working days after assignment, holidays skipped."""
    petition = make_petition(db, status="accepted", intake=assigned_on)
    staff_service.assign(
        db=db,
        user=make_user(db, "clerk"),
        petition=petition,
        departments_=["housing_bureau", "registry_center"],
        version=petition.version,
        today=assigned_on,
    )
    assert [a.answer_due for a in petition.assignments] == [due, due]
    assert not any(a.answer_due_provisional for a in petition.assignments)


def test_closure_target_is_set_from_intake(db):
    """The closure target is the catalogue's working days after intake."""
    petition = make_petition(db, status="accepted", intake=date(2026, 9, 30))
    staff_service.assign(
        db=db,
        user=make_user(db, "clerk"),
        petition=petition,
        departments_=["housing_bureau"],
        version=petition.version,
        today=date(2026, 9, 30),
    )
    expected, _ = calendar().add_working_days(date(2026, 9, 30), staff_service.closure_days())
    assert petition.closure_due == expected
    assert calendar().working_days_between(date(2026, 9, 30), expected) == (
        staff_service.closure_days()
    )


def test_deadline_beyond_the_published_calendar_is_provisional(db):
    """A deadline that runs into an unpublished year is marked provisional (暂按)."""
    petition = make_petition(db, status="accepted", intake=date(2026, 12, 28))
    staff_service.assign(
        db=db,
        user=make_user(db, "clerk"),
        petition=petition,
        departments_=["tax_bureau"],
        version=petition.version,
        today=date(2026, 12, 28),
    )
    assert petition.assignments[0].answer_due_provisional is True


def test_overdue_petitions_come_first(db):
    """Overdue petitions are flagged and listed before the rest, earliest deadline first."""
    clerk = make_user(db, "clerk")
    today = date(2026, 11, 23)
    fresh = make_petition(db, status="accepted", intake=date(2026, 11, 20))
    late_answer = make_petition(
        db, status="assigned", intake=date(2026, 11, 2), assigned_on=date(2026, 11, 2)
    )
    later_answer = make_petition(
        db, status="assigned", intake=date(2026, 11, 9), assigned_on=date(2026, 11, 9)
    )
    past_closure = make_petition(
        db, status="verifying", answered=True, closure_due=date(2026, 11, 10)
    )
    closed = make_petition(db, status="closed", answered=True, closure_due=date(2026, 11, 1))
    rows, total = staff_service.list_petitions(db=db, user=clerk, today=today)
    order = [r.petition.number for r in rows]
    overdue = {r.petition.number for r in rows if r.overdue}
    assert overdue == {late_answer.number, later_answer.number, past_closure.number}
    assert order[:3] == [late_answer.number, past_closure.number, later_answer.number]
    assert order.index(fresh.number) < order.index(closed.number)
    assert total == 5
    only, n = staff_service.list_petitions(db=db, user=clerk, overdue_only=True, today=today)
    assert n == 3 and all(r.overdue for r in only)
    assert staff_service.is_overdue(late_answer, today)
    assert not staff_service.is_overdue(closed, today)


def test_officer_sees_own_open_assignments_due_first(db):
    """An officer's landing list holds only their department's unanswered work, due first."""
    officer = make_user(db, "officer", department="tax_bureau")
    later = make_petition(
        db, status="assigned", departments=("tax_bureau",), intake=date(2026, 11, 16)
    )
    sooner = make_petition(
        db, status="assigned", departments=("tax_bureau",), intake=date(2026, 11, 2)
    )
    make_petition(db, status="assigned", departments=("housing_bureau",), intake=date(2026, 11, 1))
    make_petition(db, status="assigned", departments=("tax_bureau",), answered=True)
    rows = staff_service.list_open_assignments(
        db=db, department=officer.department, today=date(2026, 11, 20)
    )
    assert [p.number for _, p, _ in rows] == [sooner.number, later.number]
    assert [overdue for _, _, overdue in rows] == [True, False]


def test_deadline_index_follows_every_change(db):
    """The petition_due row behind the overdue-first list follows assign, answer and close."""
    from app.petition.models import PetitionDue

    clerk = make_user(db, "clerk")
    petition = make_petition(db, status="accepted", intake=date(2026, 9, 30))
    due = db.get(PetitionDue, petition.id)
    assert (due.rank, due.next_due) == (0, petition.answer_due)
    staff_service.assign(
        db=db,
        user=clerk,
        petition=petition,
        departments_=["housing_bureau"],
        version=petition.version,
        today=date(2026, 10, 9),
    )
    db.refresh(due)
    assert due.next_due == calendar().add_working_days(date(2026, 10, 9), 5)[0]
    staff_service.answer(
        db=db,
        user=clerk,
        petition=petition,
        text="已答复",
        version=petition.version,
        department="housing_bureau",
    )
    db.refresh(due)
    assert due.next_due == petition.closure_due
    staff_service.transition(
        db=db, user=clerk, petition=petition, action="verify", version=petition.version
    )
    staff_service.close(
        db=db,
        user=clerk,
        petition=petition,
        outcome="已办证",
        satisfaction="satisfied",
        version=petition.version,
    )
    db.refresh(due)
    assert (due.rank, due.next_due) == (1, None)
