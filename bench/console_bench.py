"""Console benchmark: the staff console's main pages and search with 200,000 petitions in
PostgreSQL (issue 14; 50,000 before), over the demo ledger or a province's (issue 15).

    api/.venv/bin/python bench/console_bench.py [--petitions 200000] [--requests 40]
                                                [--units 3100000] [--target-ms 500]

With --units N the ledger is N generated units (bench/gen_ledger.py, 300 per project) imported
with the project's own importer instead of the demo ledger; the petitions are spread over its
projects.

Creates a fresh schema in PostgreSQL (BENCH_POSTGRES_URL, default the test database on
127.0.0.1), migrates it with the project's Alembic migrations, loads the demo ledger, bulk-inserts
the petitions (every workflow state, one to three department assignments each, a share of them
overdue) and a clerk account, starts uvicorn on a free 127.0.0.1 port, logs in through the console
form and times each page over HTTP: the petition list (overdue first), the overdue filter, a
petition page, the search box (a resident's name, the last digits of a phone, part of a
petition number — in the console and in `GET /api/v1/staff/petitions?q=`) and the dashboard.
Prints p50/p95 per page against the 200 ms target, then stops
the server and drops the schema.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
from sqlalchemy import insert, select, text

ROOT = Path(__file__).resolve().parents[1]
API_DIR = ROOT / "api"
sys.path.insert(0, str(API_DIR))
sys.path.insert(0, str(ROOT / "bench"))

from results import record  # noqa: E402

PG_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TARGET_MS = 200.0
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN = "桂芳建国秀英志强玉兰海涛丽娟明辉淑珍文杰春梅永红"
STATES = [
    ("accepted", 0.08),
    ("assigned", 0.22),
    ("verifying", 0.12),
    ("public_notice", 0.05),
    ("supervised", 0.03),
    ("transferred", 0.05),
    ("closed", 0.45),
]
DEPARTMENTS = [
    "housing_bureau",
    "natural_resources",
    "tax_bureau",
    "civil_defense_office",
    "registry_center",
    "fire_rescue",
    "property_bureau",
]


def full_name(rng: random.Random) -> str:
    """A surname and two given characters, as the seeded residents are named."""
    return rng.choice(SURNAMES) + "".join(rng.sample(GIVEN, 2))


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def schema_url(schema: str) -> str:
    """The database URL with the bench schema first on the search path."""
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


def seed(schema: str, count: int, password: str, units: int = 0) -> list[str]:
    """Migrate the schema, load the demo ledger (or `units` generated units), insert `count`
    petitions; their numbers."""
    from alembic import command
    from alembic.config import Config

    from app.core.database import make_engine, session_scope
    from app.ledger.service import import_ledger
    from app.staff import service as staff_service
    from app.status.models import Project

    engine = make_engine(schema_url(schema))
    cfg = Config(str(API_DIR / "alembic.ini"))
    cfg.set_main_option("script_location", str(API_DIR / "alembic"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    from sqlalchemy.orm import sessionmaker

    factory = sessionmaker(bind=engine, expire_on_commit=False)
    ledger = API_DIR / "app" / "ledger" / "demo_data"
    if units:
        ledger = Path(tempfile.mkdtemp(prefix="bench-ledger-"))
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "bench" / "gen_ledger.py"),
                "--units",
                str(units),
                "--out",
                str(ledger),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    t0 = time.perf_counter()
    with session_scope(factory) as db:
        import_ledger([ledger / "projects.csv", ledger / "units.csv"], db=db, actor="bench")
        staff_service.create_user(db=db, username="bench_clerk", password=password, role="clerk")
        project_ids = list(db.scalars(select(Project.id)))
    if units:
        shutil.rmtree(ledger, ignore_errors=True)
    print(f"ledger: {len(project_ids):,} projects imported in {time.perf_counter() - t0:.1f}s")
    engine.dispose()
    return seed_petitions(schema, count)


def seed_petitions(schema: str, count: int) -> list[str]:
    """Insert `count` generated petitions with their assignments and deadlines; their numbers.

    One bulk load: the tally triggers are off for it (session_replication_role = replica; the
    generated rows are consistent by construction) and the tallies are recounted once at the end
    (app.dashboard.tally.rebuild), in the same transaction. With the row triggers on, a single
    transaction of 322,000 assignments updates each department's tally row tens of thousands of
    times, and every update walks the dead versions the same transaction left: it ran for hours.
    The application's own writes are one request's rows per transaction."""
    from app.core.database import make_engine
    from app.core.workdays import calendar
    from app.dashboard import tally
    from app.petition.models import Petition, PetitionAssignment, PetitionDue, compute_due
    from app.status.models import Project

    engine = make_engine(schema_url(schema))
    with engine.connect() as conn:
        project_ids = list(conn.scalars(select(Project.id)))
    rng = random.Random(20261123)
    cal = calendar()
    today = date(2026, 11, 23)
    states = [s for s, _ in STATES]
    weights = [w for _, w in STATES]
    numbers: list[str] = []
    per_day: dict[date, int] = {}
    start = time.perf_counter()
    petition_rows, assignment_rows, due_rows = [], [], []
    for i in range(count):
        intake = today - timedelta(days=rng.randrange(0, 540))
        per_day[intake] = per_day.get(intake, 0) + 1
        number = f"XF-{intake:%Y%m%d}-{per_day[intake]:04d}"
        status = rng.choices(states, weights)[0]
        answer_due, _ = cal.add_working_days(intake, 5)
        closure_due = cal.add_working_days(intake, 60)[0] if status != "accepted" else None
        closed = status == "closed"
        petition_rows.append(
            {
                "id": i + 1,
                "number": number,
                "status": status,
                "person_name": full_name(rng),
                "phone": f"139{rng.randrange(10**8):08d}",
                "project_id": rng.choice(project_ids),
                "address": "",
                "description": "交房多年仍未办证，请帮助协调。",
                "consent": True,
                "channel": "webchat",
                "intake_date": intake,
                "answer_due": answer_due,
                "answer_due_provisional": False,
                "closure_due": closure_due,
                "outcome": "已办证" if closed else None,
                "satisfaction": rng.choice(["satisfied", "satisfied", "unsatisfied", "unreached"])
                if closed
                else None,
                "closed_at": datetime.combine(
                    intake + timedelta(days=rng.randrange(5, 120)), datetime.min.time(), UTC
                )
                if closed
                else None,
                "created_at": datetime.combine(intake, datetime.min.time(), UTC),
                "updated_at": datetime.combine(intake, datetime.min.time(), UTC),
                "version": 1,
            }
        )
        numbers.append(number)
        pending = []
        if status != "accepted":
            for dept in rng.sample(DEPARTMENTS, rng.choice([1, 1, 2, 3])):
                answered = status in ("verifying", "public_notice", "closed") or rng.random() < 0.4
                assignment_rows.append(
                    {
                        "petition_id": i + 1,
                        "department": dept,
                        "assigned_at": datetime.combine(intake, datetime.min.time(), UTC),
                        "answer_due": answer_due,
                        "answer_due_provisional": False,
                        "answer": "已书面答复。" if answered else None,
                        "answered_at": None,
                    }
                )
                if not answered:
                    pending.append(answer_due)
        rank, due = compute_due(status, answer_due, closure_due, pending)
        due_rows.append({"petition_id": i + 1, "rank": rank, "next_due": due})
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        for chunk in range(0, len(petition_rows), 5000):
            conn.execute(insert(Petition), petition_rows[chunk : chunk + 5000])
        for chunk in range(0, len(assignment_rows), 5000):
            conn.execute(insert(PetitionAssignment), assignment_rows[chunk : chunk + 5000])
        # Core inserts bypass the ORM hook that fills petition_due, so the bench fills it.
        for chunk in range(0, len(due_rows), 5000):
            conn.execute(insert(PetitionDue), due_rows[chunk : chunk + 5000])
        conn.execute(text("SET LOCAL session_replication_role = origin"))
        tally.rebuild(conn)
        conn.execute(text("ANALYZE"))
    print(
        f"seeded {count:,} petitions and {len(assignment_rows):,} assignments "
        f"in {time.perf_counter() - start:.1f}s (schema {schema})"
    )
    engine.dispose()
    return numbers


def reseat(schema: str, password: str) -> list[str]:
    """A kept schema: the bench clerk gets this run's password; the petition numbers."""
    from sqlalchemy.orm import sessionmaker

    from app.core.database import make_engine, session_scope
    from app.petition.models import Petition
    from app.staff import service as staff_service

    engine = make_engine(schema_url(schema))
    with session_scope(sessionmaker(bind=engine)) as db:
        user = staff_service.get_by_username(db=db, username="bench_clerk")
        assert user is not None, "the kept schema has no bench clerk"
        user.password_hash = staff_service.hash_password(password)
        numbers = list(db.scalars(select(Petition.number)))
    engine.dispose()
    print(f"reusing schema {schema}: {len(numbers):,} petitions")
    return numbers


def login(client: httpx.Client, password: str) -> None:
    """Log in through the console form like a browser."""
    page = client.get("/console/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, "no login form"
    r = client.post(
        "/console/login",
        data={"username": "bench_clerk", "password": password, "csrf_token": token.group(1)},
    )
    r.raise_for_status()
    assert "/console/petitions" in str(r.url), "login failed"


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of the values, nearest-rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def main() -> int:
    """Seed, serve, measure, clean up."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--petitions", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--units", type=int, default=0, help="generated units instead of the demo")
    parser.add_argument("--target-ms", type=float, default=TARGET_MS)
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a page's p95 is over the target"
    )
    parser.add_argument(
        "--keep", metavar="SCHEMA", help="keep the seeded schema under this name, or reuse it"
    )
    args = parser.parse_args()

    from app.core.database import make_engine

    schema = args.keep or f"bench_console_{uuid.uuid4().hex[:8]}"
    admin = make_engine(PG_URL, pool_size=1, max_overflow=0)
    with admin.begin() as conn:
        reuse = bool(
            args.keep
            and conn.scalar(
                text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :s"),
                {"s": schema},
            )
        )
        seeded = reuse and bool(
            conn.scalar(text(f'SELECT EXISTS (SELECT 1 FROM "{schema}".petition)'))
        )
        if not reuse:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    password = secrets.token_urlsafe(16)
    proc = None
    try:
        if reuse and not seeded:  # a kept schema whose petitions never landed (run cut short)
            seed_petitions(schema, args.petitions)
        if reuse:
            numbers = reseat(schema, password)
        else:
            numbers = seed(schema, args.petitions, password, args.units)
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": schema_url(schema),
            "ENVIRONMENT": "test",
            "LOG_LEVEL": "WARNING",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        env.pop("REDIS_URL", None)
        proc = subprocess.Popen(
            [
                str(API_DIR / ".venv" / "bin" / "python"),
                "-m",
                "uvicorn",
                "app.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=API_DIR,
            env=env,
        )
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(base + "/healthz", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        rng = random.Random(7)
        pages = {
            "petition list (overdue first)": lambda: "/console/petitions",
            "overdue only": lambda: "/console/petitions?overdue=1",
            "open, page 20": lambda: "/console/petitions?status=open&page=20",
            "petition page": lambda: f"/console/petitions/{rng.choice(numbers)}",
            "search: a full name": lambda: f"/console/petitions?q={quote(full_name(rng))}",
            "search: two characters of a name": lambda: (
                f"/console/petitions?q={quote(rng.choice(SURNAMES) + rng.choice(GIVEN))}"
            ),
            "search: phone, last 4 digits": lambda: (
                f"/console/petitions?q={rng.randrange(10**4):04d}"
            ),
            "search: part of the number": lambda: (
                f"/console/petitions?q={rng.choice(numbers)[3:11]}"
            ),
            "staff API ?q= (a name)": lambda: (
                f"/api/v1/staff/petitions?q={quote(rng.choice(SURNAMES) + rng.choice(GIVEN))}"
            ),
            "dashboard": lambda: "/console/dashboard",
            "dashboard, a month's petitions": lambda: (
                "/console/dashboard?from=2026-10-01&to=2026-10-31"
            ),
            "staff API dashboard (JSON)": lambda: "/api/v1/staff/dashboard",
        }
        target = args.target_ms
        with admin.connect() as conn:  # what the schema holds (a kept one may differ from args)
            units, petitions = conn.execute(
                text(
                    f'SELECT (SELECT count(*) FROM "{schema}".unit), '
                    f'(SELECT count(*) FROM "{schema}".petition)'
                )
            ).one()
        load = os.getloadavg()[0]
        print(f"schema {schema}: {units:,} units, {petitions:,} petitions; load average {load:.1f}")
        figures: dict[str, object] = {"petitions": petitions, "units": units}
        failed = False
        with httpx.Client(base_url=base, timeout=30, follow_redirects=True) as client:
            login(client, password)
            header = f"{'page':<32}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}"
            print(f"\n{header}   target < {target:.0f} ms")
            for name, path in pages.items():
                for _ in range(3):
                    client.get(path()).raise_for_status()
                times = []
                for _ in range(args.requests):
                    t0 = time.perf_counter()
                    r = client.get(path())
                    times.append((time.perf_counter() - t0) * 1000)
                    r.raise_for_status()
                p50, p95 = statistics.median(times), percentile(times, 0.95)
                ok = p95 < target
                failed |= not ok
                figures[name] = {"p50_ms": round(p50, 1), "p95_ms": round(p95, 1)}
                print(
                    f"{name:<32}{p50:>9.1f}{p95:>9.1f}{max(times):>9.1f}   {'ok' if ok else 'SLOW'}"
                )
        section = "staff" if units > 100_000 else "console"
        record(section, figures, goals={"p95_ms": f"< {target:.0f} per page"})
        print(
            "\nsome pages are over the target (on a shared machine, check the load average)"
            if failed
            else "\nevery page within the target"
        )
        return 1 if failed and args.strict else 0
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if not args.keep:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
