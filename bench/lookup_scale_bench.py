"""Lookup at scale, beside its anchor: `POST /api/v1/lookup` against a FastAPI hello-world.

    api/.venv/bin/python bench/lookup_scale_bench.py [--units 300000] [--requests 3000]
        [--latency-requests 1000] [--concurrency 8] [--large-backends postgresql]
        [--pg-db bench_lookup]

For the demo ledger (SQLite, as `make run` has it) and for a generated ledger of --units homes
(bench/gen_ledger.py, imported with the project's importer into a PostgreSQL database of its
own, --pg-db or BENCH_LOOKUP_PG_DB, else `bench_lookup`, dropped afterwards; add sqlite to
--large-backends for a SQLite file too),
the bench starts two servers with the same uvicorn flags and one worker each: the real api and
bench/hello_app.py (a hello-world of the same shape: a JSON body through a pydantic model, a JSON
answer through a response model). The same raw-HTTP keep-alive client (bench/lookup_bench.py)
drives both with --concurrency connections, in alternating rounds (the best round of each
counts, so both meet the same machine), and prints requests/s of both, their ratio against the
30% goal and each server's CPU per request; then p50/p95/p99 one request at a time against the
20 ms goal. Addresses are the forms residents type (lookup_bench.build_bodies' mix), drawn from
the ledger in use. Figures go to bench/results (section "lookup").
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lookup_bench as lb  # noqa: E402
from results import record  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
API_DIR = ROOT / "api"
BENCH_DIR = ROOT / "bench"
PG_ADMIN_URL = os.environ.get(
    "BENCH_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PG_DB = os.environ.get("BENCH_LOOKUP_PG_DB", "bench_lookup")
RATIO_GOAL = 0.30
P95_GOAL_MS = 20.0
UVICORN_FLAGS = [
    "--workers",
    "1",
    "--log-level",
    "warning",
    "--no-access-log",
    "--no-proxy-headers",
]


def server_env(database_url: str) -> dict[str, str]:
    """The api's environment: the bench is one caller, so the rate limits are raised."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SERVICE_TOKEN": lb.TOKEN,
        "LOOKUP_RATE_PER_SENDER": "100000000",
        "LOOKUP_RATE_PER_IP": "100000000",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("REDIS_URL", None)
    return env


@contextmanager
def serving(app: str, cwd: Path, env: dict[str, str]) -> Iterator[tuple[int, int]]:
    """Run `uvicorn app` on a free port; yields (port, pid)."""
    port = lb.free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
         *UVICORN_FLAGS],
        cwd=cwd,
        env=env,
        start_new_session=True,
    )  # fmt: skip
    try:
        lb.wait_ready(port, proc, timeout=120)
        yield port, proc.pid
    finally:
        lb.stop_server(proc)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drive(port: int, pid: int, bodies: list[tuple[str, bytes]], concurrency: int) -> dict[str, Any]:
    """One round: every body once over `concurrency` connections."""
    cpu = cpu_seconds(pid)
    by_form, statuses, elapsed = asyncio.run(lb.run_load(port, bodies, concurrency))
    cpu = cpu_seconds(pid) - cpu
    ms = [x * 1000 for values in by_form.values() for x in values]
    bad = sum(n for status, n in statuses.items() if status != 200)
    return {
        "rps": len(ms) / elapsed,
        "p50": lb.percentile(ms, 50),
        "p95": lb.percentile(ms, 95),
        "p99": lb.percentile(ms, 99),
        "cpu_ms": 1000 * cpu / len(ms),
        "non_200": bad,
    }


def _digits(value: str) -> str:
    m = re.search(r"\d+", value)
    return m.group() if m else ""


def ledger_bodies(ledger: Path, count: int, seed: int) -> list[tuple[str, bytes]]:
    """lookup_bench.build_bodies' mix of address forms (and ID lookups), from any ledger."""
    rng = random.Random(seed)
    with (ledger / "projects.csv").open(encoding="utf-8-sig") as fh:
        projects = {r["项目编号"]: r for r in csv.DictReader(fh)}
    with (ledger / "units.csv").open(encoding="utf-8-sig") as fh:
        units = [r for r in csv.DictReader(fh) if _digits(r["幢号"]) and r["房号"].isdigit()]
    bodies: list[tuple[str, bytes]] = []
    for _ in range(count):
        u = rng.choice(units)
        p = projects[u["项目编号"]]
        name = p["项目名称"]
        aliases = [a for a in p["别名"].split("、") if a]
        b, un, r = _digits(u["幢号"]), _digits(u["单元"]), u["房号"]
        unit_part = f"{un}单元" if un else ""
        cn_unit = f"{lb.cn_number(un)}单元" if un else ""
        forms = [
            f"{name}{b}号楼{unit_part}{r}",
            f"{name}{lb.cn_number(b)}号楼{cn_unit}{lb.cn_digits(r)}",
            f"{name}{b}-{un}-{r}" if un else f"{name}{b}-{r}",
            f"我家在{name}{b}栋{unit_part}{r}室",
            f"{p['区县']}{name}{b}号楼{unit_part}{r}",
            f"{(aliases or [name])[0]}{b}号楼{unit_part}{r}",
            f"{lb.typo(name, rng)}{b}号楼{unit_part}{r}",
            name,
            f"{name}{b}号楼",
            "幸福里小区8号楼3单元1201",
        ]
        if rng.random() < 0.1 and u["身份证号"] and u["业主姓名"]:
            form = "ID + name"
            body: dict[str, str] = {"id_number": u["身份证号"], "person_name": u["业主姓名"]}
        else:
            i = rng.randrange(len(forms))
            form, body = lb.FORM_NAMES[i], {"address": forms[i]}
        bodies.append((form, json.dumps(body, ensure_ascii=False).encode()))
    return bodies


def measure(
    label: str, database_url: str, bodies: list[tuple[str, bytes]], args: argparse.Namespace
) -> dict[str, Any]:
    """Both servers side by side on one ledger: throughput rounds, then latency one at a time."""
    warm = bodies[: args.warmup]
    load = bodies[args.warmup : args.warmup + args.requests]
    single = bodies[args.warmup + args.requests :]
    with (
        serving("app.main:app", API_DIR, server_env(database_url)) as (api_port, api_pid),
        serving("hello_app:app", BENCH_DIR, server_env(database_url)) as (hello_port, hello_pid),
    ):
        cold = drive(api_port, api_pid, warm, args.concurrency)  # fills the caches
        drive(hello_port, hello_pid, warm[:500], args.concurrency)
        api_rounds, hello_rounds = [], []
        for _ in range(args.rounds):
            hello_rounds.append(drive(hello_port, hello_pid, load, args.concurrency))
            api_rounds.append(drive(api_port, api_pid, load, args.concurrency))
        api = max(api_rounds, key=lambda r: r["rps"])
        hello = max(hello_rounds, key=lambda r: r["rps"])
        latency = drive(api_port, api_pid, single, 1)
        hello_latency = drive(hello_port, hello_pid, single[:300], 1)
    ratio = api["rps"] / hello["rps"]
    print(f"== lookup on {label}: one uvicorn worker each, {args.concurrency} connections, "
          f"{len(load):,} requests per round, best of {args.rounds} rounds ==")  # fmt: skip
    print(f"  api          {api['rps']:7,.0f} req/s  p50 {api['p50']:5.1f} ms  "
          f"CPU {api['cpu_ms']:.2f} ms/request")  # fmt: skip
    print(f"  hello-world  {hello['rps']:7,.0f} req/s  p50 {hello['p50']:5.1f} ms  "
          f"CPU {hello['cpu_ms']:.2f} ms/request  (anchor)")  # fmt: skip
    verdict = "met" if ratio >= RATIO_GOAL else "NOT met"
    print(f"  ratio {ratio:.1%} of the hello-world (goal >= {RATIO_GOAL:.0%}: {verdict}); "
          f"CPU ratio {hello['cpu_ms'] / api['cpu_ms']:.1%}")  # fmt: skip
    print(f"  cold caches (first {len(warm):,} requests): {cold['rps']:,.0f} req/s")
    verdict = "met" if latency["p95"] < P95_GOAL_MS else "NOT met"
    print(f"  one at a time ({len(single):,} requests): p50 {latency['p50']:.1f} ms  "
          f"p95 {latency['p95']:.1f} ms  p99 {latency['p99']:.1f} ms "
          f"(goal p95 < {P95_GOAL_MS:.0f} ms: {verdict}); hello-world p50 "
          f"{hello_latency['p50']:.1f} ms p95 {hello_latency['p95']:.1f} ms")  # fmt: skip
    bad = api["non_200"] + latency["non_200"] + cold["non_200"]
    if bad:
        print(f"  WARNING: {bad} answers were not 200")
    return {
        "rps": round(api["rps"], 1),
        "hello_rps": round(hello["rps"], 1),
        "ratio": round(ratio, 4),
        "cpu_ms_per_request": round(api["cpu_ms"], 3),
        "hello_cpu_ms_per_request": round(hello["cpu_ms"], 3),
        "cold_rps": round(cold["rps"], 1),
        "p50_ms": round(latency["p50"], 2),
        "p95_ms": round(latency["p95"], 2),
        "p99_ms": round(latency["p99"], 2),
        "hello_p95_ms": round(hello_latency["p95"], 2),
        "non_200": bad,
        "concurrency": args.concurrency,
        "requests": len(load),
    }


def _pg_admin(sql: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


def import_child(url: str, ledger: Path) -> None:
    """(Child process) migrate the database at `url` and import the ledger with the project's
    importer, as `make import-ledger` does."""
    sys.path.insert(0, str(API_DIR))
    from alembic import command
    from alembic.config import Config
    from sqlalchemy.orm import Session

    from app.core.database import make_engine
    from app.ledger.service import import_ledger

    engine = make_engine(url)
    cfg = Config(str(API_DIR / "alembic.ini"))
    cfg.set_main_option("script_location", str(API_DIR / "alembic"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    start = time.perf_counter()
    with Session(engine) as db:
        report = import_ledger(
            [ledger / "projects.csv", ledger / "units.csv"], db=db, actor="bench", progress=False
        )
        db.commit()
    print(f"  imported {report.units_created:,} units in {time.perf_counter() - start:.0f} s")
    engine.dispose()


def large_ledger(backend: str, ledger: Path, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The generated ledger in a database of its own, measured, then dropped."""
    if backend == "postgresql":
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{args.pg_db}"
        _pg_admin(f'DROP DATABASE IF EXISTS "{args.pg_db}"')
        _pg_admin(f'CREATE DATABASE "{args.pg_db}"')
    else:
        url = f"sqlite:///{tmp / 'large.db'}"
    try:
        subprocess.run(
            [sys.executable, __file__, "--import-child", url, str(ledger)],
            check=True,
            cwd=API_DIR,
            env=server_env(url),
        )
        bodies = ledger_bodies(ledger, args.warmup + args.requests + args.latency_requests, 11)
        label = f"{args.units:,} units ({backend})"
        return measure(label, url, bodies, args)
    finally:
        if backend == "postgresql":
            _pg_admin(f'DROP DATABASE IF EXISTS "{args.pg_db}" WITH (FORCE)')


def main() -> None:
    """Demo ledger, then the generated one; print and record the figures."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--units", type=int, default=300_000)
    ap.add_argument("--requests", type=int, default=3000, help="per throughput round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2000)
    ap.add_argument("--latency-requests", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--large-backends", default="postgresql", help="comma-separated; '' skips")
    ap.add_argument("--pg-db", default=PG_DB, help="the PostgreSQL database made and dropped")
    ap.add_argument("--import-child", nargs=2, metavar=("URL", "LEDGER"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.import_child:
        import_child(args.import_child[0], Path(args.import_child[1]))
        return

    figures: dict[str, Any] = {}
    goals = {"ratio": f">= {RATIO_GOAL}", "p95_ms": f"< {P95_GOAL_MS}"}
    with tempfile.TemporaryDirectory(prefix="lookup-scale-") as tmp_name:
        tmp = Path(tmp_name)
        demo_url = f"sqlite:///{tmp / 'demo.db'}"
        subprocess.run(
            [sys.executable, "-m", "app.ledger.cli", "load-demo"],
            cwd=API_DIR,
            env=server_env(demo_url),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        demo = lb.build_bodies(args.warmup + args.requests + args.latency_requests)
        figures["demo_sqlite"] = measure("the demo ledger (SQLite, 2,852 units)", demo_url, demo,
                                         args)  # fmt: skip
        backends = [b for b in args.large_backends.split(",") if b]
        if backends:
            ledger = tmp / "ledger"
            subprocess.run(
                [sys.executable, str(BENCH_DIR / "gen_ledger.py"), "--units", str(args.units),
                 "--out", str(ledger)],
                check=True,
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
            for backend in backends:
                figures[f"units_{args.units}_{backend}"] = large_ledger(backend, ledger, tmp, args)
    print(f"machine load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"recorded in {record('lookup', figures, goals=goals)}")


if __name__ == "__main__":
    main()
