"""Ledger import benchmark: a generated 300,000-unit ledger into fresh SQLite and PostgreSQL.

    api/.venv/bin/python bench/import_bench.py [--units 300000] [--backends sqlite,postgresql]
    api/.venv/bin/python bench/import_bench.py --units 3100000 --backends postgresql --xlsx-units 0

Each backend runs in its own child process so that its peak RSS is its own. Prints unit rows/s
for the first import and for a re-import of the same files (which must change nothing). On
PostgreSQL the same child first COPYs the same units.csv into a plain table of text columns
(psycopg's copy, no checks): the anchor the import's rows/s is held to (issue 15: >= 12% of it,
peak RSS < 300 MB). The figures go to bench/results/ (bench/results.py, section "import").
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from results import record

ROOT = Path(__file__).resolve().parents[1]
# Issue 15's goals for the PostgreSQL import, beside the raw COPY anchor of the same file.
GOAL_RATIO = 0.12
GOAL_RSS_MB = 300
PG_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def raw_copy(engine: Any, units_csv: Path) -> dict[str, float]:
    """COPY the units file as it is into a plain table of text columns: rows/s (the anchor)."""
    with engine.connect() as conn:
        driver = conn.connection.driver_connection
        with driver.cursor() as cur:
            cur.execute(
                "CREATE TABLE raw_units (project_code text, building text, unit text, room text, "
                "owner_name text, id_number text, transfer_status text)"
            )
            driver.commit()
            start = time.perf_counter()
            with (
                cur.copy("COPY raw_units FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
                units_csv.open("rb") as fh,
            ):
                while chunk := fh.read(1 << 20):
                    copy.write(chunk)
            rows = cur.rowcount
            driver.commit()
            seconds = time.perf_counter() - start
            cur.execute("DROP TABLE raw_units")
            driver.commit()
    return {"rows": rows, "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds)}


def child(backend: str, ledger: Path, workdir: Path) -> dict[str, object]:
    """Import the ledger twice into a fresh database of one backend; return the figures."""
    sys.path.insert(0, str(ROOT / "api"))
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from app.core.database import make_engine
    from app.ledger.service import import_ledger

    schema = None
    if backend == "sqlite":
        url = f"sqlite:///{workdir / 'bench.db'}"
        engine = make_engine(url)
    else:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = make_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine = make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        cfg = Config(str(ROOT / "api" / "alembic.ini"))
        cfg.set_main_option("script_location", str(ROOT / "api" / "alembic"))
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        files = [ledger / "projects.csv", ledger / "units.csv"]
        # The anchor in the same child, on the same server and load, before the imports.
        anchor = raw_copy(engine, files[1]) if backend == "postgresql" else None
        rss_before = _rss_mb()
        runs = []
        # Which way each import went (app.ledger logs the bulk load's outcome).
        said: list[str] = []
        handler = logging.Handler(logging.INFO)
        handler.emit = lambda record: said.append(record.getMessage())  # type: ignore[method-assign]
        logging.getLogger("app.ledger").addHandler(handler)
        logging.getLogger("app.ledger").setLevel(logging.INFO)
        for label in ("first import", "re-import"):
            said.clear()
            start, cpu = time.perf_counter(), time.process_time()
            with Session(engine) as db:
                report = import_ledger(files, db=db, actor="bench", progress=False)
                db.commit()
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
            rows = report.units_created + report.units_updated + report.units_unchanged
            runs.append(
                {
                    "run": label,
                    "rows": rows,
                    "seconds": round(seconds, 2),
                    "cpu": round(cpu, 2),
                    "rows_per_s": round(rows / seconds),
                    "created": report.units_created,
                    "unchanged": report.units_unchanged,
                    "path": next(
                        (m for m in said if m.startswith("ledger bulk load:")), "per-row import"
                    ),
                }
            )
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT count(*) FROM unit")).scalar_one()
        return {
            "backend": backend,
            "raw_copy": anchor,
            "runs": runs,
            "units_in_db": stored,
            "rss_before_mb": round(rss_before, 1),
            "peak_rss_mb": round(_rss_mb(), 1),
        }
    finally:
        engine.dispose()
        if schema is not None:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


def xlsx_child(path: Path, workdir: Path) -> dict[str, object]:
    """Import one XLSX workbook into a fresh SQLite file; return rows/s."""
    sys.path.insert(0, str(ROOT / "api"))
    from alembic import command
    from alembic.config import Config
    from sqlalchemy.orm import Session

    from app.core.database import make_engine
    from app.ledger.service import import_ledger

    engine = make_engine(f"sqlite:///{workdir / 'xlsx.db'}")
    cfg = Config(str(ROOT / "api" / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "api" / "alembic"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    start, cpu = time.perf_counter(), time.process_time()
    with Session(engine) as db:
        report = import_ledger([path], db=db, actor="bench")
        db.commit()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    engine.dispose()
    rows = report.units_created
    return {"rows": rows, "seconds": round(seconds, 2), "cpu": round(cpu, 2)}


def main() -> None:
    """Generate the ledger once, then run each backend in a child process and print figures."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--units", type=int, default=300_000)
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--ledger", type=Path, help="existing directory with projects.csv, units.csv")
    ap.add_argument(
        "--xlsx-units", type=int, default=30_000, help="units of the XLSX run (0: skip it)"
    )
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--xlsx", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child == "xlsx":
        print(json.dumps(xlsx_child(args.xlsx, args.workdir)))
        return
    if args.child:
        print(json.dumps(child(args.child, args.ledger, args.workdir)))
        return
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as tmp:
        ledger = args.ledger
        if ledger is None:
            ledger = Path(tmp) / "ledger"
            subprocess.run(
                [
                    sys.executable,
                    str(ROOT / "bench" / "gen_ledger.py"),
                    "--units",
                    str(args.units),
                    "--out",
                    str(ledger),
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        size_mb = (ledger / "units.csv").stat().st_size / 1e6
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        figures: dict[str, Any] = {
            "units": args.units,
            "csv_mb": round(size_mb, 1),
            "load_average_before": [round(x, 2) for x in os.getloadavg()],
        }
        goals: dict[str, str] = {}
        print(
            f"== ledger import: {args.units:,} units ({size_mb:.1f} MB CSV); "
            f"{os.cpu_count()} CPUs, load average {load} =="
        )
        for backend in args.backends.split(","):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    backend,
                    "--ledger",
                    str(ledger),
                    "--workdir",
                    tmp,
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            anchor = result.get("raw_copy")
            if anchor:
                print(
                    f"{backend:10s} raw COPY     {anchor['rows']:>8,} rows in "
                    f"{anchor['seconds']:6.2f} s = {anchor['rows_per_s']:>7,} rows/s "
                    "(the same units.csv into a plain table of text columns, no checks: anchor)"
                )
            for run in result["runs"]:
                print(
                    f"{backend:10s} {run['run']:12s} {run['rows']:>8,} rows in "
                    f"{run['seconds']:6.2f} s = {run['rows_per_s']:>7,} rows/s "
                    f"(importer CPU {run['cpu']:.1f} s) "
                    f"(created {run['created']:,}, unchanged {run['unchanged']:,})"
                )
                print(f"{backend:10s}   way: {run['path']}")
            print(
                f"{backend:10s} units in db {result['units_in_db']:,}; peak RSS "
                f"{result['peak_rss_mb']} MB (before import {result['rss_before_mb']} MB)"
            )
            first, again = result["runs"]
            figures[backend] = {
                "first_import_rows_per_s": first["rows_per_s"],
                "first_import_seconds": first["seconds"],
                "first_import_cpu_s": first["cpu"],
                "reimport_rows_per_s": again["rows_per_s"],
                "reimport_seconds": again["seconds"],
                "peak_rss_mb": result["peak_rss_mb"],
            }
            if anchor:
                ratio = first["rows_per_s"] / anchor["rows_per_s"]
                rss = result["peak_rss_mb"]
                figures[backend].update(
                    raw_copy_rows_per_s=anchor["rows_per_s"], ratio_of_raw_copy=round(ratio, 4)
                )
                goals[f"{backend}.ratio_of_raw_copy"] = f">= {GOAL_RATIO}"
                goals[f"{backend}.peak_rss_mb"] = f"< {GOAL_RSS_MB}"
                print(
                    f"{backend:10s} ratio of raw COPY: {ratio:.1%} (goal >= {GOAL_RATIO:.0%}: "
                    f"{'met' if ratio >= GOAL_RATIO else 'MISSED'}); peak RSS {rss} MB "
                    f"(goal < {GOAL_RSS_MB} MB: {'met' if rss < GOAL_RSS_MB else 'MISSED'}); "
                    f"load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}"
                )
        if args.xlsx_units:
            xdir = Path(tmp) / "xlsx"
            subprocess.run(
                [sys.executable, str(ROOT / "bench" / "gen_ledger.py"), "--units",
                 str(args.xlsx_units), "--out", str(xdir), "--xlsx"],
                check=True,
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
            out = subprocess.run(
                [sys.executable, __file__, "--child", "xlsx", "--xlsx", str(xdir / "ledger.xlsx"),
                 "--workdir", tmp],
                check=True,
                capture_output=True,
                text=True,
            )  # fmt: skip
            x = json.loads(out.stdout.strip().splitlines()[-1])
            figures["xlsx"] = {"rows": x["rows"], "rows_per_s": round(x["rows"] / x["seconds"])}
            print(
                f"xlsx       one workbook {x['rows']:>8,} rows in {x['seconds']:6.2f} s = "
                f"{x['rows'] / x['seconds']:>7,.0f} rows/s (importer CPU {x['cpu']:.1f} s; "
                "openpyxl read-only, inline strings; SQLite)"
            )
        figures["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        print(f"recorded in {record('import', figures, goals=goals)}")


if __name__ == "__main__":
    main()
