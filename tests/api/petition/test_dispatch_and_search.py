"""Issue 14, a clerk's basics (both backends): the petition detail suggests the departments of
the project's open blockers (the ledger's 责任单位, else the catalogue's default), and the
search box finds a petition by the resident's name, the phone however it is typed, and any part
of the number; the total follows the filters."""

from __future__ import annotations

import pytest
from staff.staffkit import bearer, make_petition, make_project, make_user

from app.petition import staff_service
from app.status.models import Blocker


def test_suggestions_follow_the_ledger_then_the_catalogue(db):
    project = make_project(
        db,
        blockers=(
            ("fire_acceptance", "fire_rescue"),  # the ledger names 消防救援大队
            ("developer_tax_unpaid", "tax_bureau"),
            ("fees_unpaid", ""),  # empty 责任单位: the catalogue's default (住建局)
            ("land_premium_unpaid", "natural_resources"),
        ),
    )
    land = next(b for b in project.blockers if b.code == "land_premium_unpaid")
    land.status = "resolved"  # a resolved blocker suggests nothing
    db.flush()
    petition = make_petition(db, project=project)
    suggested = staff_service.suggested_departments(db=db, petition=petition)
    assert suggested == [
        {"code": "fire_rescue", "name": "消防救援大队", "blockers": ["fire_acceptance"]},
        {"code": "tax_bureau", "name": "税务局", "blockers": ["developer_tax_unpaid"]},
        {"code": "housing_bureau", "name": "住建局", "blockers": ["fees_unpaid"]},
    ]


def test_one_department_for_two_blockers_is_suggested_once(db):
    project = make_project(
        db,
        blockers=(("completion_acceptance", "housing_bureau"), ("fees_unpaid", "housing_bureau")),
    )
    petition = make_petition(db, project=project)
    assert staff_service.suggested_departments(db=db, petition=petition) == [
        {
            "code": "housing_bureau",
            "name": "住建局",
            "blockers": ["completion_acceptance", "fees_unpaid"],
        }
    ]


def test_without_a_project_the_explained_blockers_suggest(db):
    petition = make_petition(db)
    petition.blockers = ["mortgage", "court_seizure"]
    db.flush()
    assert staff_service.suggested_departments(db=db, petition=petition) == [
        {"code": "registry_center", "name": "不动产登记中心", "blockers": ["mortgage"]},
        {"code": "court", "name": "法院", "blockers": ["court_seizure"]},
    ]


def test_the_staff_api_detail_carries_suggested_departments(client, db):
    clerk = make_user(db, "clerk")
    project = make_project(db, blockers=(("fire_acceptance", "fire_rescue"),))
    petition = make_petition(db, project=project)
    headers = bearer(db, clerk)
    db.commit()
    body = client.get(f"/api/v1/staff/petitions/{petition.number}", headers=headers).json()
    assert body["suggested_departments"] == [
        {"code": "fire_rescue", "name": "消防救援大队", "blockers": ["fire_acceptance"]}
    ]
    # Once the blocker is resolved in the ledger, nothing is suggested.
    db.query(Blocker).filter(Blocker.project_id == project.id).update({"status": "resolved"})
    db.commit()
    body = client.get(f"/api/v1/staff/petitions/{petition.number}", headers=headers).json()
    assert body["suggested_departments"] == []


@pytest.fixture
def three(db):
    """Three petitions of three residents."""
    a = make_petition(db, phone="13812345678")
    a.person_name = "李桂芳"
    b = make_petition(db, phone="13900001111")
    b.person_name = "王建国"
    c = make_petition(db, phone="13700002222")
    c.person_name = "李明"
    db.flush()
    return a, b, c


def _found(db, user, q):
    rows, total = staff_service.list_petitions(db=db, user=user, q=q)
    assert total == len(rows)
    return {r.petition.number for r in rows}


@pytest.mark.parametrize(
    ("q", "who"),
    [
        ("李桂芳", {0}),
        ("李", {0, 2}),
        ("13812345678", {0}),
        ("138 1234 5678", {0}),
        ("+86 138-1234-5678", {0}),
        ("１３８１２３４５６７８", {0}),  # full-width digits
        ("5678", {0}),  # the last four digits a caller reads out
        ("0000", {1, 2}),
    ],
)
def test_search_by_name_and_phone(db, three, q, who):
    clerk = make_user(db, "clerk")
    assert _found(db, clerk, q) == {three[i].number for i in who}


def test_search_by_any_part_of_the_number(db, three):
    clerk = make_user(db, "clerk")
    number = three[1].number  # XF-20261102-NNNN
    assert _found(db, clerk, number.lower()) == {number}
    assert _found(db, clerk, number[-4:]) >= {number}
    tail = number.split("-", 1)[1]
    assert number in _found(db, clerk, tail)
    assert _found(db, clerk, "%") == set()  # LIKE wildcards are taken literally


def test_officers_search_only_their_departments(db, three):
    officer = make_user(db, "officer", department="tax_bureau")
    assert _found(db, officer, "李") == set()


def test_the_api_total_follows_the_search(client, db, three):
    clerk = make_user(db, "clerk")
    headers = bearer(db, clerk)
    db.commit()
    everything = client.get("/api/v1/staff/petitions", headers=headers).json()
    found = client.get("/api/v1/staff/petitions", params={"q": "王建国"}, headers=headers).json()
    assert everything["total"] >= 3
    assert found["total"] == 1 and [i["number"] for i in found["items"]] == [three[1].number]


def test_on_postgresql_the_search_is_answered_from_the_trigram_indexes(db, backend, three):
    """Migration 0002's pg_trgm indexes and a search whose every branch is on the petition row:
    the planner can answer it with a bitmap of the indexes (200,000 petitions: bench/
    console_bench.py). With sequential scans discouraged, the plan names the indexes."""
    if backend != "postgresql":
        pytest.skip("trigram indexes are PostgreSQL's; SQLite scans a county's petitions")
    from sqlalchemy import func, select, text

    from app.petition.models import Petition

    db.execute(text("SET LOCAL enable_seqscan = off"))
    stmt = (
        select(func.count()).select_from(Petition).where(staff_service.search_condition(db, "5678"))
    )
    sql = str(stmt.compile(db.get_bind(), compile_kwargs={"literal_binds": True}))
    plan = "\n".join(db.execute(text("EXPLAIN " + sql)).scalars())
    for column in ("number", "person_name", "phone", "address"):
        assert f"ix_petition_{column}_trgm" in plan, plan


def test_a_search_over_several_pages_counts_every_match(db):
    """The search's page carries the match count (one scan): the same total on every page, on
    a page past the last match too, and 0 when nothing matches."""
    for i in range(7):
        p = make_petition(db, phone=f"1380000{i:04d}")
        p.person_name = "赵子龙" if i % 2 == 0 else "孙权"
    db.flush()
    clerk = make_user(db, "clerk")
    seen = set()
    for page in (1, 2):
        rows, total = staff_service.list_petitions(
            db=db, user=clerk, q="赵子", page=page, per_page=3
        )
        assert total == 4
        seen |= {r.petition.number for r in rows}
    assert len(seen) == 4
    rows, total = staff_service.list_petitions(db=db, user=clerk, q="赵子", page=5, per_page=3)
    assert rows == [] and total == 4
    assert staff_service.list_petitions(db=db, user=clerk, q="诸葛亮")[1] == 0
    assert staff_service.list_petitions(db=db, user=clerk, q="诸葛亮", page=3)[1] == 0
