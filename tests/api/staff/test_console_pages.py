"""The console end to end through its forms: intake to closure, conflicts, blockers reflected
in the public status, ledger upload with row errors, dashboard and accounts pages."""

from __future__ import annotations

import io
import re

from openpyxl import load_workbook
from sqlalchemy import select
from staff.staffkit import make_petition, make_project, make_user
from staff.test_staff_auth import console_login, page_csrf

from app.audit.models import AuditLog


def _version(html: str) -> str:
    return re.search(r'name="version" value="(\d+)"', html).group(1)


def _post(client, url: str, data: dict, page_html: str):
    return client.post(
        url, data=data | {"csrf_token": page_csrf(page_html)}, follow_redirects=False
    )


def test_petition_from_intake_to_closure(client, db):
    """A resident's petition is assigned, answered, verified and closed in the console; the
    resident then sees 已办结 through the public lookup."""
    clerk = make_user(db, "clerk")
    officer = make_user(db, "officer", department="housing_bureau")
    db.commit()
    r = client.post(
        "/api/v1/petitions",
        json={
            "person_name": "李四",
            "phone": "13900001111",
            "address": "观象山庄3号楼2单元501",
            "description": "交房八年还没办房本，开发商说在等消防验收。",
            "consent": True,
            "channel": "webchat",
        },
    )
    assert r.status_code in (200, 201), r.text
    number = r.json()["number"]

    console_login(client, clerk.username)
    listing = client.get("/console/petitions")
    assert number in listing.text
    url = f"/console/petitions/{number}"
    page = client.get(url)
    assert "139****1111" not in page.text and "13900001111" in page.text  # clerk may call back
    r = _post(
        client,
        f"{url}/assign",
        {"departments": ["housing_bureau"], "version": _version(page.text)},
        page.text,
    )
    assert r.status_code == 303

    client.cookies.clear()
    console_login(client, officer.username)
    assert number in client.get("/console/my").text
    page = client.get(url)
    assert "139****1111" in page.text and "13900001111" not in page.text
    r = _post(
        client,
        f"{url}/answer",
        {
            "answer": "消防复验已安排在下周。",
            "department": "housing_bureau",
            "version": _version(page.text),
        },
        page.text,
    )
    assert r.status_code == 303

    client.cookies.clear()
    console_login(client, clerk.username)
    page = client.get(url)
    r = _post(
        client, f"{url}/transition", {"action": "verify", "version": _version(page.text)}, page.text
    )
    assert r.status_code == 303
    page = client.get(url)
    r = _post(
        client,
        f"{url}/close",
        {
            "outcome": "消防复验通过，已完成首次登记。",
            "satisfaction": "satisfied",
            "version": _version(page.text),
        },
        page.text,
    )
    assert r.status_code == 303
    page = client.get(url)
    assert "已办结" in page.text and "满意" in page.text
    for label in ("受理信访", "分派部门", "部门答复", "开始核实", "办结"):
        assert label in page.text  # the audit trail on the page
    status = client.post(
        "/api/v1/petitions/lookup", json={"petition_number": number, "phone": "13900001111"}
    )
    assert status.json()["status"] == "closed" and status.json()["status_label"] == "已办结"


def test_second_clerk_gets_a_conflict_message(client, db):
    """Two clerks open the same page; the second save is refused with a clear message."""
    clerk = make_user(db, "clerk")
    petition = make_petition(db, status="accepted")
    db.commit()
    console_login(client, clerk.username)
    url = f"/console/petitions/{petition.number}"
    stale = client.get(url).text
    r = _post(
        client, f"{url}/assign", {"departments": ["tax_bureau"], "version": _version(stale)}, stale
    )
    assert r.status_code == 303
    r = _post(
        client,
        f"{url}/transition",
        {"action": "transfer", "note": "移送法院", "version": _version(stale)},
        stale,
    )
    assert r.status_code == 409
    assert "刚被其他人修改过" in r.text
    assert "已分派" in client.get(url).text


def test_blocker_edits_reach_the_public_status(client, db):
    """Resolving and adding a blocker in the console changes what the bot will be told."""
    clerk = make_user(db, "clerk")
    project = make_project(db, blockers=(("fire_acceptance", "housing_bureau"),))
    db.commit()
    before = client.get(f"/api/v1/projects/{project.code}/status").json()
    assert [b["code"] for b in before["open_blockers"]] == ["fire_acceptance"]

    console_login(client, clerk.username)
    url = f"/console/projects/{project.code}"
    page = client.get(url)
    r = _post(client, f"{url}/blockers/fire_acceptance/resolve", {}, page.text)
    assert r.status_code == 303
    page = client.get(url)
    r = _post(
        client,
        f"{url}/blockers",
        {"blocker": "mortgage", "department": "", "note": "在建工程抵押，正在协调银行解押"},
        page.text,
    )
    assert r.status_code == 303
    page = client.get(url)
    r = _post(client, f"{url}/expected", {"expected": "2027-05-31"}, page.text)
    assert r.status_code == 303

    after = client.get(f"/api/v1/projects/{project.code}/status").json()
    assert [b["code"] for b in after["open_blockers"]] == ["mortgage"]
    assert [b["code"] for b in after["resolved_blockers"]] == ["fire_acceptance"]
    assert after["expected_resolution_date"] == "2027-05-31"
    assert "在建工程抵押" in str(after["open_blockers"][0])
    actions = db.scalars(
        select(AuditLog.action).where(
            AuditLog.entity_type == "project", AuditLog.entity_id == project.code
        )
    ).all()
    assert actions == ["blocker.resolve", "blocker.add", "project.update"]
    page = client.get(url)
    assert "卡点已化解" in page.text and "新增卡点" in page.text
    # The project's audit log: newest first, the clerk by display name, no internal ids.
    audit = page.text.split('<ol class="audit" reversed>', 1)[1].split("</ol>", 1)[0]
    assert audit.index("修改项目") < audit.index("新增卡点") < audit.index("卡点已化解")
    assert clerk.display_name in audit and f"staff:{clerk.username}" not in audit


# The ledger upload (a background job since issue 13): tests/api/ledger/test_ledger_upload.py.


def test_dashboard_page_and_downloads(client, db):
    """The dashboard renders its figures and charts; SVG, CSV and XLSX downloads carry them."""
    clerk = make_user(db, "clerk")
    make_project(
        db,
        district="市北区",
        unit_count=4,
        initial_done=True,
        transfers=("done", "done", "not_started", "in_progress"),
    )
    make_petition(db, status="closed", answered=True)
    db.commit()
    console_login(client, clerk.username)
    page = client.get("/console/dashboard")
    assert page.status_code == 200
    assert page.text.count("<svg") == 4
    for label in (
        "首次登记化解率",
        "转移登记化解率",
        "总体登记率",
        "办结率",
        "按期办结率",
        "息诉罢访率",
    ):
        assert label in page.text
    svg = client.get("/console/dashboard/districts.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert "attachment" in svg.headers["content-disposition"] and "市北区" in svg.text
    csv_text = client.get("/console/dashboard.csv").content.decode("utf-8-sig")
    assert "市北区" in csv_text and ",50.0," in csv_text
    wb = load_workbook(io.BytesIO(client.get("/console/dashboard.xlsx").content))
    assert "按区县" in wb.sheetnames
    values = [c.value for row in wb["按区县"].iter_rows() for c in row]
    assert "市北区" in values and 0.5 in values
    assert "指标说明" in page.text and "转移登记户数超过总户数的25%" in page.text

    # A date range: the page, and the exports it links to, cover that range.
    ranged = client.get("/console/dashboard", params={"from": "2030-01-01", "to": "2030-12-31"})
    assert ranged.status_code == 200
    assert "/console/dashboard.csv?from=2030-01-01&amp;to=2030-12-31" in ranged.text
    csv_text = client.get(
        "/console/dashboard.csv", params={"from": "2030-01-01", "to": "2030-12-31"}
    ).content.decode("utf-8-sig")
    assert "受理日期 2030年01月01日 至 2030年12月31日" in csv_text
    backwards = client.get("/console/dashboard", params={"from": "2030-12-31", "to": "2030-01-01"})
    assert backwards.status_code == 422 and "开始日期不能晚于结束日期" in backwards.text


def test_dashboard_pages_the_project_table_by_district(client, db):
    """A province has ten thousand projects: the page shows 50 at a time, one district or all,
    with the range kept in the pager's links; the exports still hold every project."""
    from app.console.dashboard import PROJECTS_PER_PAGE

    clerk = make_user(db, "clerk")
    north = [
        make_project(db, district="市北区", unit_count=2) for _ in range(PROJECTS_PER_PAGE + 3)
    ]
    south = make_project(db, district="城关镇")
    db.commit()
    console_login(client, clerk.username)

    def listed(html: str) -> set[str]:
        return set(re.findall(r'<a href="/console/projects/([^"]+)">', html))

    first = client.get("/console/dashboard")
    assert first.status_code == 200
    assert "<title>统计 · 房本助手</title>" in first.text
    assert len(listed(first.text)) == PROJECTS_PER_PAGE
    assert f"{PROJECTS_PER_PAGE + 4} 个项目，第 1/2 页" in first.text
    assert 'href="/console/dashboard?page=2#projects"' in first.text
    second = client.get("/console/dashboard", params={"page": 2})
    assert len(listed(second.text)) == 4
    assert listed(first.text) | listed(second.text) == {p.code for p in [*north, south]}

    only = client.get(
        "/console/dashboard", params={"district": "市北区", "page": 2, "from": "2026-01-01"}
    )
    assert listed(only.text) == set(sorted(p.code for p in north)[PROJECTS_PER_PAGE:])
    assert 'href="/console/dashboard?from=2026-01-01&amp;district=' in only.text
    assert client.get("/console/dashboard", params={"page": 99}).status_code == 200  # last page
    csv_text = client.get("/console/dashboard.csv").content.decode("utf-8-sig")
    assert csv_text.count("观象山庄,") == PROJECTS_PER_PAGE + 4  # every project's row


def test_officer_lands_on_own_assignments_and_cannot_open_dashboard(client, db):
    """Officers start on their open assignments; the dashboard is not theirs."""
    officer = make_user(db, "officer", department="tax_bureau")
    mine = make_petition(db, status="assigned", departments=("tax_bureau",))
    other = make_petition(db, status="assigned", departments=("housing_bureau",))
    db.commit()
    r = console_login(client, officer.username)
    landing = client.get(r.headers["location"])
    assert str(landing.url).endswith("/console/my")
    assert mine.number in landing.text and other.number not in landing.text
    refused = client.get(f"/console/petitions/{other.number}")
    assert refused.status_code == 404 and "没有找到这件信访" in refused.text
    refused = client.get("/console/dashboard")
    assert refused.status_code == 403 and "没有这项权限" in refused.text


def test_admin_creates_account_with_one_time_password(client, db):
    """The accounts page creates an account and shows its random password once."""
    admin = make_user(db, "admin")
    db.commit()
    console_login(client, admin.username)
    page = client.get("/console/users")
    r = _post(
        client,
        "/console/users",
        {"username": "zhao.officer", "role": "officer", "department": "tax_bureau"},
        page.text,
    )
    assert r.status_code == 200
    password = re.search(r'<code class="secret">([^<]+)</code>', r.text).group(1)
    assert password not in client.get("/console/users").text
    client.cookies.clear()
    r = console_login(client, "zhao.officer", password)
    assert r.status_code == 303
