"""Ledger command line: `python -m app.ledger.cli import FILE` and `... load-demo`.

Both bring the database to the latest migration first, so a fresh SQLite file works. Output
is Chinese for staff and never shows names or ID numbers.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import unicodedata
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import func, select

from app.core.config import API_DIR
from app.core.database import SessionLocal, engine, session_scope
from app.ledger.reader import RowError
from app.ledger.service import ImportReport, LedgerValidationError, import_ledger
from app.status.models import Project

DEMO_DIR = Path(__file__).resolve().parent / "demo_data"
DEMO_FILES = (DEMO_DIR / "projects.csv", DEMO_DIR / "units.csv")


def upgrade_database() -> None:
    """`alembic upgrade head` on the configured database."""
    cfg = Config(str(API_DIR / "alembic.ini"))
    cfg.set_main_option("script_location", str(API_DIR / "alembic"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(width - _width(text), 0)


def format_errors(errors: list[RowError]) -> str:
    """The bad rows as an aligned table: 工作表, 行号, 房屋 (幢号/单元/房号 of a units row), 列,
    原因."""
    rows = [("工作表", "行号", "房屋", "列", "原因")]
    rows += [
        (e.sheet, str(e.row) if e.row else "-", e.home or "-", e.column or "-", e.reason)
        for e in errors
    ]
    widths = [max(_width(r[i]) for r in rows) for i in range(4)]
    return "\n".join(
        "  ".join(_pad(cell, widths[i]) for i, cell in enumerate(r[:4])) + "  " + r[4] for r in rows
    )


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in some containers
        return "cli"


def _print_report(report: ImportReport) -> None:
    print("导入完成（" + "，".join(report.sheets) + "）")
    print(report.summary_zh())
    if not report.changed:
        print("台账与数据库一致，没有任何改动。")


def cmd_import(path: Path) -> int:
    """Import one ledger file; 0 on success, 1 when rows are bad (nothing imported)."""
    upgrade_database()
    from app.ledger.jobs import import_sources

    try:
        # On SQLite the database's write lock is taken only for the final write (a running
        # api keeps taking petitions meanwhile).
        report = import_sources([path], engine=engine, actor=_actor(), progress=True)
    except LedgerValidationError as exc:
        print(f"台账有 {exc.total} 处错误，未导入任何数据：", file=sys.stderr)
        print(format_errors(exc.errors), file=sys.stderr)
        if exc.total > len(exc.errors):
            print(f"……另有 {exc.total - len(exc.errors)} 处错误未列出。", file=sys.stderr)
        return 1
    _print_report(report)
    return 0


def cmd_load_demo() -> int:
    """Import the shipped demo ledger, but only into a database without projects."""
    upgrade_database()
    with SessionLocal() as db:
        count = db.scalar(select(func.count()).select_from(Project)) or 0
    if count:
        print(f"数据库中已有 {count} 个项目，跳过演示台账。")
        return 0
    missing = [p.name for p in DEMO_FILES if not p.is_file()]
    if missing:
        print(f"找不到演示台账文件：{'、'.join(missing)}", file=sys.stderr)
        return 1
    try:
        with session_scope() as db:
            report = import_ledger(list(DEMO_FILES), db=db, actor="demo", progress=False)
    except LedgerValidationError as exc:
        print("演示台账有错误，未导入：", file=sys.stderr)
        print(format_errors(exc.errors), file=sys.stderr)
        return 1
    print(
        f"已载入演示台账：{report.projects_created} 个项目，{report.units_created} 套房屋，"
        f"{report.blockers_opened} 个卡点。"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the subcommand."""
    parser = argparse.ArgumentParser(prog="python -m app.ledger.cli", description="台账导入")
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="导入一个台账文件（CSV 或 XLSX）")
    imp.add_argument("file", type=Path)
    sub.add_parser("load-demo", help="向空数据库载入演示台账")
    args = parser.parse_args(argv)
    if args.command == "import":
        if not args.file.is_file():
            print(f"文件不存在：{args.file}", file=sys.stderr)
            return 2
        return cmd_import(args.file)
    return cmd_load_demo()


if __name__ == "__main__":
    sys.exit(main())
