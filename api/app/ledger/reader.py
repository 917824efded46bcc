"""Reading ledger files: CSV (UTF-8, UTF-8 with BOM, GB18030/GBK) and XLSX, as streams of rows.

Sheets are recognised by their header row, never by file or sheet name, because staff rename
both. Rows are yielded one at a time with the row number a spreadsheet program shows.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any, Literal

PROJECT_COLUMNS = (
    "项目编号",
    "项目名称",
    "别名",
    "区县",
    "地址",
    "开发企业",
    "总套数",
    "首次登记",
    "卡点",
    "卡点说明",
    "责任单位",
    "预计化解日期",
)
UNIT_COLUMNS = ("项目编号", "幢号", "单元", "房号", "业主姓名", "身份证号", "转移登记")
SHEET_LABELS = {"projects": "项目表", "units": "房屋表"}
# The first cell of an XLSX sheet that only explains the others (the template's 说明 sheet):
# such a sheet is skipped, not reported as an unrecognised header.
NOTES_MARKER = "填写说明"

SheetKind = Literal["projects", "units"]
# What callers may pass: a path, (filename, bytes), (filename, file object) or a file object.
LedgerSource = str | os.PathLike[str] | tuple[str, bytes] | tuple[str, IO[bytes]] | IO[bytes]

_CHUNK = 1 << 20
_CSV_FIELD_LIMIT = 1 << 20


@dataclass(frozen=True)
class RowError:
    """One problem of one cell (or one row, or one file): where it is and why, in Chinese."""

    sheet: str
    row: int
    column: str
    reason: str
    # For a units-sheet row: the home as typed in that row, so that staff can find it.
    building: str = ""
    unit: str = ""
    room: str = ""

    @property
    def home(self) -> str:
        """幢号/单元/房号 of the row as one short text ('' when not a unit row)."""
        return home_text(self.building, self.unit, self.room)


def home_text(building: str, unit: str, room: str) -> str:
    """幢号/单元/房号 as typed, e.g. '3号楼/2单元/501' ('—' for an empty part, '' for none)."""
    if not (building or unit or room):
        return ""
    return "/".join(p or "—" for p in (building, unit, room))


class NulByteError(ValueError):
    """A CSV file with a NUL byte (damaged, or not text at all), at the given line."""

    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


class SheetReadError(Exception):
    """A sheet that cannot be read to its end (damaged file); carries the RowError."""

    def __init__(self, error: RowError) -> None:
        super().__init__(error.reason)
        self.error = error


@dataclass
class Sheet:
    """One recognised sheet: its kind, the column positions and a way to stream its rows."""

    kind: SheetKind
    name: str
    header_row: int
    columns: dict[str, int]
    total_rows: int | None
    _rows: Callable[[], Iterator[tuple[int, Sequence[Any]]]] = field(repr=False)
    # CSV cells are always strings: stripping them is all cell_text would do (and faster).
    plain_text: bool = False
    # A CSV sheet: its bytes, encoding and delimiter (the bulk load reads them with pyarrow).
    csv_source: CsvSource | None = field(default=None, repr=False)

    @property
    def complete(self) -> bool:
        """True when every column of the sheet's kind is present (rows can be checked)."""
        expected = PROJECT_COLUMNS if self.kind == "projects" else UNIT_COLUMNS
        return all(c in self.columns for c in expected)

    def rows(self) -> Iterator[tuple[int, tuple[str, ...]]]:
        """Non-empty data rows after the header: (row number as a spreadsheet shows it, texts).

        Raises SheetReadError when the file turns out to be unreadable part-way through.
        """
        from app.core.config import settings
        from app.ledger.guard import row_cap_message

        convert = str.strip if self.plain_text else cell_text
        header_row = number = self.header_row
        cap = settings.ledger_max_rows + header_row
        try:
            for number, values in self._rows():
                if number > cap:
                    raise SheetReadError(RowError(self.name, number, "", row_cap_message()))
                if number > header_row:
                    texts = tuple(map(convert, values))
                    if any(texts):
                        yield number, texts
        except (UnicodeDecodeError, csv.Error) as exc:
            reason = f"从这一行起文件无法读取（{type(exc).__name__}），请检查文件是否完整"
            raise SheetReadError(RowError(self.name, number + 1, "", reason)) from None


def cell_text(value: Any) -> str:
    """A cell as text: numbers without a spurious '.0', dates as YYYY-MM-DD, stripped."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip().strip("\u3000").strip()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def _clean_header(value: Any) -> str:
    text = cell_text(value).lstrip("\ufeff").replace(" ", "").replace("\u3000", "")
    return text.rstrip("*＊")


@dataclass(frozen=True)
class CsvSource:
    """Where a CSV sheet's bytes are (`blob.open()` reads them from the start), and how they
    are written."""

    blob: _Blob
    encoding: str
    delimiter: str


class _Blob:
    """The bytes of one source, reopenable from the start as often as needed."""

    def __init__(self, source: LedgerSource) -> None:
        self._path: Path | None = None
        self._data: bytes | None = None
        self._file: IO[bytes] | None = None
        if isinstance(source, tuple):
            name, payload = source
            self.name = Path(str(name)).name or "上传文件"
            if isinstance(payload, bytes | bytearray | memoryview):
                self._data = bytes(payload)
            else:
                self._file = payload
        elif isinstance(source, str | os.PathLike):
            self._path = Path(source)
            self.name = self._path.name
        else:
            self._file = source
            self.name = Path(str(getattr(source, "name", "") or "上传文件")).name
        if self._file is not None and not self._file.seekable():
            self._data, self._file = self._file.read(), None

    def open(self) -> AbstractContextManager[IO[bytes]]:
        """A binary stream positioned at the start (the caller's own file is not closed)."""
        if self._path is not None:
            return self._path.open("rb")
        if self._data is not None:
            return io.BytesIO(self._data)
        assert self._file is not None
        self._file.seek(0)
        return nullcontext(self._file)

    def head(self, size: int = 8) -> bytes:
        """The first bytes (format sniffing)."""
        with self.open() as fh:
            return fh.read(size)

    @property
    def suffix(self) -> str:
        """Lower-case extension of the file name."""
        return Path(self.name).suffix.lower()


def detect_encoding(blob_open: Callable[[], AbstractContextManager[IO[bytes]]]) -> tuple[str, int]:
    """Encoding of a CSV file and its number of lines; one streaming pass over the bytes.

    A BOM decides; otherwise the file is UTF-8 only if every byte decodes as UTF-8 (Chinese
    text in GBK essentially never does), else GB18030, the superset of GBK and GB2312.
    """
    lines = 0
    with blob_open() as fh:
        first = fh.read(_CHUNK)
        if first.startswith(codecs.BOM_UTF8):
            encoding = "utf-8-sig"
        elif first.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            encoding = "utf-16"
        else:
            encoding = "utf-8"
        decoder = codecs.getincrementaldecoder("utf-8")() if encoding == "utf-8" else None
        chunk = first
        while chunk:
            if encoding != "utf-16" and (nul := chunk.find(b"\x00")) >= 0:
                raise NulByteError(lines + chunk.count(b"\n", 0, nul) + 1)
            lines += chunk.count(b"\n")
            if decoder is not None:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    decoder, encoding = None, "gb18030"
            chunk = fh.read(_CHUNK)
        if decoder is not None:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                encoding = "gb18030"
    if encoding == "gb18030" and not _decodes(blob_open, encoding):
        raise UnicodeError("neither UTF-8 nor GB18030")
    return encoding, lines


def _decodes(blob_open: Callable[[], AbstractContextManager[IO[bytes]]], encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with blob_open() as fh:
            while chunk := fh.read(_CHUNK):
                decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _classify(headers: list[str]) -> SheetKind | None:
    present = {h for h in headers if h}
    scores: dict[SheetKind, int] = {
        "projects": len(present & set(PROJECT_COLUMNS)),
        "units": len(present & set(UNIT_COLUMNS)),
    }
    kind: SheetKind = max(scores, key=lambda k: scores[k])
    # 项目编号 is in both; a sheet needs at least one more column of its own to be recognised.
    return kind if scores[kind] >= 2 else None


def _header_errors(
    sheet: str, row: int, headers: list[str], kind: SheetKind
) -> tuple[dict[str, int], list[RowError]]:
    expected = PROJECT_COLUMNS if kind == "projects" else UNIT_COLUMNS
    label = SHEET_LABELS[kind]
    columns: dict[str, int] = {}
    errors: list[RowError] = []
    for idx, head in enumerate(headers):
        if not head:
            continue
        if head not in expected:
            errors.append(RowError(sheet, row, head, f"无法识别的列名“{head}”（{label}）"))
        elif head in columns:
            errors.append(RowError(sheet, row, head, f"列“{head}”重复出现"))
        else:
            columns[head] = idx
    for head in expected:
        if head not in columns:
            errors.append(RowError(sheet, row, head, f"{label}缺少列“{head}”"))
    return columns, errors


def _first_nonempty(rows: Iterator[Sequence[Any]]) -> tuple[int, list[str]] | None:
    for number, values in enumerate(rows, start=1):
        headers = [_clean_header(v) for v in values]
        if any(headers):
            return number, headers
        if number > 50:  # a sheet whose first 50 rows are empty is treated as empty
            return None
    return None


@contextmanager
def _csv_rows(
    blob: _Blob, encoding: str, delimiter: str
) -> Iterator[Iterator[tuple[int, Sequence[Any]]]]:
    with blob.open() as raw:
        text = io.TextIOWrapper(raw, encoding=encoding, newline="")
        try:
            reader = csv.reader(text, delimiter=delimiter)
            yield enumerate(reader, start=1)
        finally:
            text.detach()


def _open_csv(blob: _Blob, errors: list[RowError]) -> list[Sheet]:
    csv.field_size_limit(_CSV_FIELD_LIMIT)
    try:
        encoding, lines = detect_encoding(blob.open)
        with blob.open() as raw:
            sample = raw.read(64 * 1024).decode(encoding, errors="replace")
    except OSError as exc:
        errors.append(RowError(blob.name, 0, "", f"无法读取文件：{exc.strerror or exc}"))
        return []
    except NulByteError as exc:
        reason = "文件含有空字符（NUL），可能已损坏，请在表格软件中重新另存为 CSV"
        errors.append(RowError(blob.name, exc.line, "", reason))
        return []
    except UnicodeError:
        reason = "文件编码无法识别，请在表格软件中另存为 CSV（UTF-8 或 GBK 编码）后再导入"
        errors.append(RowError(blob.name, 0, "", reason))
        return []
    first_line = sample.lstrip("\ufeff").split("\n", 1)[0]
    delimiter = "\t" if first_line.count("\t") > first_line.count(",") else ","
    try:
        with _csv_rows(blob, encoding, delimiter) as records:
            found = _first_nonempty(r for _, r in records)
    except (UnicodeDecodeError, csv.Error) as exc:
        errors.append(RowError(blob.name, 0, "", f"文件无法按 CSV 读取：{exc}"))
        return []
    if found is None:
        errors.append(RowError(blob.name, 0, "", "文件是空的"))
        return []
    header_row, headers = found
    kind = _classify(headers)
    if kind is None:
        errors.append(
            RowError(blob.name, header_row, "", "无法识别的表头：既不是项目表也不是房屋表")
        )
        return []
    columns, header_errors = _header_errors(blob.name, header_row, headers, kind)
    errors.extend(header_errors)

    def rows() -> Iterator[tuple[int, Sequence[Any]]]:
        with _csv_rows(blob, encoding, delimiter) as it:
            yield from it

    left = max(lines - header_row, 0)
    source = CsvSource(blob, encoding, delimiter)
    return [
        Sheet(kind, blob.name, header_row, columns, left, rows, plain_text=True, csv_source=source)
    ]


def _open_xlsx(blob: _Blob, stack: ExitStack, errors: list[RowError]) -> list[Sheet]:
    from openpyxl import load_workbook

    from app.ledger.guard import XlsxRefused, check_xlsx

    try:
        handle = stack.enter_context(blob.open())
        # Sizes, ratios and row counts checked on the zip itself before openpyxl unpacks it.
        check_xlsx(handle)
    except XlsxRefused as exc:
        errors.append(RowError(blob.name, 0, "", str(exc)))
        return []
    try:
        handle.seek(0)
        workbook = load_workbook(handle, read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds on a damaged file
        errors.append(RowError(blob.name, 0, "", "文件不是有效的 Excel（.xlsx）工作簿"))
        return []
    stack.callback(workbook.close)
    sheets: list[Sheet] = []
    for ws in workbook.worksheets:
        total = ws.max_row if isinstance(ws.max_row, int) else None
        # Some programs write a wrong dimension tag: read every row regardless.
        ws.reset_dimensions()
        found = _first_nonempty(iter(ws.iter_rows(values_only=True)))
        if found is None:
            continue  # an empty sheet (e.g. the default Sheet2) is not an error
        header_row, headers = found
        if headers[0] == NOTES_MARKER:
            continue  # an explanation sheet, such as the template's 说明
        kind = _classify(headers)
        if kind is None:
            errors.append(
                RowError(ws.title, header_row, "", "无法识别的表头：既不是项目表也不是房屋表")
            )
            continue
        columns, header_errors = _header_errors(ws.title, header_row, headers, kind)
        errors.extend(header_errors)

        def rows(ws: Any = ws) -> Iterator[tuple[int, Sequence[Any]]]:
            return enumerate(ws.iter_rows(values_only=True), start=1)

        left = None if total is None else max(total - header_row, 0)
        sheets.append(Sheet(kind, ws.title, header_row, columns, left, rows))
    if not sheets and not errors:
        errors.append(RowError(blob.name, 0, "", "工作簿中没有项目表或房屋表"))
    return sheets


def open_sheets(
    sources: list[LedgerSource], stack: ExitStack, errors: list[RowError]
) -> list[Sheet]:
    """Recognise every sheet of every source; file and header problems go to `errors`."""
    sheets: list[Sheet] = []
    for source in sources:
        try:
            blob = _Blob(source)
        except OSError as exc:
            errors.append(RowError(str(source), 0, "", f"无法读取文件：{exc.strerror or exc}"))
            continue
        if blob._path is not None and not blob._path.is_file():
            errors.append(RowError(blob.name, 0, "", "文件不存在"))
            continue
        if blob.suffix == ".xls" or blob.head(8).startswith(b"\xd0\xcf\x11\xe0"):
            errors.append(
                RowError(blob.name, 0, "", "不支持旧版 .xls 格式，请另存为 .xlsx 或 CSV 后再导入")
            )
        elif blob.suffix in {".xlsx", ".xlsm"} or blob.head(4) == b"PK\x03\x04":
            sheets.extend(_open_xlsx(blob, stack, errors))
        else:
            sheets.extend(_open_csv(blob, errors))
    return sheets
