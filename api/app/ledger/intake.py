"""Taking in an uploaded ledger: after the caller is authenticated (the route has no body
parameters, so FastAPI reads nothing before its dependencies ran), the multipart body is
streamed to files under LEDGER_UPLOAD_DIR with a size cap, XLSX workbooks are checked against
the zip caps, and an import job is queued. The request never imports anything itself.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.core.config import settings
from app.core.errors import AppError
from app.core.limits import BodyTooLarge
from app.ledger.guard import XlsxRefused, check_xlsx
from app.ledger.models import LedgerImport

ALLOWED_SUFFIXES = (".csv", ".xlsx")
MAX_FILES = 20
MAX_FIELD_BYTES = 1024
FILE_FIELD = "files"
BAD_UPLOAD = "上传的内容不完整或格式不对，请重新选择文件上传。"


def safe_name(name: str, index: int) -> str:
    """The file's own name without any folder part (at most 80 characters); CSV or XLSX only."""
    base = Path((name or "").replace("\\", "/")).name[-80:]
    suffix = Path(base).suffix.lower()
    if suffix not in ALLOWED_SUFFIXES:
        raise AppError(422, "bad_file_type", "只能上传 CSV 或 XLSX 格式的台账。")
    return base if Path(base).stem else f"upload_{index}{suffix}"


def too_large_message() -> str:
    """The Chinese 413 of a ledger upload."""
    mb = settings.ledger_max_upload_bytes // (1024 * 1024)
    return (
        f"台账文件太大了：一次最多上传 {mb} MB。请把房屋表分成几个文件分批上传，"
        "或另存为 CSV（通常小得多）。"
    )


@dataclass
class _Part:
    name: str = ""
    filename: str | None = None
    handle: IO[bytes] | None = None
    value: bytearray = field(default_factory=bytearray)


@dataclass
class Received:
    """What the body held: the files written (display names) and the plain fields."""

    folder: Path
    names: list[str] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Bytes of all files."""
        return sum(self.sizes)


class _Collector:
    """Callbacks of python-multipart's streaming parser: file parts go straight to disk."""

    def __init__(self, received: Received) -> None:
        self.received = received
        self.part = _Part()
        self.headers: dict[bytes, bytes] = {}
        self._field = bytearray()
        self._value = bytearray()
        self.error: AppError | None = None

    def _fail(self, error: AppError) -> None:
        if self.error is None:
            self.error = error

    def on_part_begin(self) -> None:
        self.part = _Part()
        self.headers = {}

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[bytes(self._field).lower()] = bytes(self._value)
        self._field, self._value = bytearray(), bytearray()

    def on_headers_finished(self) -> None:
        _kind, options = parse_options_header(self.headers.get(b"content-disposition"))
        self.part.name = options.get(b"name", b"").decode("utf-8", errors="replace")
        raw_filename = options.get(b"filename")
        if raw_filename is None or self.error is not None:
            return
        self.part.filename = raw_filename.decode("utf-8", errors="replace")
        if self.part.name != FILE_FIELD or not self.part.filename:
            return  # an empty file input sends a part without a file name
        index = len(self.received.names)
        if index >= MAX_FILES:
            self._fail(AppError(422, "too_many_files", f"一次最多上传 {MAX_FILES} 个文件。"))
            return
        try:
            safe = safe_name(self.part.filename, index)
        except AppError as exc:
            self._fail(exc)
            return
        target = self.received.folder / str(index) / safe
        target.parent.mkdir(parents=True, exist_ok=True)
        self.part.handle = target.open("wb")
        self.received.names.append(safe)
        self.received.sizes.append(0)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.error is not None:
            return
        chunk = data[start:end]
        if self.part.handle is not None:
            self.received.sizes[-1] += len(chunk)
            if self.received.total > settings.ledger_max_upload_bytes:
                self._fail(AppError(413, "too_large", too_large_message()))
                return
            self.part.handle.write(chunk)
        elif self.part.filename is None:
            self.part.value += chunk
            if len(self.part.value) > MAX_FIELD_BYTES:
                self._fail(AppError(422, "field_too_long", "表单内容太长了。"))

    def on_part_end(self) -> None:
        if self.part.handle is not None:
            self.part.handle.close()
            self.part.handle = None
        elif self.part.filename is None and self.part.name:
            self.received.fields[self.part.name] = self.part.value.decode("utf-8", errors="replace")

    def close(self) -> None:
        if self.part.handle is not None:
            self.part.handle.close()


def _too_large(exc: BaseException) -> bool:
    """True for the edge's BodyTooLarge, also inside the access log's exception groups."""
    if isinstance(exc, BaseExceptionGroup):  # noqa: F821 - a builtin of Python 3.11
        return any(_too_large(inner) for inner in exc.exceptions)
    return isinstance(exc, BodyTooLarge)


async def receive(request: Request, public_id: str) -> Received:
    """Stream the multipart body to LEDGER_UPLOAD_DIR/<public_id>/<n>/<file name>; capped.

    Raises AppError (413 over the cap, 422 for a body that is not a ledger upload) with the
    folder already removed.
    """
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise AppError(422, "file_required", "请选择要上传的台账文件。")
    received = Received(folder=settings.ledger_upload_dir / public_id)
    received.folder.mkdir(parents=True, exist_ok=True)
    collector = _Collector(received)
    callbacks = {
        name: getattr(collector, name)
        for name in (
            "on_part_begin",
            "on_header_field",
            "on_header_value",
            "on_header_end",
            "on_headers_finished",
            "on_part_data",
            "on_part_end",
        )
    }
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    try:
        async for chunk in request.stream():
            # Parsing and writing happen off the event loop: other requests go on meanwhile.
            await run_in_threadpool(parser.write, chunk)
            if collector.error is not None:
                raise collector.error  # the rest of the body is never read
        parser.finalize()
    except AppError:
        collector.close()
        shutil.rmtree(received.folder, ignore_errors=True)
        raise
    except Exception as exc:
        collector.close()
        shutil.rmtree(received.folder, ignore_errors=True)
        if _too_large(exc):
            # The edge's cap (the ledger's plus the multipart framing) came first.
            raise AppError(413, "too_large", too_large_message()) from None
        raise AppError(422, "bad_upload", BAD_UPLOAD) from None
    collector.close()
    empty = [i for i, size in enumerate(received.sizes) if size == 0]
    if len(empty) == len(received.sizes):
        shutil.rmtree(received.folder, ignore_errors=True)
        raise AppError(422, "file_required", "请选择要上传的台账文件。")
    return received


def check_workbooks(received: Received) -> None:
    """The zip caps for every XLSX file (app.ledger.guard); 422 with the reason."""
    for i, name in enumerate(received.names):
        if not name.lower().endswith(".xlsx") or received.sizes[i] == 0:
            continue
        with (received.folder / str(i) / name).open("rb") as fh:
            try:
                check_xlsx(fh, received.sizes[i])
            except XlsxRefused as exc:
                raise AppError(422, "xlsx_refused", f"{name}：{exc}") from None


def queue_import(db: Session, received: Received, public_id: str, actor: str) -> LedgerImport:
    """Record the upload (committed) and queue its job."""
    from app.ledger.jobs import import_ledger_job

    # Empty files were skipped before too; their folders are removed.
    names: list[str] = []
    for i, name in enumerate(received.names):
        src = received.folder / str(i) / name
        if received.sizes[i] == 0:
            shutil.rmtree(src.parent, ignore_errors=True)
            continue
        if len(names) != i:
            dest = received.folder / str(len(names)) / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            src.rename(dest)
            shutil.rmtree(src.parent, ignore_errors=True)
        names.append(name)
    row = LedgerImport(
        public_id=public_id,
        state="queued",
        actor=actor[:64],
        files=names,
        size_bytes=received.total,
        error_total=0,
    )
    db.add(row)
    db.commit()
    try:
        import_ledger_job(row.id)
    except Exception:
        row.state, row.message = "failed", "导入任务无法排队（任务队列不可用），请稍后重新上传。"
        db.commit()
        shutil.rmtree(received.folder, ignore_errors=True)
        raise AppError(503, "queue_unavailable", row.message) from None
    return row


async def take_upload(
    request: Request,
    db: Session,
    actor: str,
    check_fields: Callable[[dict[str, str]], None] | None = None,
) -> LedgerImport:
    """Receive, check and queue one upload (the caller has authenticated the request).

    The request's session gives its connection back while the body streams in (a slow
    upload holds no database connection), and takes one again to record the upload.
    """
    await run_in_threadpool(db.commit)
    public_id = secrets.token_hex(8)
    received = await receive(request, public_id)
    try:
        if check_fields is not None:
            check_fields(received.fields)
        await run_in_threadpool(check_workbooks, received)
        return await run_in_threadpool(queue_import, db, received, public_id, actor)
    except BaseException:
        shutil.rmtree(received.folder, ignore_errors=True)
        raise
