"""Ledger files uploaded in the browser, imported exactly like `make import-ledger`."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from app.core.errors import AppError
from app.staff import roles
from app.staff.models import StaffUser

ALLOWED_SUFFIXES = (".csv", ".xlsx")


def _safe_name(name: str, index: int) -> str:
    base = Path((name or "").replace("\\", "/")).name[-80:]
    suffix = Path(base).suffix.lower()
    if suffix not in ALLOWED_SUFFIXES:
        raise AppError(422, "bad_file_type", "只能上传 CSV 或 XLSX 格式的台账。")
    return base if Path(base).stem else f"upload_{index}{suffix}"


def _report_dict(report: Any) -> dict[str, Any]:
    if report is None:
        return {}
    if dataclasses.is_dataclass(report) and not isinstance(report, type):
        out = dataclasses.asdict(report)
        if hasattr(report, "summary_zh"):
            out["summary"] = report.summary_zh()
        return out
    if hasattr(report, "model_dump"):
        return dict(report.model_dump())
    if isinstance(report, dict):
        return report
    return {k: v for k, v in vars(report).items() if not k.startswith("_")}


def import_files(
    *, db: Session, user: StaffUser, files: Sequence[tuple[str, bytes]]
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """Import uploaded ledgers; returns (report, []) or (None, row errors) with nothing kept."""
    roles.require(user, "ledger.import")
    files = [(n, c) for n, c in files if c]
    if not files:
        raise AppError(422, "file_required", "请选择要上传的台账文件。")
    from app.ledger.service import LedgerValidationError, import_ledger

    sources = [(_safe_name(name, i), content) for i, (name, content) in enumerate(files)]
    try:
        # A savepoint: a bad file leaves nothing behind even if the importer had flushed.
        with db.begin_nested():
            report = import_ledger(sources, db=db, actor=f"staff:{user.username}")
    except LedgerValidationError as exc:
        errors = [
            {
                "sheet": getattr(e, "sheet", ""),
                "row": getattr(e, "row", None),
                "column": getattr(e, "column", ""),
                "reason": getattr(e, "reason", str(e)),
            }
            for e in getattr(exc, "errors", [])
        ]
        return None, errors or [{"sheet": "", "row": None, "column": "", "reason": str(exc)}]
    return _report_dict(report), []
