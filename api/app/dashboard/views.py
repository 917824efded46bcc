"""Dashboard figures as JSON, CSV, XLSX and SVG charts under /api/v1/staff/dashboard."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from app.core.database import DbSession
from app.core.errors import AppError
from app.dashboard import charts
from app.dashboard import service as dashboard_service
from app.staff import roles
from app.staff.auth import StaffDep
from app.status.ledger_memo import memo

router = APIRouter(prefix="/staff", tags=["staff: dashboard"])

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# The intake-date range of the petition figures (registration figures are as of today).
Since = Annotated[date | None, Query(alias="from", description="受理日期起（含），YYYY-MM-DD")]
Until = Annotated[date | None, Query(alias="to", description="受理日期止（含），YYYY-MM-DD")]


def _rows(rows: list[dashboard_service.RegistrationRow]) -> list[dict[str, Any]]:
    # Field by field, not dataclasses.asdict (a deep copy): a province has 10,000 projects.
    fields = [f.name for f in dataclasses.fields(dashboard_service.RegistrationRow)]
    return [
        {name: getattr(r, name) for name in fields}
        | {
            "initial_rate": r.initial_rate,
            "transfer_rate": r.transfer_rate,
            "overall_rate": r.overall_rate,
            "resolved_rate": r.resolved_rate,
        }
        for r in rows
    ]


def _json_default(value: Any) -> str:
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(type(value).__name__)


@router.get(
    "/dashboard",
    responses={
        200: {"description": "每项统计数字（JSON 对象）", "content": {"application/json": {}}}
    },
)
def dashboard(db: DbSession, user: StaffDep, since: Since = None, until: Until = None) -> Response:
    """Every dashboard figure as JSON; `from`/`to` limit the petition figures by intake date.
    Encoded in one pass (a province's 10,000 project rows through FastAPI's generic encoder
    took longer than computing them)."""
    roles.require(user, "dashboard.read")
    d = dashboard_service.build(db=db, since=since, until=until)
    p = d.petitions
    payload = {
        "today": d.today,
        "petitions": dataclasses.asdict(p)
        | {
            "closure_rate": p.closure_rate,
            "on_time_rate": p.on_time_rate,
            "satisfaction_rate": p.satisfaction_rate,
        },
        "by_blocker": d.by_blocker,
        "by_department": d.by_department,
        "overdue": d.overdue,
        "period": {"from": d.since, "to": d.until, "label": d.period},
        "definitions": [{"name": n, "definition": t} for n, t in dashboard_service.definitions()],
    }
    body = _json(payload)
    # The registration rows (10,000 projects a province) change only with the ledger: encoded
    # once per ledger token and spliced in.
    registration = memo(db, "dashboard.json.registration", lambda: _registration_json(db))
    return Response(
        b"".join((body[:-1].encode(), b",", registration, b"}")), media_type="application/json"
    )


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=_json_default, separators=(",", ":"))


def _registration_json(db: DbSession) -> bytes:
    """`"districts":[…],"projects":[…],"total":{…}` of the dashboard JSON, encoded."""
    districts, projects, total = dashboard_service.registration(db=db)
    parts = {"districts": _rows(districts), "projects": _rows(projects), "total": _rows([total])[0]}
    return _json(parts)[1:-1].encode()


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


@router.get("/dashboard.csv")
def dashboard_csv(
    db: DbSession, user: StaffDep, since: Since = None, until: Until = None
) -> Response:
    """The dashboard tables as CSV (UTF-8 with BOM, opens in Excel)."""
    roles.require(user, "dashboard.read")
    d = dashboard_service.build(db=db, since=since, until=until)
    return Response(
        dashboard_service.to_csv(d),
        media_type="text/csv; charset=utf-8",
        headers=_attachment(f"dashboard-{d.today:%Y%m%d}.csv"),
    )


@router.get("/dashboard.xlsx")
def dashboard_xlsx(
    db: DbSession, user: StaffDep, since: Since = None, until: Until = None
) -> Response:
    """The dashboard tables as an XLSX workbook."""
    roles.require(user, "dashboard.read")
    d = dashboard_service.build(db=db, since=since, until=until)
    return Response(
        dashboard_service.to_xlsx(d),
        media_type=XLSX_TYPE,
        headers=_attachment(f"dashboard-{d.today:%Y%m%d}.xlsx"),
    )


@router.get("/dashboard/charts/{name}.svg")
def dashboard_chart(name: str, db: DbSession, user: StaffDep) -> Response:
    """One dashboard chart as a downloadable SVG image."""
    roles.require(user, "dashboard.read")
    if name not in charts.CHARTS:
        raise AppError(404, "not_found", "没有这张图表。")
    d = dashboard_service.build(db=db)
    return Response(
        charts.render(name, d),
        media_type="image/svg+xml",
        headers=_attachment(f"{name}-{d.today:%Y%m%d}.svg"),
    )
