"""Console screen for maintainers: how well the bot does, from real conversations."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.console.common import html_errors, render
from app.core.database import DbSession
from app.core.errors import AppError
from app.quality import charts
from app.quality import service as quality_service
from app.staff import roles
from app.staff.auth import ConsoleUser

router = APIRouter(prefix="/console", include_in_schema=False)


def _period(since: str | None, until: str | None) -> tuple[date | None, date | None]:
    try:
        return (
            date.fromisoformat(since) if since else None,
            date.fromisoformat(until) if until else None,
        )
    except ValueError as exc:
        raise AppError(422, "bad_date", "日期格式应为 年-月-日，例如 2026-12-01。") from exc


@router.get("/quality", response_class=HTMLResponse)
@html_errors
def quality(
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    since: Annotated[str | None, Query(max_length=10)] = None,
    until: Annotated[str | None, Query(max_length=10)] = None,
) -> HTMLResponse:
    """Containment, fallback and transfer rates, unanswered messages, F1 by model version."""
    roles.require(user, "nlu.read")
    start, end = _period(since, until)
    figures = quality_service.build(db=db, since=start, until=end)
    return render(request, "quality.html", user, q=figures)


@router.get("/quality/confusion.svg")
def confusion(
    db: DbSession,
    user: ConsoleUser,
    since: Annotated[str | None, Query(max_length=10)] = None,
    until: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    """The confusion matrix of the annotated messages, as an image."""
    roles.require(user, "nlu.read")
    start, end = _period(since, until)
    figures = quality_service.build(db=db, since=start, until=end)
    return Response(
        charts.confusion_svg(figures),
        media_type="image/svg+xml",
        headers={"Cache-Control": "no-store"},
    )
