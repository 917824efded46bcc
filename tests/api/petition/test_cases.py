"""Collective cases (并单), from the clerk's side, on SQLite and PostgreSQL: the suggestions group
the right petitions; confirming creates an audited case; one assignment and one answer reach
every member (its own assignment row and resident message each); households still close one by
one and the case closes when none is open; officers see only their department's cases."""

from __future__ import annotations

from datetime import date

import pytest
from factories import PetitionFactory, ProjectFactory, StaffUserFactory, bind
from sqlalchemy import func, select
from staff.staffkit import bearer

from app.audit.models import AuditLog
from app.core.errors import AppError
from app.notify.models import Notification
from app.petition import cases, staff_service
from app.petition.case_models import PetitionCase
from app.petition.models import Petition, PetitionAssignment
from app.status import lookup_stats

TODAY = date(2026, 11, 10)


@pytest.fixture(autouse=True)
def _factories(db):
    bind(db)


def _petition(db, project, blockers=("fire_acceptance",), **kw) -> Petition:
    """An open petition of the project about these blockers (None: the bot explained none)."""
    return PetitionFactory(
        project=project, blockers=list(blockers) if blockers is not None else None, **kw
    )


def _notes(db, petition: Petition, kind: str | None = None) -> int:
    stmt = (
        select(func.count())
        .select_from(Notification)
        .where(Notification.petition_id == petition.id)
    )
    if kind:
        stmt = stmt.where(Notification.kind == kind)
    return int(db.scalar(stmt) or 0)


def _group(groups, project, code):
    return next((s for s in groups if s.project.id == project.id and s.blocker == code), None)


def test_suggestions_group_same_project_and_blocker_only(db):
    """Same project + shared blocker, open, not in a case: grouped; other projects, closed
    petitions, lone petitions and petitions already in a case are not."""
    clerk = StaffUserFactory(role="clerk")
    hill = ProjectFactory(blockers=(("fire_acceptance", "housing_bureau"),))
    river = ProjectFactory(name="滨河湾", blockers=(("fire_acceptance", "housing_bureau"),))
    a = _petition(db, hill)
    b = _petition(db, hill, status="assigned")
    closed = _petition(db, hill, status="closed")
    other_blocker = _petition(db, hill, blockers=("land_premium_unpaid",))
    lone_river = _petition(db, river)
    groups = cases.suggestions(db=db, user=clerk)
    fire = _group(groups, hill, "fire_acceptance")
    assert fire is not None
    assert {p.number for p in fire.petitions} == {a.number, b.number}
    assert _group(groups, hill, "land_premium_unpaid") is None  # a group of one
    assert _group(groups, river, "fire_acceptance") is None  # another project, alone there
    assert lone_river.number not in {p.number for s in groups for p in s.petitions}
    assert closed.number not in {p.number for s in groups for p in s.petitions}
    assert other_blocker.number not in {p.number for s in groups for p in s.petitions}

    # Already in a case: no longer suggested; newcomers form their own group.
    cases.create_case(db=db, user=clerk, refs=[a.number, b.number], blocker="fire_acceptance")
    assert _group(cases.suggestions(db=db, user=clerk), hill, "fire_acceptance") is None
    c, d = _petition(db, hill), _petition(db, hill)
    again = _group(cases.suggestions(db=db, user=clerk), hill, "fire_acceptance")
    assert again is not None and {p.number for p in again.petitions} == {c.number, d.number}
    # Two of the other project: a group of theirs, never mixed with this one's.
    e = _petition(db, river)
    groups = cases.suggestions(db=db, user=clerk)
    assert {p.number for p in _group(groups, river, "fire_acceptance").petitions} == {
        lone_river.number,
        e.number,
    }


def test_without_explained_blockers_the_projects_single_open_blocker_counts(db):
    """A petition whose conversation explained no blocker is grouped under the project's only
    open blocker — but not when the project has several."""
    clerk = StaffUserFactory(role="clerk")
    single = ProjectFactory(blockers=(("civil_defense_unpaid", "civil_defense_office"),))
    several = ProjectFactory(
        name="青松壹号",
        blockers=(("fire_acceptance", "housing_bureau"), ("tax_unpaid", "tax_bureau")),
    )
    x, y = _petition(db, single, blockers=None), _petition(db, single, blockers=())
    _petition(db, several, blockers=None), _petition(db, several, blockers=None)
    groups = cases.suggestions(db=db, user=clerk)
    found = _group(groups, single, "civil_defense_unpaid")
    assert found is not None and {p.id for p in found.petitions} == {x.id, y.id}
    assert not [s for s in groups if s.project.id == several.id]


def test_confirming_creates_an_audited_case_and_the_clerk_may_drop_members(db, client):
    """POST /staff/cases with the members kept: the case has them, a BD- number, an audit row;
    each petition's own trail says it joined."""
    clerk = StaffUserFactory(role="clerk")
    project = ProjectFactory()
    a, b, dropped = _petition(db, project), _petition(db, project), _petition(db, project)
    r = client.post(
        "/api/v1/staff/cases",
        json={"petitions": [a.number, b.id], "blocker": "fire_acceptance"},
        headers=bearer(db, clerk),
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["number"].startswith("BD-") and body["status"] == "open"
    assert {m["number"] for m in body["members"]} == {a.number, b.number}
    assert body["suggested_departments"] == ["housing_bureau"]
    row = db.scalar(
        select(AuditLog).where(
            AuditLog.action == "case.create", AuditLog.entity_id == body["number"]
        )
    )
    assert row is not None and row.actor == f"staff:{clerk.username}"
    assert set(row.after["petitions"]) == {a.number, b.number}
    assert "张三" not in str(row.after) and "138" not in str(row.after)
    joined = db.scalars(
        select(AuditLog.entity_id).where(AuditLog.action == "petition.case_join")
    ).all()
    assert set(joined) == {a.number, b.number}
    # The dropped one is still suggested with nobody: no group of one.
    assert dropped.number not in {m["number"] for m in body["members"]}


def test_confirming_refuses_what_is_not_one_case(db):
    """Clear Chinese refusals: one petition, two projects, a closed one, another blocker, one
    already in an open case."""
    clerk = StaffUserFactory(role="clerk")
    hill, river = ProjectFactory(), ProjectFactory(name="滨河湾")
    a, b = _petition(db, hill), _petition(db, hill)
    with pytest.raises(AppError) as exc:
        cases.create_case(db=db, user=clerk, refs=[a.number], blocker="fire_acceptance")
    assert exc.value.code == "too_few_petitions" and "两件" in exc.value.message
    with pytest.raises(AppError) as exc:
        cases.create_case(
            db=db,
            user=clerk,
            refs=[a.number, _petition(db, river).number],
            blocker="fire_acceptance",
        )
    assert exc.value.code == "projects_differ"
    closed = _petition(db, hill, status="closed")
    with pytest.raises(AppError) as exc:
        cases.create_case(
            db=db, user=clerk, refs=[a.number, closed.number], blocker="fire_acceptance"
        )
    assert exc.value.code == "petition_not_open" and closed.number in exc.value.message
    off = _petition(db, hill, blockers=("tax_unpaid",))
    with pytest.raises(AppError) as exc:
        cases.create_case(db=db, user=clerk, refs=[a.number, off.number], blocker="fire_acceptance")
    assert exc.value.code == "blocker_differs" and off.number in exc.value.message
    cases.create_case(db=db, user=clerk, refs=[a.number, b.number], blocker="fire_acceptance")
    c = _petition(db, hill)
    with pytest.raises(AppError) as exc:
        cases.create_case(db=db, user=clerk, refs=[a.number, c.number], blocker="fire_acceptance")
    assert exc.value.status_code == 409 and a.number in exc.value.message


def test_one_assignment_reaches_every_member(db, client):
    """POST /staff/cases/{n}/assign: each open member gets its assignment row, its audit row and
    its resident message; a member in 公示 is skipped with the reason."""
    clerk = StaffUserFactory(role="clerk")
    project = ProjectFactory()
    members = [_petition(db, project) for _ in range(3)]
    noticed = _petition(db, project, status="public_notice")
    case = cases.create_case(
        db=db,
        user=clerk,
        refs=[p.number for p in [*members, noticed]],
        blocker="fire_acceptance",
    )
    db.commit()
    before = {p.id: _notes(db, p) for p in members}
    r = client.post(
        f"/api/v1/staff/cases/{case.number}/assign",
        json={"departments": ["housing_bureau", "fire_rescue"]},
        headers=bearer(db, clerk),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body["done"]) == {p.number for p in members}
    assert body["skipped"] == [{"number": noticed.number, "reason": "公示中，不能分派"}]
    for petition in members:
        db.refresh(petition)
        assert petition.status == "assigned"
        depts = db.scalars(
            select(PetitionAssignment.department).where(
                PetitionAssignment.petition_id == petition.id
            )
        ).all()
        assert set(depts) == {"housing_bureau", "fire_rescue"}
        assert _notes(db, petition) == before[petition.id] + 1  # one message per petition
        assert (
            db.scalar(
                select(func.count())
                .select_from(AuditLog)
                .where(AuditLog.entity_id == petition.number, AuditLog.action == "petition.assign")
            )
            == 1
        )
    assert _notes(db, noticed) == 0
    assert db.scalar(select(AuditLog).where(AuditLog.action == "case.assign")) is not None


def test_one_answer_reaches_every_petitioner(db, client):
    """The officer answers once; every member gets the answer recorded and published, and each
    resident their own message — one per petition, not one per case."""
    clerk = StaffUserFactory(role="clerk")
    officer = StaffUserFactory(role="officer", department="housing_bureau")
    project = ProjectFactory()
    members = [_petition(db, project) for _ in range(3)]
    case = cases.create_case(
        db=db, user=clerk, refs=[p.number for p in members], blocker="fire_acceptance"
    )
    cases.assign_case(db=db, user=clerk, case=case, departments_=["housing_bureau"])
    db.commit()
    text = "消防整改已完成复验，住建局将于本月办理竣工验收备案。"
    r = client.post(
        f"/api/v1/staff/cases/{case.number}/answer",
        json={"answer": text},
        headers=bearer(db, officer),
    )
    assert r.status_code == 200, r.text
    assert set(r.json()["done"]) == {p.number for p in members}
    for petition in members:
        assert _notes(db, petition, "answer") == 1
        assignment = db.scalar(
            select(PetitionAssignment).where(PetitionAssignment.petition_id == petition.id)
        )
        assert assignment.answer == text and assignment.approved_at is not None
    note = db.scalar(
        select(Notification).where(
            Notification.petition_id == members[0].id, Notification.kind == "answer"
        )
    )
    assert members[0].number in note.text and "消防整改" in note.text
    # A second answer skips the members already answered: nobody is told twice.
    r = client.post(
        f"/api/v1/staff/cases/{case.number}/answer",
        json={"answer": text},
        headers=bearer(db, officer),
    )
    assert r.status_code == 409 and "已答复" in r.json()["message"]


def test_households_close_one_by_one_and_the_case_closes_when_all_are_done(db, client):
    """Closing one member leaves the others open and the case open; when the last member is
    closed or transferred the case closes (audited) and its petitions may join a new case."""
    clerk = StaffUserFactory(role="clerk")
    project = ProjectFactory()
    a, b, c = (_petition(db, project, status="verifying", answered=True) for _ in range(3))
    case = cases.create_case(
        db=db, user=clerk, refs=[a.number, b.number, c.number], blocker="fire_acceptance"
    )
    staff_service.close(
        db=db, user=clerk, petition=a, outcome="已办理转移登记。", satisfaction=None,
        version=a.version, today=TODAY,
    )  # fmt: skip
    db.refresh(b)
    assert b.status == "verifying"
    headers = bearer(db, clerk)
    body = client.get(f"/api/v1/staff/cases/{case.number}", headers=headers).json()
    assert body["status"] == "open"
    assert {m["number"]: m["status"] for m in body["members"]} == {
        a.number: "closed",
        b.number: "verifying",
        c.number: "verifying",
    }
    staff_service.close(
        db=db, user=clerk, petition=b, outcome="已办理转移登记。", satisfaction=None,
        version=b.version, today=TODAY,
    )  # fmt: skip
    staff_service.transition(
        db=db, user=clerk, petition=c, action="transfer", version=c.version, note="产权纠纷转法院。"
    )
    db.commit()
    body = client.get(f"/api/v1/staff/cases/{case.number}", headers=headers).json()
    assert body["status"] == "closed" and body["closed_at"]
    assert db.scalar(select(AuditLog).where(AuditLog.action == "case.close")) is not None
    r = client.post(
        f"/api/v1/staff/cases/{case.number}/assign",
        json={"departments": ["housing_bureau"]},
        headers=headers,
    )
    assert r.status_code == 409 and "销号" in r.json()["message"]


def test_officer_of_another_department_cannot_see_the_case(db, client):
    """Officers see a case only when its petitions are assigned to their department; they may
    not create cases or see suggestions."""
    clerk = StaffUserFactory(role="clerk")
    own = StaffUserFactory(role="officer", department="housing_bureau")
    other = StaffUserFactory(role="officer", department="tax_bureau")
    project = ProjectFactory()
    members = [_petition(db, project) for _ in range(2)]
    case = cases.create_case(
        db=db, user=clerk, refs=[p.number for p in members], blocker="fire_acceptance"
    )
    cases.assign_case(db=db, user=clerk, case=case, departments_=["housing_bureau"])
    db.commit()
    url = f"/api/v1/staff/cases/{case.number}"
    assert client.get(url, headers=bearer(db, other)).status_code == 404
    r = client.post(f"{url}/answer", json={"answer": "已答复"}, headers=bearer(db, other))
    assert r.status_code == 404
    assert client.get(url, headers=bearer(db, own)).status_code == 200
    assert client.get("/api/v1/staff/cases/suggestions", headers=bearer(db, own)).status_code == 403
    r = client.post(
        "/api/v1/staff/cases",
        json={"petitions": [p.number for p in members], "blocker": "fire_acceptance"},
        headers=bearer(db, own),
    )
    assert r.status_code == 403
    r = client.post(f"{url}/assign", json={"departments": ["tax_bureau"]}, headers=bearer(db, own))
    assert r.status_code == 403
    listed = client.get("/api/v1/staff/cases", headers=bearer(db, other)).json()
    assert case.number not in [c["number"] for c in listed]


def test_suggestions_endpoint(db, client):
    """GET /staff/cases/suggestions lists the groups with their petition numbers."""
    clerk = StaffUserFactory(role="clerk")
    project = ProjectFactory()
    a, b = _petition(db, project), _petition(db, project)
    r = client.get(
        f"/api/v1/staff/cases/suggestions?project={project.code}", headers=bearer(db, clerk)
    )
    assert r.status_code == 200
    assert r.json() == [
        {
            "project_code": project.code,
            "project_name": project.name,
            "blocker": "fire_acceptance",
            "blocker_name": "消防验收未通过",
            "petitions": [a.number, b.number],
        }
    ]


def test_lookups_are_counted_per_project_per_day(db):
    """A lookup answer that found a project counts once for that project and day; ambiguous
    or failed lookups count nothing; only a number is stored."""
    project = ProjectFactory()
    answer = {"match": "unit", "project": {"code": project.code, "name": project.name}}
    for _ in range(3):
        lookup_stats.count_lookup(answer, day=TODAY)
    lookup_stats.count_lookup(answer, day=date(2026, 11, 11))
    lookup_stats.count_lookup({"match": "ambiguous", "candidates": []}, day=TODAY)
    lookup_stats.count_lookup({"match": "none"}, day=TODAY)
    assert lookup_stats.lookups_of(db, project.id) == 4
    assert lookup_stats.lookups_of(db, project.id, since=date(2026, 11, 11)) == 1
    assert db.scalar(select(func.count()).select_from(PetitionCase)) == 0


def test_two_clerks_confirming_overlapping_cases_at_once(committing_sessions, backend):
    """Two clerks confirm cases sharing a petition at the same moment: the second is refused
    with a Chinese 409, never a petition in two open cases. PostgreSQL only: there the second
    clerk's writes wait for the first to commit, then hit the unique open_key (SQLite lets one
    writer at a time start at all; the sequential refusal is tested above)."""
    if backend != "postgresql":
        pytest.skip("needs concurrent writers (PostgreSQL)")
    import threading

    with committing_sessions() as setup:
        bind(setup)
        clerk_a, clerk_b = StaffUserFactory(role="clerk"), StaffUserFactory(role="clerk")
        project = ProjectFactory()
        shared, mine, yours = (PetitionFactory(project=project) for _ in range(3))
        setup.commit()
        ids = {k: v.id for k, v in (("a", clerk_a), ("b", clerk_b))}
        numbers = (shared.number, mine.number, yours.number)
    first, second = committing_sessions(), committing_sessions()
    try:
        from app.staff.models import StaffUser

        cases.create_case(
            db=first,
            user=first.get(StaffUser, ids["a"]),
            refs=[numbers[0], numbers[1]],
            blocker="fire_acceptance",
        )
        errors: list[AppError] = []

        def other_clerk() -> None:
            try:
                cases.create_case(
                    db=second,
                    user=second.get(StaffUser, ids["b"]),
                    refs=[numbers[0], numbers[2]],
                    blocker="fire_acceptance",
                )
            except AppError as exc:
                errors.append(exc)
                second.rollback()

        thread = threading.Thread(target=other_clerk)
        thread.start()
        thread.join(0.5)
        assert thread.is_alive()  # waiting on the first clerk's uncommitted case
        first.commit()
        thread.join(10)
        assert len(errors) == 1 and errors[0].status_code == 409
        assert "并单" in errors[0].message
    finally:
        first.close()
        second.close()
    with committing_sessions() as check:
        assert check.scalar(select(func.count()).select_from(PetitionCase)) == 1


def test_lookups_are_written_in_batches_not_one_write_each(client, db, monkeypatch):
    """The residents' lookup stays read-only: counts wait in the process and are written when
    FLUSH_SECONDS have passed (or when the project page reads them)."""
    from app.status.lookup_stats import ProjectLookupDay

    project = ProjectFactory(name="批量嘉园")
    db.commit()
    monkeypatch.setattr(lookup_stats, "FLUSH_SECONDS", 3600.0)
    for _ in range(3):
        assert client.post("/api/v1/lookup", json={"address": "批量嘉园"}).status_code == 200
    assert db.scalar(select(func.count()).select_from(ProjectLookupDay)) == 0
    monkeypatch.setattr(lookup_stats, "FLUSH_SECONDS", 0.0)
    assert client.post("/api/v1/lookup", json={"address": "批量嘉园"}).status_code == 200
    rows = db.scalars(select(ProjectLookupDay)).all()
    assert [(r.project_id, r.count) for r in rows] == [(project.id, 4)]
