"""Model registry command line.

    python -m app.modelhub.cli register-live PATH [--metrics FILE]
        The model `make train` built or found (a .tar.gz, or a folder: its newest) becomes the
        live model when the registry has none; a fingerprint already known changes nothing.
        Metrics: FILE, else bot/results/nlu_summary.json when it reports on this model file.
    python -m app.modelhub.cli list
        The registry, newest first.

Both bring the database to the latest migration first. Output is Chinese.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import Any

from app.core.config import REPO_DIR
from app.core.database import session_scope
from app.core.errors import AppError
from app.ledger.cli import upgrade_database
from app.modelhub import service

SUMMARY = REPO_DIR / "bot" / "results" / "nlu_summary.json"


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"[:64]
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "cli"


def newest_model(path: Path) -> Path:
    """`path` itself, or the newest .tar.gz inside a folder."""
    if path.is_dir():
        found = sorted(path.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise FileNotFoundError(f"{path} 里没有模型（*.tar.gz）：请先运行 make train")
        return found[-1]
    if not path.is_file():
        raise FileNotFoundError(f"找不到模型文件 {path}")
    return path


def metrics_for(model: Path, metrics_file: Path | None) -> dict[str, Any] | None:
    """The metrics to record: the given file, or `make evaluate`'s summary of this model."""
    source = metrics_file or SUMMARY
    if not source.is_file():
        return None
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    if metrics_file is None and data.get("model") != model.name:
        return None  # a report on another model
    return data


def cmd_register_live(path: Path, metrics_file: Path | None) -> int:
    """Register the start-up model; 0 on success (also when nothing changed)."""
    try:
        model = newest_model(path)
    except FileNotFoundError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    upgrade_database()
    try:
        with session_scope() as db:
            done = service.register_live(
                db, path=model, actor=_actor(), metrics=metrics_for(model, metrics_file)
            )
            row = done.model
            messages = {
                "live": f"已登记现网模型 #{row.id}（指纹 {row.fingerprint}）。",
                "promoted": f"模型 #{row.id} 已重新设为现网模型（指纹 {row.fingerprint}）。",
                "unchanged": f"模型已在登记表中（#{row.id}，{row.status_label}），无需改动。",
                "candidate": (
                    f"已有别的现网模型：{model.name} 登记为候选模型 #{row.id}，"
                    "请在工作台「模型」页比较后上线。"
                ),
            }
            print(messages[done.outcome])
    except AppError as exc:
        print(exc.message, file=sys.stderr)
        return 1
    return 0


def cmd_list() -> int:
    """Print the registry."""
    upgrade_database()
    with session_scope() as db:
        for row in service.list_models(db):
            print(f"#{row.id}\t{row.status_label}\t{row.fingerprint or '—'}\t{row.started_by}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="python -m app.modelhub.cli", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    reg = sub.add_parser("register-live", help="登记启动时的模型为现网模型（登记表为空时）")
    reg.add_argument("path", type=Path)
    reg.add_argument("--metrics", type=Path, default=None)
    sub.add_parser("list", help="列出模型登记表")
    args = parser.parse_args(argv)
    if args.command == "register-live":
        return cmd_register_live(args.path, args.metrics)
    return cmd_list()


if __name__ == "__main__":
    sys.exit(main())
