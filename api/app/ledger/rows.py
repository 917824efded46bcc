"""Checking one ledger unit row, as the per-row import and the bulk load both do: the collected
errors (capped), ID numbers (GB 11643) decided by lookups, and the row's staging tuple."""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Iterable
from datetime import date
from typing import Any

from app.core.security import hash_id_number
from app.ledger.reader import UNIT_COLUMNS, RowError, Sheet
from app.status.address import normalize_part
from app.status.idcard import ID_CHECK, validate_id_number, weighted_sum
from app.status.models import TRANSFER_STATUSES

__all__ = [
    "ID_PART_SUMS",
    "MAX_REPORTED_ERRORS",
    "Errors",
    "IdChecker",
    "UnitValidator",
    "cached_normalize_part",
]

MAX_REPORTED_ERRORS = 10_000
# Building, unit and room values repeat all over a ledger ("1号楼", "2单元", "501").
cached_normalize_part = functools.lru_cache(maxsize=1 << 16)(normalize_part)

_NO_HOME = ("", "", "")
# A home part longer than this is cut in the report (the row is refused for its length anyway).
_HOME_PART_CHARS = 40


class Errors:
    """Collected row errors, capped so that a wholly wrong file cannot exhaust memory."""

    def __init__(self) -> None:
        self.items: list[RowError] = []
        self.total = 0

    def add(
        self, sheet: str, row: int, column: str, reason: str, home: tuple[str, str, str] = _NO_HOME
    ) -> None:
        self.total += 1
        if len(self.items) < MAX_REPORTED_ERRORS:
            b, u, r = (part[:_HOME_PART_CHARS] for part in home)
            self.items.append(RowError(sheet, row, column, reason, b, u, r))

    def extend(self, errors: Iterable[RowError]) -> None:
        for e in errors:
            self.add(e.sheet, e.row, e.column, e.reason, (e.building, e.unit, e.room))


# An ID number typed into a numeric Excel cell: shown as 1.10105E+17, or stored as a float whose
# last digits became zeros (a double holds about 15 significant digits).
_SCIENTIFIC = re.compile(r"^\d(?:\.\d+)?[eE]\+?\d{1,2}$")
_EXCEL_HINT = "该列在表格软件里可能是“数字”格式，请把身份证号列设为“文本”后重新填写导出"


def _id_reason(raw: str, exc: ValueError) -> str:
    """Why an ID cell is refused (Chinese), naming Excel's number format when it is to blame."""
    text = raw.strip()
    if _SCIENTIFIC.match(text):
        return f"身份证号被存成了科学计数法数字，后几位已丢失；{_EXCEL_HINT}"
    if text.isdigit() and len(text) == 18 and text.endswith("00"):
        return f"{exc}（{_EXCEL_HINT}）"
    return str(exc)


# The check-digit sums of the three-digit parts at positions 0–2, 3–5 and 14–16, for every value.
ID_PART_SUMS = tuple(
    {f"{n:03d}": weighted_sum(f"{n:03d}", lo) for n in range(1000)} for lo in (0, 3, 14)
)


class IdChecker:
    """validate_id_number's verdict for the common case, from lookups instead of arithmetic.

    An 18-character ASCII ID (17 digits, then a digit or X) is decided here: birth dates are
    checked once each and the check digit is summed from precomputed parts. Anything else
    (full-width digits, spaces, a lower-case x, a wrong length) returns None and goes through
    validate_id_number, which normalises it or gives the reason.
    """

    def __init__(self) -> None:
        self.today = date.today()
        # Birth date (YYYYMMDD) → its check-digit sum; only valid dates are kept (bounded).
        self.dates: dict[str, int] = {}
        self.p1, self.p2, self.p3 = ID_PART_SUMS

    def _date_sum(self, ymd: str) -> int | None:
        try:
            born = date(int(ymd[:4]), int(ymd[4:6]), int(ymd[6:]))
        except ValueError:
            return None
        if born.year < 1900 or born > self.today:
            return None
        total = self.dates[ymd] = weighted_sum(ymd, 6)
        return total

    def valid(self, raw: str) -> bool:
        """True when `raw` is certainly a valid, already normalised ID number."""
        if len(raw) != 18 or not raw.isascii() or not raw[:17].isdigit():
            return False
        ymd = raw[6:14]
        day = self.dates.get(ymd)
        if day is None and (day := self._date_sum(ymd)) is None:
            return False
        total = self.p1[raw[:3]] + self.p2[raw[3:6]] + day + self.p3[raw[14:17]]
        return ID_CHECK[total % 11] == raw[17]


class UnitValidator:
    """Checks one unit row and turns it into a staging tuple (ID number hashed, never kept)."""

    def __init__(self, sheet: Sheet, sheet_idx: int, known_projects: set[str]) -> None:
        self.sheet = sheet
        self.sheet_idx = sheet_idx
        self.known = known_projects
        self.pick = operator.itemgetter(*(sheet.columns[c] for c in UNIT_COLUMNS))
        self.width = max(sheet.columns.values()) + 1
        self.ids = IdChecker()

    def __call__(
        self, seq: int, number: int, cells: tuple[str, ...], errors: Errors
    ) -> tuple[Any, ...] | None:
        """The staging row; errors are added to `errors` (the row is then staged keys-only)."""
        if len(cells) < self.width:
            cells = cells + ("",) * (self.width - len(cells))
        code, building, unit, room, owner, id_raw, status_text = self.pick(cells)
        b, u, r = map(cached_normalize_part, (building, unit, room))
        status = TRANSFER_STATUSES.get(status_text)
        id_hash = id_last4 = id_error = None
        if id_raw:
            if self.ids.valid(id_raw):
                id_hash, id_last4 = hash_id_number(id_raw), id_raw[-4:]
            else:
                try:
                    id_number = validate_id_number(id_raw)
                except ValueError as exc:
                    id_error = _id_reason(id_raw, exc)  # the reason never quotes the number
                else:
                    id_hash, id_last4 = hash_id_number(id_number), id_number[-4:]
        if (
            code in self.known
            and b
            and r
            and status is not None
            and id_error is None
            and len(b) <= 32
            and len(u) <= 32
            and len(r) <= 32
            and len(owner) <= 64
        ):
            return (seq, self.sheet_idx, number, code, b, u, r, owner, id_hash, id_last4, status)
        return self._refuse(seq, number, code, (building, unit, room), (b, u, r), owner,
                            id_error, status_text, status, errors)  # fmt: skip

    def _refuse(
        self,
        seq: int,
        number: int,
        code: str,
        home: tuple[str, str, str],
        parts: tuple[str, str, str],
        owner: str,
        id_error: str | None,
        status_text: str,
        status: str | None,
        errors: Errors,
    ) -> tuple[Any, ...] | None:
        """Report a bad row's reasons; its keys-only staging row, if its home is usable."""
        sheet = self.sheet.name
        b, u, r = parts
        # `home` is as typed: what staff search the sheet for.
        if not code:
            errors.add(sheet, number, "项目编号", "项目编号不能为空", home)
        elif code not in self.known:
            reason = f"项目编号“{code}”不在项目表中，数据库里也没有这个项目"
            errors.add(sheet, number, "项目编号", reason, home)
        for col, value, limit in (("幢号", b, 32), ("单元", u, 32), ("房号", r, 32)):
            if not value and col != "单元":
                errors.add(sheet, number, col, f"{col}不能为空", home)
            elif len(value) > limit:
                errors.add(sheet, number, col, f"{col}太长（最多{limit}个字符）", home)
        if len(owner) > 64:
            errors.add(sheet, number, "业主姓名", "业主姓名太长（最多64个字符）", home)
        if id_error is not None:
            errors.add(sheet, number, "身份证号", id_error, home)
        if status is None:
            shown = f"“{status_text}”" if status_text else "空"
            reason = f"转移登记只能填“已办结”“办理中”或“未办理”，不能是{shown}"
            errors.add(sheet, number, "转移登记", reason, home)
        if code and b and r and max(len(code), len(b), len(u), len(r)) <= 32:
            # Staged only so that a later copy of this home is still reported as a duplicate;
            # with any error nothing is merged.
            return (seq, self.sheet_idx, number, code, b, u, r, "", None, None, "")
        return None
