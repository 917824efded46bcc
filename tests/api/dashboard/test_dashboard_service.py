"""Dashboard figures on a small known data set, and the CSV/XLSX/SVG forms of the same numbers."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime

import pytest
from openpyxl import load_workbook
from staff.staffkit import make_petition, make_project

from app.core.errors import AppError
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
    """CSV and XLSX hold the same tables — counts as integers, rates as numbers (a 0.0% number
    cell in the XLSX, a plain number under a （%） header in the CSV), Chinese labels only —
    and every chart is well-formed SVG with the labels."""
    d = dashboard_service.build(db=db, today=TODAY)
    csv_text = dashboard_service.to_csv(d).decode("utf-8-sig")
    wb = load_workbook(io.BytesIO(dashboard_service.to_xlsx(d)))
    for title, header, rows in dashboard_service.tables(d):
        sheet = list(wb[title].iter_rows())
        assert [c.value for c in sheet[0]] == header
        for cells, row in zip(sheet[1:], rows, strict=True):
            for cell, value in zip(cells, row, strict=True):
                if isinstance(value, dashboard_service.Percent):
                    assert cell.number_format == "0.0%"
                    assert cell.value == pytest.approx(value / 100)
                elif isinstance(value, int):
                    assert cell.data_type == "n" and cell.value == value
                elif isinstance(value, date):
                    assert cell.value.date() == value
                else:  # text; an empty text or a rate with nothing to divide is an empty cell
                    assert cell.value == (value if value not in ("", None) else None)
        assert f"【{title}】" in csv_text
    districts = next(rows for title, _, rows in dashboard_service.tables(d) if title == "按区县")
    north = next(r for r in districts if r[0] == "市北区")
    assert north[7:10] == [40.0, 50.0, 20.0]
    assert "市北区,市北区,2,1,10,4,2,40.0,50.0,20.0,50.0" in csv_text
    assert "%" not in csv_text.replace("（%）", "").split("【指标说明】")[0]
    # No English codes anywhere: blockers and departments by their Chinese names.
    assert "fire_acceptance" not in csv_text and "housing_bureau" not in csv_text
    assert "消防验收未通过" in csv_text and "住建局" in csv_text
    for name in charts.CHARTS:
        root = ET.fromstring(charts.render(name, d))
        assert root.tag.endswith("svg")
    assert "市北区" in charts.render("districts", d)


def test_exports_define_every_rate(db, data):
    d = dashboard_service.build(db=db, today=TODAY)
    wb = load_workbook(io.BytesIO(dashboard_service.to_xlsx(d)))
    defined = {row[0].value: row[1].value for row in wb["指标说明"].iter_rows(min_row=2)}
    for rate in ("首次登记化解率", "转移登记化解率", "总体登记率", "项目化解率", "办结率"):
        assert rate in defined and "÷" in defined[rate]
    assert "25%" in defined["项目化解率"]
    assert "信访统计范围：全部信访" in wb["说明"]["A1"].value


def test_a_project_is_resolved_only_above_the_transfer_threshold(db, monkeypatch):
    """化解 = 首次登记 done and 转移登记 above 25% (a setting): 1 of 4 (25%) is not enough,
    2 of 4 is; without 首次登记 even 100% is not."""
    from app.core.config import settings

    at = make_project(db, name="甲", initial_done=True, transfers=("done",) + ("not_started",) * 3)
    above = make_project(
        db, name="乙", initial_done=True, transfers=("done", "done", "not_started", "in_progress")
    )
    make_project(db, name="丙", initial_done=False, transfers=("done",) * 4)
    d = dashboard_service.build(db=db, today=TODAY)
    resolved = {r.label: r.resolved_projects for r in d.projects}
    assert resolved == {"甲": 0, "乙": 1, "丙": 0}
    assert d.total.resolved_projects == 1 and d.total.resolved_rate == round(100 / 3, 1)
    monkeypatch.setattr(settings, "project_resolved_transfer_rate", 20.0)
    d = dashboard_service.build(db=db, today=TODAY)
    assert {r.label: r.resolved_projects for r in d.projects} == {"甲": 1, "乙": 1, "丙": 0}
    assert at.code != above.code


def test_a_date_range_limits_the_petition_figures(db, data):
    """Petitions taken on 2026-11-20 only: the two assigned/accepted of that day."""
    day = date(2026, 11, 20)
    d = dashboard_service.build(db=db, today=TODAY, since=day, until=day)
    assert d.petitions.total == 2 and d.petitions.open == 2
    assert {r["code"] for r in d.by_department} == {"tax_bureau"}
    assert d.period == "受理日期 2026年11月20日 至 2026年11月20日"
    assert dashboard_service.build(db=db, today=TODAY, until=date(2026, 11, 1)).petitions.total == 0
    assert d.total.households == 20  # registration figures are not limited by the range
    with pytest.raises(AppError) as err:
        dashboard_service.build(db=db, today=TODAY, since=day, until=date(2026, 11, 1))
    assert err.value.status_code == 422 and "开始日期" in err.value.message


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
