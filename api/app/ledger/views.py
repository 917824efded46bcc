"""Staff endpoint for uploading ledger files."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, UploadFile

from app.core.database import DbSession
from app.core.errors import AppError
from app.ledger import upload as ledger_upload
from app.staff import roles
from app.staff.auth import StaffDep

router = APIRouter(prefix="/staff", tags=["staff"])


@router.post("/ledger/import")
async def import_ledger(
    db: DbSession, user: StaffDep, files: Annotated[list[UploadFile], File()]
) -> dict[str, object]:
    """Import ledger files (CSV or XLSX); 422 with row errors and nothing imported when bad."""
    roles.require(user, "ledger.import")
    contents = [(f.filename or "", await f.read()) for f in files]
    report, errors = ledger_upload.import_files(db=db, user=user, files=contents)
    if errors:
        raise AppError(422, "ledger_invalid", "台账有错误，未导入任何数据。", {"errors": errors})
    return {"imported": True, "report": report}
