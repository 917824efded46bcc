"""The ledger template workbook staff download from the ledger page (台账模板).

Its sheets are built from the importer's own definitions: the headers are the reader's
PROJECT_COLUMNS and UNIT_COLUMNS, the allowed values those the row checks accept
(INITIAL_REGISTRATION, TRANSFER_STATUSES), the blocker codes and departments the policy
catalogue's. The example rows pass the import as they are (a test imports the download), and
the 说明 sheet starts with the reader's NOTES_MARKER so that the import skips it. The example
people are obviously made up (示例业主, an ID number born 1900-01-01).
"""

from __future__ import annotations

import io
from datetime import date
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from app.ledger.reader import NOTES_MARKER, PROJECT_COLUMNS, SHEET_LABELS, UNIT_COLUMNS
from app.ledger.service import INITIAL_REGISTRATION
from app.policy.catalogue import Catalogue, get_catalogue
from app.status.idcard import check_digit
from app.status.models import TRANSFER_STATUSES

FILENAME = "台账模板.xlsx"
MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
NOTES_SHEET = "说明"
# Rows of the two data sheets that offer the drop-down lists of allowed values.
_VALIDATED_ROWS = 1000
_HEADER_FILL = PatternFill("solid", fgColor="DDE7F3")
_BOLD = Font(bold=True)


def _or(values: list[str]) -> str:
    return "或".join(f"“{v}”" for v in values)


# (required, what to type) per column; every column of the reader must be here (checked).
PROJECT_HELP: dict[str, tuple[bool, str]] = {
    "项目编号": (True, "项目的唯一编号，最多32个字符；房屋表用它指向项目。重新导入时按编号更新"),
    "项目名称": (True, "楼盘或小区名称，最多128个字"),
    "别名": (False, "群众常用的其他叫法，多个用顿号“、”隔开"),
    "区县": (False, "所在区县或乡镇，最多64个字"),
    "地址": (False, "项目地址，最多256个字"),
    "开发企业": (False, "开发企业全称，最多128个字"),
    "总套数": (True, "不小于0的整数"),
    "首次登记": (True, "只能填" + _or(list(INITIAL_REGISTRATION))),
    "卡点": (
        False,
        "卡点代码，多个用英文分号“;”隔开，见下方“卡点代码”表；没有卡点留空。"
        "重新导入时，文件里没有的卡点视为已化解",
    ),
    "卡点说明": (
        False,
        "每个卡点的具体情况：一条说明适用于全部卡点，或按卡点顺序用“;”隔开、条数与卡点相同",
    ),
    "责任单位": (
        False,
        "填单位名称（见下方“责任单位”表）：一个单位适用于全部卡点，或按卡点顺序用“;”隔开；"
        "留空表示按卡点的默认责任单位",
    ),
    "预计化解日期": (False, "YYYY-MM-DD，例如 2027-06-30；不确定可留空"),
}
UNIT_HELP: dict[str, tuple[bool, str]] = {
    "项目编号": (True, "项目表中（或系统里已有）的项目编号"),
    "幢号": (True, "楼栋，例如 1号楼、3幢、A座，最多32个字符"),
    "单元": (False, "例如 2单元；没有单元留空"),
    "房号": (True, "例如 501、501室；同一项目内幢号、单元、房号不能重复"),
    "业主姓名": (False, "最多64个字"),
    "身份证号": (
        False,
        "18位身份证号（会校验出生日期和校验位），只保存加密摘要和后四位。"
        "请把本列设为“文本”格式，否则表格软件会把它变成科学计数法",
    ),
    "转移登记": (True, "只能填" + _or(list(TRANSFER_STATUSES))),
}


def _example_id() -> str:
    """An ID number that passes the checks and is plainly nobody's (region 99, born 1900)."""
    first17 = "990101" + "19000101" + "001"  # region 99: no real place
    return first17 + check_digit(first17)


def _examples(cat: Catalogue) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Example rows (column → value) for the two data sheets, valid for the importer."""
    # Two blockers owned by different departments, to show the `;`-separated lists.
    first = next(iter(cat.blockers.values()))
    owner = first.default_department
    other = next((b for b in cat.blockers.values() if b.default_department != owner), first)
    blockers = [first, other] if other is not first else [first]
    expected = date(date.today().year + 1, 6, 30).isoformat()
    projects = [
        {
            "项目编号": "SL-001",
            "项目名称": "示例花园（示例，导入前请删除）",
            "别名": "示例小区、示例新村",
            "区县": "示例镇",
            "地址": "示例县示例路1号",
            "开发企业": "示例置业有限公司",
            "总套数": 2,
            "首次登记": "未完成",
            "卡点": ";".join(b.code for b in blockers),
            "卡点说明": ";".join(f"示例说明：{b.name}" for b in blockers),
            "责任单位": ";".join(cat.default_department(b.code).name for b in blockers),
            "预计化解日期": expected,
        },
        {
            "项目编号": "SL-002",
            "项目名称": "示例家园（示例，导入前请删除）",
            "别名": "",
            "区县": "示例镇",
            "地址": "示例县示例路2号",
            "开发企业": "示例房地产开发有限公司",
            "总套数": 1,
            "首次登记": "已完成",
            "卡点": "",
            "卡点说明": "",
            "责任单位": "",
            "预计化解日期": "",
        },
    ]
    units = [
        {
            "项目编号": "SL-001",
            "幢号": "1号楼",
            "单元": "1单元",
            "房号": "101",
            "业主姓名": "示例业主甲",
            "身份证号": _example_id(),
            "转移登记": "未办理",
        },
        {
            "项目编号": "SL-002",
            "幢号": "2号楼",
            "单元": "",
            "房号": "201",
            "业主姓名": "示例业主乙",
            "身份证号": "",
            "转移登记": "办理中",
        },
    ]
    return projects, units


def _text_width(value: Any) -> int:
    text = str(value)
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)


def _header(ws: Worksheet, headers: tuple[str, ...] | list[str]) -> None:
    ws.append(list(headers))
    for cell in ws[1]:
        cell.font, cell.fill = _BOLD, _HEADER_FILL
    ws.freeze_panes = "A2"


def _widths(ws: Worksheet, cap: int = 60) -> None:
    widths: dict[int, int] = {}
    for row in ws.iter_rows():
        for cell in row:
            if cell.value is not None:
                col = cell.column
                widths[col] = max(widths.get(col, 0), _text_width(cell.value))
    for col, width in widths.items():
        ws.column_dimensions[get_column_letter(col)].width = min(max(width + 2, 8), cap)


def _list_validation(
    ws: Worksheet, columns: tuple[str, ...], column: str, values: list[str]
) -> None:
    letter = get_column_letter(columns.index(column) + 1)
    check = DataValidation(type="list", formula1='"' + ",".join(values) + '"', allow_blank=False)
    check.error = "只能填：" + "、".join(values)
    check.errorTitle = column
    check.add(f"{letter}2:{letter}{_VALIDATED_ROWS}")
    ws.add_data_validation(check)


def _data_sheet(
    ws: Worksheet, columns: tuple[str, ...], rows: list[dict[str, Any]], help: dict[str, Any]
) -> None:
    missing = [c for c in columns if c not in help]
    if missing:  # a column added to the reader must be explained here too
        raise RuntimeError(f"template: no help text for {missing}")
    _header(ws, columns)
    for row in rows:
        ws.append([row.get(c, "") for c in columns])
    if "身份证号" in columns:  # text, or Excel turns 18 digits into 1.1E+17
        letter = get_column_letter(columns.index("身份证号") + 1)
        for number in range(2, _VALIDATED_ROWS + 1):
            ws[f"{letter}{number}"].number_format = "@"
    _widths(ws, cap=40)


def _notes_sheet(ws: Worksheet, cat: Catalogue) -> None:
    _header(ws, [NOTES_MARKER, "列名", "必填", "填写要求"])
    for kind, columns, help in (
        ("projects", PROJECT_COLUMNS, PROJECT_HELP),
        ("units", UNIT_COLUMNS, UNIT_HELP),
    ):
        for column in columns:
            required, text = help[column]
            ws.append([SHEET_LABELS[kind], column, "是" if required else "", text])
    ws.append([])
    ws.append(
        [
            "其他",
            "",
            "",
            "工作表按表头识别，名称可以改；也可以把每张表另存为一个 CSV 文件（UTF-8 或 GBK）。"
            "只要有一行出错，整份台账一行也不导入，错误清单列出工作表、行号、列和原因。",
        ]
    )
    ws.append(["", "", "", "示例行（示例花园、示例家园）只用于说明格式，导入前请删除。"])
    ws.append([])
    start = ws.max_row + 1
    ws.append(["卡点代码", "代码", "默认责任单位", "含义"])
    for blocker in cat.blockers.values():
        dept = cat.default_department(blocker.code).name
        ws.append(["", blocker.code, dept, blocker.name])
    ws.append([])
    ws.append(["责任单位", "名称", "", "也可填写的别名"])
    dept_row = ws.max_row
    for department in cat.departments.values():
        ws.append(["", department.name, "", "、".join(department.aliases)])
    for row in (start, dept_row):
        for cell in ws[row]:
            cell.font = _BOLD
    _widths(ws, cap=80)
    for row in ws.iter_rows(min_col=4, max_col=4):
        row[0].alignment = Alignment(wrap_text=True, vertical="top")


def build_template() -> bytes:
    """The template workbook (XLSX bytes): 项目表, 房屋表 with example rows, and 说明."""
    cat = get_catalogue()
    projects, units = _examples(cat)
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = SHEET_LABELS["projects"]
    _data_sheet(ws, PROJECT_COLUMNS, projects, PROJECT_HELP)
    _list_validation(ws, PROJECT_COLUMNS, "首次登记", list(INITIAL_REGISTRATION))
    ws = wb.create_sheet(SHEET_LABELS["units"])
    _data_sheet(ws, UNIT_COLUMNS, units, UNIT_HELP)
    _list_validation(ws, UNIT_COLUMNS, "转移登记", list(TRANSFER_STATUSES))
    _notes_sheet(wb.create_sheet(NOTES_SHEET), cat)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
