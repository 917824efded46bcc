"""Deadline job benchmark: `run_deadlines` over many petitions in PostgreSQL.

    api/.venv/bin/python bench/deadline_bench.py [--petitions 200000]

Seeds a fresh schema like bench/console_bench.py (demo ledger, petitions in every state, a share
of them overdue), adds a supervisor, a clerk and an officer per department, then times three
runs of the job: the first (it raises the whole overdue backlog to 督办 and reminds the
departments), the same day again (idempotent: nothing to do), and the next day (steady state).
Drops the schema at the end.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from console_bench import DEPARTMENTS, PG_URL, schema_url, seed  # noqa: E402


def main() -> int:
    """Seed, run the job three times, clean up."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--petitions", type=int, default=200_000)
    args = parser.parse_args()

    from sqlalchemy.orm import sessionmaker

    from app.core.database import make_engine
    from app.petition.deadlines import run_deadlines
    from app.staff.models import StaffUser

    schema = f"bench_deadline_{uuid.uuid4().hex[:8]}"
    admin = make_engine(PG_URL, pool_size=1, max_overflow=0)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = None
    try:
        seed(schema, args.petitions, secrets.token_urlsafe(16))
        engine = make_engine(schema_url(schema))
        factory = sessionmaker(bind=engine, expire_on_commit=False)
        with factory() as db:
            users = [StaffUser(username="bench_supervisor", role="supervisor", password_hash="x")]
            users += [
                StaffUser(username=f"bench_{d}", role="officer", department=d, password_hash="x")
                for d in DEPARTMENTS
            ]
            db.add_all(users)
            db.commit()
        today = date(2026, 11, 23)  # the seed's "today"
        for label, day in (
            ("first run (backlog)", today),
            ("same day again", today),
            ("next day", today + timedelta(days=1)),
        ):
            with factory() as db:
                start = time.perf_counter()
                run = run_deadlines(db=db, today=day)
                db.commit()
                took = time.perf_counter() - start
            print(
                f"{label:22s} {took:8.2f}s  supervised {len(run.supervised):,}  "
                f"reminders {run.reminders:,}  projects {len(run.slipped_projects)}  "
                f"conflicts {run.conflicts}"
            )
    finally:
        if engine is not None:
            engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
