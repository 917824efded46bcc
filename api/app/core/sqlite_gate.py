"""The write gate of an SQLite database file: a long write (the ledger import's final step)
takes it alone, and every other write waits at the gate instead of on SQLite's busy timeout.

SQLite has one write lock per file. A writer that cannot get it within the busy timeout fails
("database is locked"), which the api answers with a 503 — a petition would fail because an
import was being written. With the gate, the import first waits for the writes in progress to
end, then holds the gate for its whole write transaction; a petition that starts writing
meanwhile waits at the gate (up to SQLITE_GATE_WAIT seconds, far longer than any import the
row cap allows) and then writes with the lock free. Reads never wait: WAL lets them read the
last committed state while the import writes.

The gate is two `flock` files beside the database (`<db>-gate`, `<db>-turnstile`), so it holds
between the api's and the worker's processes, and a killed process lets go of it. Writers hold
the gate shared; the import holds it exclusive. The turnstile keeps a stream of short writes
from starving the import: once the import is waiting, new writers queue behind it. A thread
that already holds the gate (a second connection inside the same request) skips the turnstile,
so it cannot deadlock against an import waiting for its first connection.

Which statements are writes is decided by their first keyword; a read that is not a SELECT
(a `WITH` query, say) only waits when an import is being written, which is harmless.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

try:
    import fcntl
except ImportError:  # pragma: no cover - not Linux/macOS: no gate, SQLite's busy timeout only
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("app.db")

# Statements that never take SQLite's write lock (the rest are treated as writes).
_READS = ("SELECT", "PRAGMA", "BEGIN", "SAVEPOINT", "RELEASE", "ROLLBACK", "EXPLAIN", "COMMIT")
_HELD = "sqlite_gate_hold"  # the connection's shared hold (connection record info)
OWNER = "sqlite_gate_owner"  # set on the connection that holds the gate exclusive
_POLL = 0.005
_POLL_MAX = 0.05


def is_write(statement: str) -> bool:
    """Whether a statement may take the write lock (its first keyword is not a read's)."""
    head = statement.lstrip()[:10].upper()
    return bool(head) and not head.startswith(_READS)


class _Hold:
    __slots__ = ("fd", "holds")

    def __init__(self, fd: int, holds: list[int]) -> None:
        self.fd, self.holds = fd, holds


class WriteGate:
    """The gate of one database file (see the module's docstring)."""

    def __init__(self, database_path: str, wait: float) -> None:
        base = os.path.realpath(database_path)
        self.gate_path = base + "-gate"
        self.turnstile_path = base + "-turnstile"
        self.wait = wait
        self._local = threading.local()

    def _open(self, path: str) -> int:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def _lock(self, fd: int, mode: int, deadline: float) -> bool:
        """flock with a deadline (polling: flock itself cannot time out)."""
        pause = _POLL
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(pause)
                pause = min(pause * 2, _POLL_MAX)

    def _holds(self) -> list[int]:
        """This thread's count of shared holds (a one-item list, so a release made by another
        thread, a connection's checkin say, decrements the right thread's count)."""
        holds: list[int] | None = getattr(self._local, "holds", None)
        if holds is None:
            holds = self._local.holds = [0]
        return holds

    def enter_shared(self) -> _Hold | None:
        """Hold the gate shared (a writer), to be given to `leave_shared`. Waits while an
        import writes; after `wait` seconds it goes on without the gate (logged)."""
        deadline = time.monotonic() + self.wait
        gate = self._open(self.gate_path)
        holds = self._holds()
        turnstile = None
        try:
            if not holds[0]:
                turnstile = self._open(self.turnstile_path)
                if not self._lock(turnstile, fcntl.LOCK_EX, deadline):
                    raise TimeoutError
            if not self._lock(gate, fcntl.LOCK_SH, deadline):
                raise TimeoutError
        except TimeoutError:
            os.close(gate)
            log.warning(
                "a write waited %.0f s for the SQLite write gate; it goes on without it",
                self.wait,
            )
            return None
        finally:
            if turnstile is not None:
                os.close(turnstile)  # closing lets go of its lock
        holds[0] += 1
        return _Hold(gate, holds)

    def leave_shared(self, hold: _Hold) -> None:
        hold.holds[0] = max(0, hold.holds[0] - 1)
        os.close(hold.fd)

    @contextmanager
    def exclusive(self, wait: float | None = None) -> Iterator[bool]:
        """Hold the gate alone (the import's final write): waits for the writes in progress to
        end while new ones queue at the turnstile. Yields False when they did not end within
        `wait` (the import then writes anyway, on SQLite's busy timeout as before)."""
        deadline = time.monotonic() + (self.wait if wait is None else wait)
        turnstile, gate = self._open(self.turnstile_path), self._open(self.gate_path)
        try:
            got = self._lock(turnstile, fcntl.LOCK_EX, deadline) and self._lock(
                gate, fcntl.LOCK_EX, deadline
            )
            if not got:
                log.warning("the SQLite write gate stayed busy; the import writes without it")
            yield got
        finally:
            os.close(gate)
            os.close(turnstile)


_GATES: weakref.WeakKeyDictionary[Engine, WriteGate] = weakref.WeakKeyDictionary()


def gate_of(engine: Engine) -> WriteGate | None:
    """The gate installed on an engine by `install` (None: not a file SQLite database)."""
    return _GATES.get(engine)


def install(engine: Engine, database_path: str, wait: float) -> WriteGate | None:
    """Make every connection of `engine` hold the gate shared from its first write until its
    transaction ends. No gate for an in-memory database or where flock does not exist."""
    if (
        fcntl is None
        or not database_path
        or database_path == ":memory:"
        or "mode=memory" in database_path
    ):
        return None
    gate = _GATES[engine] = WriteGate(database_path, wait)

    @event.listens_for(engine, "before_cursor_execute")
    def _before(
        conn: Connection, _cur: Any, statement: str, _params: Any, _ctx: Any, _many: bool
    ) -> None:
        info = conn.info
        if _HELD in info or info.get(OWNER) or not is_write(statement):
            return
        hold = gate.enter_shared()
        if hold is not None:
            info[_HELD] = hold

    def _release(info: dict[Any, Any]) -> None:
        hold = info.pop(_HELD, None)
        if hold is not None:
            gate.leave_shared(hold)

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _end(conn: Connection) -> None:
        # Fired just before the DBAPI commit/rollback: an import let in now waits the few
        # milliseconds until it has happened on its BEGIN IMMEDIATE (busy timeout).
        _release(conn.info)

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi: Any, record: Any) -> None:
        _release(record.info)  # a connection given back without commit or rollback

    @event.listens_for(engine, "invalidate")
    def _invalidate(_dbapi: Any, record: Any, _exc: Any) -> None:
        _release(record.info)

    return gate
