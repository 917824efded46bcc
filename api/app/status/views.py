"""Public project endpoints: search projects, and one project's certificate status."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from app.core.database import DbSession
from app.core.errors import AppError
from app.status import service as status_service
from app.status.schemas import ProjectPage, ProjectStatusRead

router = APIRouter(tags=["projects"])


@router.get("/projects", response_model=ProjectPage)
def list_projects(
    db: DbSession,
    q: Annotated[str | None, Query(max_length=64, description="名称、别名或编号")] = None,
    limit: Annotated[int, Query(ge=1, le=status_service.MAX_PAGE)] = 20,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> dict[str, Any]:
    """Projects whose name, alias, code or district contains `q`, a page at a time."""
    return status_service.list_projects(db=db, q=q, limit=limit, offset=offset)


@router.get("/projects/{code}/status", response_model=ProjectStatusRead)
def project_status(code: str, db: DbSession) -> dict[str, Any]:
    """One project's 首次登记, 转移登记 progress, open and resolved blockers, next steps."""
    project = status_service.get_by_code(db=db, code=code)
    if project is None:
        raise AppError(404, "project_not_found", "没有找到这个项目，请核对项目编号。")
    return status_service.project_status(db=db, project=project)
