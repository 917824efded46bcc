"""Builders for small ledger files (CSV in any encoding, XLSX) used by the ledger tests."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from openpyxl import Workbook

PROJECT_HEADER = [
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
]
UNIT_HEADER = ["项目编号", "幢号", "单元", "房号", "业主姓名", "身份证号", "转移登记"]

# Made-up ID numbers with valid check digits (region 99xxxx belongs to no real place).
ID_A = "990101198001010014"
ID_B = "990101199002020024"
ID_C = "990101197503030037"


def project(**over: Any) -> dict[str, str]:
    """A valid project row as a dict keyed by header; override any column by keyword."""
    row = {
        "项目编号": "T001",
        "项目名称": "翠湖花园",
        "别名": "翠湖小区、老翠湖",
        "区县": "测试区",
        "地址": "测试路1号",
        "开发企业": "测试置业有限公司",
        "总套数": "120",
        "首次登记": "未完成",
        "卡点": "completion_acceptance;mortgage",
        "卡点说明": "竣工验收材料不全;在建工程抵押未解除",
        "责任单位": "住建局;",
        "预计化解日期": "2027-06-30",
    }
    row.update(over)
    return row


def unit(**over: Any) -> dict[str, str]:
    """A valid unit row as a dict keyed by header."""
    row = {
        "项目编号": "T001",
        "幢号": "3号楼",
        "单元": "2单元",
        "房号": "501",
        "业主姓名": "测甲",
        "身份证号": ID_A,
        "转移登记": "未办理",
    }
    row.update(over)
    return row


def projects_default() -> list[dict[str, str]]:
    """Two projects: one with two blockers, one done without blockers."""
    return [
        project(),
        project(
            **{
                "项目编号": "T002",
                "项目名称": "松柏苑",
                "别名": "",
                "首次登记": "已完成",
                "卡点": "",
                "卡点说明": "",
                "责任单位": "",
                "预计化解日期": "",
            }
        ),
    ]


def units_default() -> list[dict[str, str]]:
    """Three units over the two default projects."""
    return [
        unit(),
        unit(**{"房号": "502室", "业主姓名": "测乙", "身份证号": ID_B, "转移登记": "办理中"}),
        unit(
            **{
                "项目编号": "T002",
                "幢号": "1栋",
                "单元": "",
                "房号": "101",
                "业主姓名": "",
                "身份证号": "",
                "转移登记": "已办结",
            }
        ),
    ]


def csv_bytes(header: list[str], rows: list[dict[str, str]], encoding: str = "utf-8") -> bytes:
    """CSV text of the rows (columns in header order) in the given encoding."""
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(h, "") for h in header])
    return buf.getvalue().encode(encoding)


def write_csv(
    path: Path, header: list[str], rows: list[dict[str, str]], encoding: str = "utf-8"
) -> Path:
    """Write a CSV ledger sheet and return its path."""
    path.write_bytes(csv_bytes(header, rows, encoding))
    return path


def write_pair(
    tmp: Path,
    projects: list[dict[str, str]] | None = None,
    units: list[dict[str, str]] | None = None,
    encoding: str = "utf-8",
) -> list[Path]:
    """projects.csv and units.csv in `tmp` (defaults when not given)."""
    return [
        write_csv(tmp / "projects.csv", PROJECT_HEADER, projects or projects_default(), encoding),
        write_csv(tmp / "units.csv", UNIT_HEADER, units or units_default(), encoding),
    ]


def write_xlsx(path: Path, sheets: list[tuple[str, list[str], list[list[Any]]]]) -> Path:
    """A workbook with the given (title, header, rows) sheets, in that order."""
    wb = Workbook()
    assert wb.active is not None
    wb.remove(wb.active)
    for title, header, rows in sheets:
        ws = wb.create_sheet(title)
        ws.append(header)
        for row in rows:
            ws.append(row)
    wb.save(path)
    return path
