"""XLSX checks made before openpyxl opens a workbook: an XLSX is a zip, and a small zip can
unpack to gigabytes (a 1.5 MB upload whose shared strings unpack to 711 MB took a gigabyte of
memory). Only the zip's central directory and the first bytes of each sheet are read here.

Caps (settings): the file's size, the members' total unpacked size, the unpacked size of the
shared strings (openpyxl holds them all in memory), each large member's compression ratio, the
number of members, and each sheet's row count from its `<dimension>` (the reader also stops at
the row cap while streaming, for a workbook whose dimension is missing or wrong).
Python's zipfile never unpacks a member past the size its directory declares, so the declared
sizes checked here bound what openpyxl can read.
"""

from __future__ import annotations

import re
import zipfile
from typing import IO

from app.core.config import settings

MAX_MEMBERS = 1000
# Members smaller than this are not ratio-checked (tiny XML parts compress very well).
RATIO_MIN_BYTES = 1024 * 1024
_DIMENSION = re.compile(rb"<(?:\w+:)?dimension\s+ref=\"[A-Z]*\d*:?[A-Z]*(\d+)\"")
_HEAD_BYTES = 64 * 1024
_MB = 1024 * 1024
NOT_XLSX = "文件不是有效的 Excel（.xlsx）工作簿"


class XlsxRefused(ValueError):
    """A workbook over a cap; the message says which, in Chinese."""


def _mb(n: int) -> str:
    return f"{n / _MB:.0f} MB" if n >= _MB else f"{n / 1024:.0f} KB"


def check_xlsx(handle: IO[bytes], size: int | None = None) -> None:
    """Raise XlsxRefused when the workbook in `handle` (seekable) is over a cap."""
    if size is None:
        handle.seek(0, 2)
        size = handle.tell()
    handle.seek(0)
    if size > settings.ledger_max_upload_bytes:
        raise XlsxRefused(
            f"工作簿有 {_mb(size)}，超过了上限 {_mb(settings.ledger_max_upload_bytes)}，"
            "请分成几个文件导入。"
        )
    try:
        archive = zipfile.ZipFile(handle)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise XlsxRefused(NOT_XLSX) from None
    with archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            raise XlsxRefused(f"{NOT_XLSX}（其中有 {len(members)} 个部件，太多了）")
        total = sum(m.file_size for m in members)
        if total > settings.ledger_xlsx_max_uncompressed_bytes:
            raise XlsxRefused(
                f"工作簿解压后有 {_mb(total)}，超过了上限 "
                f"{_mb(settings.ledger_xlsx_max_uncompressed_bytes)}，请分成几个文件导入。"
            )
        for m in members:
            if m.file_size >= RATIO_MIN_BYTES:
                ratio = m.file_size / max(m.compress_size, 1)
                if ratio > settings.ledger_xlsx_max_ratio:
                    raise XlsxRefused(
                        f"工作簿的压缩比异常（{m.filename} 解压后放大 {ratio:.0f} 倍，上限 "
                        f"{settings.ledger_xlsx_max_ratio} 倍），可能已损坏或是恶意文件，未导入。"
                    )
            name = m.filename.lower()
            if name.endswith("sharedstrings.xml"):
                if m.file_size > settings.ledger_xlsx_max_shared_strings_bytes:
                    raise XlsxRefused(
                        f"工作簿的共享文本有 {_mb(m.file_size)}，超过了上限 "
                        f"{_mb(settings.ledger_xlsx_max_shared_strings_bytes)}，"
                        "请分成几个文件导入，或另存为 CSV。"
                    )
            elif name.startswith("xl/worksheets/") and name.endswith(".xml"):
                rows = _dimension_rows(archive, m)
                if rows is not None and rows > settings.ledger_max_rows:
                    raise XlsxRefused(row_cap_message(rows))


def row_cap_message(rows: int | None = None) -> str:
    """The Chinese message for a sheet over the row cap."""
    shown = f"有 {rows} 行，" if rows else ""
    return f"工作表{shown}超过了上限 {settings.ledger_max_rows} 行，请分成几个文件导入。"


def _dimension_rows(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> int | None:
    """The last row number of the sheet's `<dimension ref="A1:G400001">`, if it has one."""
    try:
        with archive.open(member) as fh:
            head = fh.read(_HEAD_BYTES)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise XlsxRefused(NOT_XLSX) from None
    found = _DIMENSION.search(head)
    return int(found.group(1)) if found else None
