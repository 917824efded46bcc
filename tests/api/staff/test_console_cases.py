"""Collective cases (并单) in the console, through its forms with CSRF (both backends): a clerk
confirms a suggestion (dropping one household), assigns the case once, an officer answers it once,
households are closed one by one; the project page shows petitions, cases, lookups, blockers."""

from __future__ import annotations

import re

import pytest
from factories import PetitionFactory, ProjectFactory, StaffUserFactory, bind
from sqlalchemy import func, select
from staff.test_staff_auth import console_login, page_csrf

from app.notify.models import Notification
from app.petition.case_models import PetitionCase
from app.petition.models import Petition


def _post(client, url: str, data: dict, page_html: str, **kw):
    return client.post(
        url, data=data | {"csrf_token": page_csrf(page_html)}, follow_redirects=False, **kw
    )


@pytest.fixture(autouse=True)
def _factories(db):
    bind(db)


def _petitions(db, project, n: int, status: str = "accepted") -> list[Petition]:
    return PetitionFactory.create_batch(n, project=project, status=status)


def _messages(db, petition: Petition, kind: str) -> int:
    stmt = select(func.count()).select_from(Notification)
    return int(
        db.scalar(stmt.where(Notification.petition_id == petition.id, Notification.kind == kind))
        or 0
    )


def test_clerk_confirms_assigns_and_officer_answers_the_case(client, db):
    clerk = StaffUserFactory(role="clerk")
    officer = StaffUserFactory(role="officer", department="housing_bureau")
    project = ProjectFactory(name="测试嘉园")
    kept = _petitions(db, project, 3)
    db.commit()

    console_login(client, clerk.username)
    page = client.get("/console/cases")
    assert page.status_code == 200
    assert "建议并单" in page.text and "测试嘉园" in page.text and "消防验收未通过" in page.text
    for p in kept:
        assert p.number in page.text
    # Without the CSRF token the form is refused.
    r = client.post(
        "/console/cases",
        data={"blocker": "fire_acceptance", "petitions": [p.number for p in kept]},
        follow_redirects=False,
    )
    assert r.status_code in (400, 403)
    assert db.scalar(select(func.count()).select_from(PetitionCase)) == 0
    # The clerk unticks one household and confirms.
    r = _post(
        client,
        "/console/cases",
        {"blocker": "fire_acceptance", "petitions": [kept[0].number, kept[1].number]},
        page.text,
    )
    assert r.status_code == 303, r.text
    url = r.headers["location"]
    case_page = client.get(url)
    assert "已确认并单" in case_page.text and "每户进度" in case_page.text
    assert kept[0].number in case_page.text and kept[2].number not in case_page.text
    # The blocker's department is preselected.
    assert re.search(r'value="housing_bureau" checked', case_page.text)

    # Each member's own page names its case.
    number = url.rsplit("/", 1)[-1]
    assert (
        f'href="/console/cases/{number}"' in client.get(f"/console/petitions/{kept[0].number}").text
    )
    assert "所属并单" not in client.get(f"/console/petitions/{kept[2].number}").text
    r = _post(client, f"{url}/assign", {"departments": ["housing_bureau"]}, case_page.text)
    assert r.status_code == 303
    assert "已统一分派 2 件" in client.get(url).text
    for p in kept[:2]:
        db.refresh(p)
        assert p.status == "assigned" and _messages(db, p, "state") == 1
    db.refresh(kept[2])
    assert kept[2].status == "accepted"

    # A refused answer keeps what was typed (no department chosen).
    page = client.get(url)
    r = _post(client, f"{url}/answer", {"answer": "整改中，月底复验。"}, page.text)
    assert r.status_code == 409 and "请选择答复的部门" in r.text and "整改中，月底复验。" in r.text

    client.cookies.clear()
    console_login(client, officer.username)
    page = client.get(url)
    assert page.status_code == 200 and "统一答复" in page.text
    assert ">统一分派</button>" not in page.text
    r = _post(client, f"{url}/answer", {"answer": "消防复验已通过，本月办理验收备案。"}, page.text)
    assert r.status_code == 303
    assert "答复已发给每位信访人，共 2 件" in client.get(url).text
    for p in kept[:2]:
        assert _messages(db, p, "answer") == 1
    assert _messages(db, kept[2], "answer") == 0


def test_households_close_one_by_one_and_the_case_page_follows(client, db):
    clerk = StaffUserFactory(role="clerk")
    project = ProjectFactory(name="测试嘉园")
    a, b = _petitions(db, project, 2, status="verifying")
    db.commit()
    console_login(client, clerk.username)
    page = client.get("/console/cases")
    r = _post(
        client, "/console/cases", {"blocker": "fire_acceptance", "petitions": [a.number, b.number]},
        page.text,
    )  # fmt: skip
    url = r.headers["location"]
    for petition in (a, b):
        p_url = f"/console/petitions/{petition.number}"
        p_page = client.get(p_url)
        version = re.search(r'name="version" value="(\d+)"', p_page.text).group(1)
        r = _post(
            client,
            f"{p_url}/close",
            {"version": version, "outcome": "已办理转移登记。"},
            p_page.text,
        )
        assert r.status_code == 303
        html = client.get(url).text
        if petition is a:
            assert "办理中" in html and "已办结" in html
    assert "已全部销号" in client.get(url).text
    assert "<h2>统一办理</h2>" not in client.get(url).text
    listing = client.get("/console/cases").text
    assert "已全部销号" in listing


def test_officer_of_another_department_gets_404_on_the_case_page(client, db):
    clerk = StaffUserFactory(role="clerk")
    other = StaffUserFactory(role="officer", department="tax_bureau")
    project = ProjectFactory()
    a, b = _petitions(db, project, 2, status="assigned")
    db.commit()
    console_login(client, clerk.username)
    page = client.get("/console/cases")
    r = _post(
        client, "/console/cases", {"blocker": "fire_acceptance", "petitions": [a.number, b.number]},
        page.text,
    )  # fmt: skip
    url = r.headers["location"]
    client.cookies.clear()
    console_login(client, other.username)
    assert client.get(url).status_code == 404
    page = client.get("/console/cases")
    assert page.status_code == 200 and url.rsplit("/", 1)[-1] not in page.text
    assert "建议并单" not in page.text  # officers do not confirm cases


def test_project_page_shows_petitions_cases_lookups_and_blockers(client, db):
    clerk = StaffUserFactory(role="clerk")
    project = ProjectFactory(name="测试嘉园")
    _petitions(db, project, 2)
    PetitionFactory(project=project, status="closed")
    db.commit()
    for _ in range(3):
        r = client.post("/api/v1/lookup", json={"address": "测试嘉园"})
        assert r.status_code == 200 and r.json()["match"] == "project", r.text
    client.post("/api/v1/lookup", json={"address": "没有这个小区"})

    console_login(client, clerk.username)
    html = client.get(f"/console/projects/{project.code}").text
    assert "共 3 件" in html and "已受理 2" in html and "已办结 1" in html
    assert "近 30 天 3 次，累计 3 次" in html
    assert "消防验收未通过" in html and "标记已化解" in html  # the blockers stay
    assert "还没有并单" in html

    page = client.get("/console/cases")
    numbers = re.findall(r'name="petitions" value="([^"]+)"', page.text)
    r = _post(
        client, "/console/cases", {"blocker": "fire_acceptance", "petitions": numbers}, page.text
    )
    number = r.headers["location"].rsplit("/", 1)[-1]
    html = client.get(f"/console/projects/{project.code}").text
    assert number in html and "2 / 2" in html


def test_confirm_refused_shows_the_reason(client, db):
    clerk = StaffUserFactory(role="clerk")
    project = ProjectFactory()
    (a,) = _petitions(db, project, 1)
    db.commit()
    console_login(client, clerk.username)
    page = client.get("/console/cases")
    r = _post(
        client, "/console/cases", {"blocker": "fire_acceptance", "petitions": [a.number]}, page.text
    )
    assert r.status_code == 409 and "并单至少需要两件信访" in r.text
