"""Notification latency: from a committed state change to the bubble in the web chat.

    api/.venv/bin/python bench/notify_bench.py [--count 50] [--modes sqlite,redis]

Each mode runs in a child process with its own database and queue, and a real worker
(`python -m app.worker`, as `make run` starts it). The child adds a notification and commits
(as a state change does), then polls the resident's transcript until the worker has put the
bubble there. Between two changes it pauses a random 0-1 s (seeded), so the worker is also met
idle, as real changes meet it. `sqlite`: the embedded default (SQLite database and queue).
`redis`: the production queue (Redis), with PostgreSQL when reachable; skipped without Redis.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def child(count: int) -> dict[str, Any]:
    """Run in a process whose environment names the database and the queue."""
    sys.path.insert(0, str(ROOT / "api"))
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import select

    from app.chat.models import ChatMessage
    from app.core.database import SessionLocal, engine
    from app.jobs.queue import huey
    from app.notify import service as notify_service
    from app.petition.models import Petition

    cfg = Config(str(ROOT / "api" / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "api" / "alembic"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    huey.storage.flush_all()

    worker = subprocess.Popen(
        [sys.executable, "-m", "app.worker"],
        cwd=ROOT / "api",
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rng = random.Random(11)
    latencies: list[float] = []
    try:
        key = "b" * 64
        with SessionLocal() as db:
            sender = "web-bench-" + uuid.uuid4().hex[:8]
            notify_service.touch_contact(db, sender_id=sender, channel="webchat", address=key)
            petition = Petition(
                number="XF-20261102-9001",
                status="assigned",
                person_name="张三",
                phone="13800000000",
                address="观象山庄3号楼2单元501",
                description="交房多年没有房本。",
                consent=True,
                channel="webchat",
                intake_date=date(2026, 11, 2),
                answer_due=date(2026, 11, 9),
            )
            petition.sender_id = sender  # type: ignore[attr-defined,unused-ignore]
            db.add(petition)
            db.commit()
            petition_id = petition.id
        # Warm-up: the worker has started and delivered once.
        for i in range(count + 1):
            time.sleep(rng.uniform(0.0, 1.0) if i else 0.0)
            with SessionLocal() as db:
                petition = db.get(Petition, petition_id)
                assert petition is not None
                petition.sender_id = sender  # type: ignore[attr-defined,unused-ignore]
                row = notify_service.add_notification(
                    db, petition=petition, kind="state", text=f"第{i}次进展：已转交住建局。"
                )
                assert row is not None
                start = time.perf_counter()
                db.commit()
                nid = row.id
            deadline = start + (60 if i == 0 else 20)
            while True:
                with SessionLocal() as db:
                    found = db.scalar(
                        select(ChatMessage.id).where(ChatMessage.notification_id == nid)
                    )
                if found is not None:
                    break
                if time.perf_counter() > deadline:
                    raise SystemExit(f"notification {nid} not delivered in time")
                time.sleep(0.002)
            if i:
                latencies.append((time.perf_counter() - start) * 1000)
    finally:
        worker.send_signal(signal.SIGINT)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
        huey.storage.flush_all()
    return {
        "database": engine.dialect.name,
        "count": len(latencies),
        "p50_ms": round(statistics.median(latencies), 1),
        "p95_ms": round(_percentile(latencies, 0.95), 1),
        "max_ms": round(max(latencies), 1),
        "mean_ms": round(statistics.fmean(latencies), 1),
    }


def _reachable_redis() -> bool:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception:  # noqa: BLE001 - any failure means "not here"
        return False
    return True


def _pg_schema() -> str | None:
    """A fresh schema in the PostgreSQL test database, or None when it is not reachable."""
    sys.path.insert(0, str(ROOT / "api"))
    from sqlalchemy import text

    from app.core.database import make_engine

    schema = f"nbench_{uuid.uuid4().hex[:8]}"
    try:
        admin = make_engine(PG_URL, pool_size=1, max_overflow=0)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
    except Exception:  # noqa: BLE001 - bench on SQLite then
        return None
    return schema


def _drop_schema(schema: str) -> None:
    from sqlalchemy import text

    from app.core.database import make_engine

    admin = make_engine(PG_URL, pool_size=1, max_overflow=0)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def main() -> None:
    """Run each mode in a child process and print p50/p95 per mode."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--modes", default="sqlite,redis")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.count)))
        return
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"== notification latency: committed change -> web-chat bubble, {args.count} "
        f"notifications, random 0-1 s apart; {os.cpu_count()} CPUs, load average {load} =="
    )
    status = 0
    for mode in args.modes.split(","):
        with tempfile.TemporaryDirectory(prefix="notify-bench-") as tmp:
            env = os.environ | {
                "DATABASE_URL": f"sqlite:///{tmp}/bench.db",
                "JOB_QUEUE_URL": f"sqlite:///{tmp}/jobs.db",
                "JOB_QUEUE_NAME": "notify-bench",
                "LOG_LEVEL": "WARNING",
            }
            schema = None
            if mode == "redis":
                if not _reachable_redis():
                    print(f"redis      skipped: Redis at {REDIS_URL} is not reachable")
                    continue
                env["JOB_QUEUE_URL"] = REDIS_URL
                env["JOB_QUEUE_NAME"] = f"notify-bench-{uuid.uuid4().hex[:8]}"
                schema = _pg_schema()
                if schema:
                    env["DATABASE_URL"] = f"{PG_URL}?options=-csearch_path%3D{schema}"
            try:
                out = subprocess.run(
                    [sys.executable, __file__, "--child", "--count", str(args.count)],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=600,
                )
            finally:
                if schema:
                    _drop_schema(schema)
            if out.returncode != 0:
                print(f"{mode:10s} failed: {out.stderr.strip().splitlines()[-1:]}")
                status = 1
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            queue = "SQLite" if mode == "sqlite" else "Redis"
            print(
                f"{mode:10s} queue {queue}, database {r['database']}: p50 {r['p50_ms']} ms, "
                f"p95 {r['p95_ms']} ms, max {r['max_ms']} ms, mean {r['mean_ms']} ms "
                f"({r['count']} notifications)"
            )
    sys.exit(status)


if __name__ == "__main__":
    main()
