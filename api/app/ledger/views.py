"""Staff endpoints for ledger uploads: queue an import, then follow it.

`POST /staff/ledger/import` authenticates (bearer token, or a console session with the CSRF
header) and checks the `ledger.import` permission before a byte of the body is read, streams
the files to disk (413 over LEDGER_MAX_UPLOAD_BYTES), refuses an XLSX over the zip caps (422)
and answers 202 at once; `GET /staff/ledger/imports/{import_id}` gives the state and, when the
job has ended, the report or the row errors.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select

from app.core.config import settings
from app.core.database import DbSession
from app.core.errors import AppError
from app.core.limits import LARGE_BODY_ROUTES
from app.ledger import intake, template
from app.ledger.models import LedgerImport
from app.ledger.reader import home_text
from app.staff import roles
from app.staff.auth import StaffDep

router = APIRouter(prefix="/staff", tags=["staff"])

UPLOAD_PATHS = ("/api/v1/staff/ledger/import", "/console/ledger")
# The size cap of the edge lets a ledger (plus its multipart framing) through; the upload's own
# cap, counted while streaming, answers with the ledger's Chinese 413.
LARGE_BODY_ROUTES.append(
    (lambda path: path in UPLOAD_PATHS, lambda: settings.ledger_max_upload_bytes + 256 * 1024)
)
_PUBLIC_ID = re.compile(r"^[0-9a-f]{16}$")
NOT_FOUND = "没有找到这次台账导入。"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def error_read(error: dict[str, Any]) -> dict[str, Any]:
    """One stored row error with the home of a units row: `building`, `unit`, `room` as typed
    and `home` ('3号楼/2单元/501', '' for other rows); imports stored before have none."""
    parts = {k: str(error.get(k) or "") for k in ("building", "unit", "room")}
    return error | parts | {"home": home_text(parts["building"], parts["unit"], parts["room"])}


def template_response() -> Response:
    """The ledger template workbook as a download."""
    name = quote(template.FILENAME)
    disposition = f"attachment; filename=\"ledger-template.xlsx\"; filename*=UTF-8''{name}"
    return Response(
        template.build_template(),
        media_type=template.MEDIA_TYPE,
        headers={"Content-Disposition": disposition, "Cache-Control": "no-store"},
    )


def import_read(row: LedgerImport) -> dict[str, Any]:
    """An upload and its job as the API shows it."""
    return {
        "import_id": row.public_id,
        "state": row.state,
        "state_label": row.state_label,
        "status_url": f"/api/v1/staff/ledger/imports/{row.public_id}",
        "files": list(row.files),
        "size_bytes": row.size_bytes,
        "created_at": _iso(row.created_at),
        "started_at": _iso(row.started_at),
        "finished_at": _iso(row.finished_at),
        "imported": row.state == "done",
        "report": row.report,
        "errors": [error_read(e) for e in row.errors or []],
        "error_total": row.error_total,
        "message": row.message,
    }


def get_import(db: DbSession, import_id: str) -> LedgerImport:
    """The upload with this public id, or a 404."""
    row = None
    if _PUBLIC_ID.match(import_id):
        row = db.scalar(select(LedgerImport).where(LedgerImport.public_id == import_id))
    if row is None:
        raise AppError(404, "not_found", NOT_FOUND)
    return row


# The body is streamed by the route itself (after authentication), so FastAPI is told its shape.
UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "CSV（每张表一个文件）或 XLSX 台账",
                        }
                    },
                }
            }
        },
    }
}


@router.post("/ledger/import", status_code=202, openapi_extra=UPLOAD_BODY)
async def import_ledger(request: Request, db: DbSession, user: StaffDep) -> JSONResponse:
    """Queue the import of ledger files (CSV or XLSX, multipart field `files`): 202 with the
    `import_id` and its `status_url`. Row errors come with the status, nothing imported."""
    roles.require(user, "ledger.import")
    row = await intake.take_upload(request, db, f"staff:{user.username}")
    return JSONResponse(import_read(row), status_code=202)


@router.get("/ledger/template.xlsx", response_class=Response)
def ledger_template(user: StaffDep) -> Response:
    """The template workbook: 项目表 and 房屋表 with the importer's headers and example rows that
    import as they are, and a 说明 sheet (allowed values, blocker codes, departments)."""
    roles.require(user, "ledger.import")
    return template_response()


@router.get("/ledger/imports/{import_id}")
def import_status(import_id: str, db: DbSession, user: StaffDep) -> dict[str, Any]:
    """State (`queued`, `running`, `done`, `failed`) and, once ended, the report or errors."""
    roles.require(user, "ledger.import")
    return import_read(get_import(db, import_id))
