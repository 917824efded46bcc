"""SQLite's write gate (app.core.sqlite_gate): a write waits while the gate is held exclusive
(the ledger import's final write) instead of failing on the busy timeout; real files, real
flock, real sqlite3 connections and processes."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from app.core import sqlite_gate
from app.core.database import make_engine

API_DIR = Path(__file__).resolve().parents[2] / "api"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "gate.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, who TEXT UNIQUE)")
    return path


def _engine(path: Path, busy: float = 0.05) -> Engine:
    return make_engine(
        f"sqlite:///{path}", connect_args={"check_same_thread": False, "timeout": busy}
    )


def _hold_the_write_lock(
    gate: sqlite_gate.WriteGate | None,
    path: Path,
    holding: threading.Event,
    release: threading.Event,
    log: list[str],
) -> None:
    """What the import does: the gate exclusive (when given), BEGIN IMMEDIATE, a write, wait."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=5)
    try:
        if gate is None:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t (who) VALUES ('import')")
            holding.set()
            release.wait(10)
            log.append("import committed")
            conn.execute("COMMIT")
            return
        with gate.exclusive(wait=10) as got:
            assert got
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t (who) VALUES ('import')")
            holding.set()
            release.wait(10)
            log.append("import committed")
            conn.execute("COMMIT")
    finally:
        conn.close()


def test_which_statements_are_writes() -> None:
    for sql in ("INSERT INTO t VALUES (1)", " update t set a=1", "DELETE FROM t", "REPLACE INTO t"):
        assert sqlite_gate.is_write(sql), sql
    for sql in (
        "SELECT 1",
        "  select 1",
        "PRAGMA foreign_keys",
        "SAVEPOINT sa_1",
        "RELEASE SAVEPOINT sa_1",
        "",
    ):
        assert not sqlite_gate.is_write(sql), sql


def test_no_gate_for_an_in_memory_database() -> None:
    assert sqlite_gate.gate_of(make_engine("sqlite:///:memory:")) is None
    assert sqlite_gate.gate_of(make_engine("sqlite://")) is None


def test_without_the_gate_a_short_busy_timeout_fails_the_write(db_path: Path) -> None:
    """The failure the gate exists for (also shows the next test can fail)."""
    holding, release, log = threading.Event(), threading.Event(), []
    t = threading.Thread(target=_hold_the_write_lock, args=(None, db_path, holding, release, log))
    t.start()
    try:
        assert holding.wait(5)
        conn = sqlite3.connect(db_path, timeout=0.05)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            conn.execute("INSERT INTO t (who) VALUES ('petition')")
        conn.close()
    finally:
        release.set()
        t.join()


def test_a_write_waits_at_the_gate_then_succeeds(db_path: Path) -> None:
    engine = _engine(db_path)
    gate = sqlite_gate.gate_of(engine)
    assert gate is not None
    holding, release, log = threading.Event(), threading.Event(), []
    t = threading.Thread(target=_hold_the_write_lock, args=(gate, db_path, holding, release, log))
    t.start()
    assert holding.wait(5)

    def petition() -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t (who) VALUES ('petition')"))
        log.append("petition committed")

    p = threading.Thread(target=petition)
    p.start()
    p.join(0.5)  # ten busy timeouts: without the gate it would have failed by now
    assert p.is_alive() and log == []
    release.set()
    t.join()
    p.join(5)
    assert log == ["import committed", "petition committed"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT who FROM t ORDER BY id")).scalars().all() == [
            "import",
            "petition",
        ]
    engine.dispose()


def test_reads_do_not_wait_while_the_import_writes(db_path: Path) -> None:
    engine = _engine(db_path)
    gate = sqlite_gate.gate_of(engine)
    holding, release, log = threading.Event(), threading.Event(), []
    t = threading.Thread(target=_hold_the_write_lock, args=(gate, db_path, holding, release, log))
    t.start()
    try:
        assert holding.wait(5)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 0
        assert log == []  # read while the import still held the gate
    finally:
        release.set()
        t.join()
        engine.dispose()


def test_the_import_waits_for_a_write_in_progress_and_new_writes_queue_behind_it(
    db_path: Path,
) -> None:
    """A transaction that has written holds the gate until it ends; the import waits for it;
    a write that arrives while the import waits goes after the import (the turnstile)."""
    engine = _engine(db_path, busy=5)
    gate = sqlite_gate.gate_of(engine)
    assert gate is not None
    log: list[str] = []
    first = engine.connect()
    first.execute(text("INSERT INTO t (who) VALUES ('first')"))  # holds the gate shared now

    def the_import() -> None:
        with gate.exclusive(wait=10) as got:
            log.append(f"import in {got}")
            with engine.connect() as conn:
                conn.info[sqlite_gate.OWNER] = True
                conn.execute(text("INSERT INTO t (who) VALUES ('import')"))
                conn.commit()
                conn.info.pop(sqlite_gate.OWNER)
            log.append("import done")

    imp = threading.Thread(target=the_import)
    imp.start()
    time.sleep(0.3)
    assert log == []  # waiting for `first`

    def late() -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t (who) VALUES ('late')"))
        log.append("late done")

    late_t = threading.Thread(target=late)
    late_t.start()
    time.sleep(0.3)
    assert log == []
    first.commit()
    first.close()
    imp.join(5)
    late_t.join(5)
    assert log == ["import in True", "import done", "late done"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT who FROM t ORDER BY id")).scalars().all() == [
            "first",
            "import",
            "late",
        ]
    engine.dispose()


def test_the_hold_ends_with_a_rollback_a_failed_statement_and_a_checkin(db_path: Path) -> None:
    engine = _engine(db_path)
    gate = sqlite_gate.gate_of(engine)
    assert gate is not None
    with engine.connect() as conn:
        conn.execute(text("INSERT INTO t (who) VALUES ('a')"))
        conn.rollback()
    with gate.exclusive(wait=0.5) as got:
        assert got
    with engine.connect() as conn:
        conn.execute(text("INSERT INTO t (who) VALUES ('a')"))
        conn.commit()
        with pytest.raises(IntegrityError):
            conn.execute(text("INSERT INTO t (who) VALUES ('a')"))
        conn.rollback()
    with gate.exclusive(wait=0.5) as got:
        assert got
    conn = engine.connect()
    conn.execute(text("INSERT INTO t (who) VALUES ('b')"))
    conn.close()  # given back uncommitted: rolled back, the hold goes with it
    with gate.exclusive(wait=0.5) as got:
        assert got
    engine.dispose()


def test_a_second_connection_of_the_same_thread_is_not_held_behind_a_waiting_import(
    db_path: Path,
) -> None:
    engine = _engine(db_path)
    gate = sqlite_gate.gate_of(engine)
    assert gate is not None
    first = gate.enter_shared()
    assert first is not None
    done: list[bool] = []

    def import_waits() -> None:
        with gate.exclusive(wait=3) as got:
            done.append(got)

    waiting = threading.Thread(target=import_waits)
    waiting.start()
    time.sleep(0.2)  # the import holds the turnstile and waits for `first`
    second = gate.enter_shared()  # same thread: straight to the gate, no turnstile
    assert second is not None
    gate.leave_shared(second)
    gate.leave_shared(first)
    waiting.join(5)
    assert done == [True]
    engine.dispose()


def test_a_write_gives_up_waiting_after_the_limit(
    db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = _engine(db_path)
    gate = sqlite_gate.gate_of(engine)
    assert gate is not None
    gate.wait = 0.2
    with gate.exclusive(wait=1) as got, caplog.at_level(logging.WARNING, "app.db"):
        assert got
        assert gate.enter_shared() is None
    assert "goes on without it" in caplog.text
    engine.dispose()


def test_a_killed_import_process_lets_go_of_the_gate(db_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        from app.core import sqlite_gate
        gate = sqlite_gate.WriteGate({str(db_path)!r}, 5)
        with gate.exclusive():
            print("held", flush=True)
            time.sleep(60)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(API_DIR)}
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        engine = _engine(db_path)
        gate = sqlite_gate.gate_of(engine)
        assert gate is not None
        gate.wait = 0.3
        assert gate.enter_shared() is None  # held by the other process
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        gate.wait = 5
        hold = gate.enter_shared()
        assert hold is not None
        gate.leave_shared(hold)
        engine.dispose()
    finally:
        if proc.poll() is None:
            proc.kill()
