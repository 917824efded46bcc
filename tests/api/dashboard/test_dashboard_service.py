"""Dashboard figures on a small known data set, and the CSV/XLSX/SVG forms of the same numbers."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime

import pytest
from openpyxl import load_workbook
from staff.staffkit import make_petition, make_project

from app.dashboard import charts
from app.dashboard import service as dashboard_service

TODAY = date(2026, 11, 23)


@pytest.fixture
def data(db):
    """Two districts, three projects, six petitions in known states."""
    a = make_project(
        db,
        district="市北区",
        unit_count=4,
        initial_done=True,
        transfers=("done", "done", "not_started", "in_progress"),
        blockers=(("fire_acceptance", "housing_bureau"),),
    )
    b = make_project(
        db,
        district="市北区",
        unit_count=6,
        initial_done=False,
        blockers=(("fire_acceptance", "housing_bureau"), ("mortgage", "registry_center")),
    )
    make_project(
        db,
        district="城关镇",
        unit_count=10,
        initial_done=True,
        blockers=(),
        transfers=("done",) * 10,
    )
    on_time = make_petition(
        db, status="closed", answered=True, project=b, closure_due=date(2026, 11, 20)
    )
    on_time.satisfaction, on_time.closed_at = "satisfied", datetime(2026, 11, 19, 3, tzinfo=UTC)
    on_time.satisfaction_source = "resident"
    late = make_petition(
        db, status="closed", answered=True, project=b, closure_due=date(2026, 11, 10)
    )
    late.satisfaction, late.closed_at = "unsatisfied", datetime(2026, 11, 12, 3, tzinfo=UTC)
    late.satisfaction_source = "clerk_phone"
    # Closed, nobody has answered yet: not counted either way.
    waiting = make_petition(db, status="closed", answered=True, closure_due=date(2026, 11, 20))
    waiting.closed_at = datetime(2026, 11, 19, 3, tzinfo=UTC)
    make_petition(db, status="transferred", project=a)
    make_petition(db, status="assigned", intake=date(2026, 11, 2), departments=("housing_bureau",))
    make_petition(db, status="assigned", intake=date(2026, 11, 20), departments=("tax_bureau",))
    make_petition(db, status="accepted", intake=date(2026, 11, 20))
    db.flush()


def test_registration_rates(db, data):
    """首次登记化解率, 转移登记化解率 and 总体登记率 per district and overall."""
    d = dashboard_service.build(db=db, today=TODAY)
    by = {r.label: r for r in d.districts}
    north = by["市北区"]
    assert (north.projects, north.households, north.initial_done_households) == (2, 10, 4)
    assert north.initial_rate == 40.0
    assert north.transfer_rate == 50.0  # 2 of the 4 that can transfer
    assert north.overall_rate == 20.0
    assert by["城关镇"].overall_rate == 100.0
    assert d.total.households == 20 and d.total.overall_rate == 60.0
    assert [p.households for p in d.projects if p.district == "市北区"] == [4, 6]


def test_petition_rates(db, data):
    """办结率 counts closed and transferred; 按期 and 息诉罢访 are over closed cases."""
    p = dashboard_service.build(db=db, today=TODAY).petitions
    assert (p.total, p.closed, p.transferred, p.open) == (7, 3, 1, 3)
    assert p.closure_rate == round(4 / 7 * 100, 1)
    assert p.closed_on_time == 2
    # 息诉罢访: over the answers given (the resident's own, or by phone), not over all closed.
    assert (p.satisfied, p.rated) == (1, 2) and p.satisfaction_rate == 50.0
    assert p.overdue == 1  # only the 住建局 assignment of 11-02 is past due on 11-23


def test_counts_by_blocker_and_department(db, data):
    """Open blockers per type with households and petitions; assignments per department."""
    d = dashboard_service.build(db=db, today=TODAY)
    blockers = {r["code"]: r for r in d.by_blocker}
    assert blockers["fire_acceptance"]["projects"] == 2
    assert blockers["fire_acceptance"]["households"] == 10
    assert blockers["fire_acceptance"]["petitions"] == 3
    assert blockers["mortgage"]["petitions"] == 2
    depts = {r["code"]: r for r in d.by_department}
    assert depts["housing_bureau"]["overdue"] == 1 and depts["tax_bureau"]["overdue"] == 0
    assert depts["housing_bureau"]["name"] == "住建局"
    assert [r["days_late"] for r in d.overdue] == [14]


def test_exports_carry_the_same_numbers(db, data):
    """CSV and XLSX hold the same tables; every chart is well-formed SVG with the labels."""
    d = dashboard_service.build(db=db, today=TODAY)
    csv_text = dashboard_service.to_csv(d).decode("utf-8-sig")
    wb = load_workbook(io.BytesIO(dashboard_service.to_xlsx(d)))
    for title, header, rows in dashboard_service.tables(d):
        sheet = [[c.value for c in row] for row in wb[title].iter_rows()]
        assert sheet[0] == header
        assert [[str(v) if v is not None else "" for v in row] for row in sheet[1:]] == [
            [str(v) for v in row] for row in rows
        ]
        assert f"【{title}】" in csv_text
    assert "40.0%" in csv_text and "50.0%" in csv_text
    for name in charts.CHARTS:
        root = ET.fromstring(charts.render(name, d))
        assert root.tag.endswith("svg")
    assert "市北区" in charts.render("districts", d)


@pytest.mark.parametrize("name", ['=HYPERLINK("http://evil.example","点我")', "+1+2", "@SUM(A1)"])
def test_exports_write_formula_like_ledger_text_as_text(db, name):
    """A ledger's project name that a spreadsheet would run as a formula: in the CSV it starts
    with an apostrophe, in the XLSX it is a plain string cell with the text unchanged."""
    make_project(db, name=name, district="市北区", blockers=())
    d = dashboard_service.build(db=db, today=TODAY)
    csv_text = dashboard_service.to_csv(d).decode("utf-8-sig")
    assert f"'{name[:6]}" in csv_text.replace('""', '"')
    assert not any(
        line.startswith(name[:3]) or f",{name[:3]}" in line for line in csv_text.splitlines()
    )
    wb = load_workbook(io.BytesIO(dashboard_service.to_xlsx(d)))
    cells = [c for ws in wb.worksheets for row in ws.iter_rows() for c in row if c.value == name]
    assert cells, "the name is in the workbook"
    assert all(c.data_type == "s" for c in cells)
