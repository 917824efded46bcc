"""Console dashboard: figures, charts and exports."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.console.common import (
    html_errors,
    render,
)
from app.core.database import DbSession
from app.core.errors import AppError
from app.dashboard import charts
from app.dashboard import service as dashboard_service
from app.staff import roles
from app.staff.auth import (
    ConsoleUser,
)

router = APIRouter(prefix="/console", include_in_schema=False)
Since = Annotated[date | None, Query(alias="from")]
Until = Annotated[date | None, Query(alias="to")]
PROJECTS_PER_PAGE = 50


def _period_query(since: date | None, until: date | None) -> str:
    pairs = [(k, v.isoformat()) for k, v in (("from", since), ("to", until)) if v]
    return "?" + urlencode(pairs) if pairs else ""


@router.get("/dashboard", response_class=HTMLResponse)
@html_errors
def dashboard(
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    since: Since = None,
    until: Until = None,
    district: Annotated[str, Query(max_length=64)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    """Registration and petition figures with server-rendered SVG charts; a date range limits
    the petition figures (and the exports linked from the page). The per-project table shows
    PROJECTS_PER_PAGE rows of one district or all (a province has ten thousand projects; the
    exports hold every one)."""
    roles.require(user, "dashboard.read")
    error: str | None = None
    try:
        d = dashboard_service.build(db=db, since=since, until=until)
    except AppError as exc:
        d, error = dashboard_service.build(db=db), exc.message
    svgs = {name: charts.render(name, d) for name in charts.CHARTS}
    rows = [r for r in d.projects if not district or r.district == district]
    pages = max(1, -(-len(rows) // PROJECTS_PER_PAGE))
    page = min(page, pages)
    pairs = [(k, v) for k, v in (("from", d.since), ("to", d.until), ("district", district)) if v]
    return render(
        request,
        "dashboard.html",
        user,
        422 if error else 200,
        error,
        d=d,
        svgs=svgs,
        period_query=_period_query(d.since, d.until),
        project_rows=rows[(page - 1) * PROJECTS_PER_PAGE : page * PROJECTS_PER_PAGE],
        project_total=len(rows),
        project_query=urlencode(pairs) + "&" if pairs else "",
        district=district,
        page=page,
        pages=pages,
        definitions=dashboard_service.definitions(),
    )


@router.get("/dashboard/{name}.svg")
def dashboard_chart(name: str, db: DbSession, user: ConsoleUser) -> Response:
    """One chart as a downloadable SVG file."""
    roles.require(user, "dashboard.read")
    if name not in charts.CHARTS:
        raise AppError(404, "not_found", "没有这张图表。")
    d = dashboard_service.build(db=db)
    return Response(
        charts.render(name, d),
        media_type="image/svg+xml",
        headers={"Content-Disposition": f'attachment; filename="{name}-{d.today:%Y%m%d}.svg"'},
    )


@router.get("/dashboard.{fmt}")
def dashboard_export(
    fmt: str, db: DbSession, user: ConsoleUser, since: Since = None, until: Until = None
) -> Response:
    """The same figures as CSV or XLSX, for the same date range."""
    roles.require(user, "dashboard.read")
    d = dashboard_service.build(db=db, since=since, until=until)
    if fmt == "csv":
        body, media = dashboard_service.to_csv(d), "text/csv; charset=utf-8"
    elif fmt == "xlsx":
        body = dashboard_service.to_xlsx(d)
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    else:
        raise AppError(404, "not_found", "只能导出 CSV 或 XLSX。")
    return Response(
        body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="dashboard-{d.today:%Y%m%d}.{fmt}"'},
    )
