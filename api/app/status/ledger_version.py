"""One token in the database that changes whenever the ledger (projects, blockers, units) does.

Lookups keep the project index, each project's status and its homes in process memory and read
only this token per request (one primary-key row): a different token means the ledger changed,
in this process or in any other one on the same database, and the caches are built again.

The token is written by every writer without it having to know: an engine listener marks a
connection whose statements write to a ledger table (ORM flushes, the importer's SQL, a
cascade delete), and just before that connection commits, a new random token is written in the
same transaction, so it is visible exactly when the change is. Written at commit, not at the
first write, so that a long import never holds the token's row lock against a clerk's edit.

A connection that wrote ledger rows it has not committed yet (tests inside an outer transaction,
a request that edits and then looks up) sees data the token does not describe: `dirty` tells,
and the lookup then reads without the shared caches.

On PostgreSQL (psycopg) a lookup whose session holds no connection yet reads the token with
`read_direct`: one statement on a driver connection of its own in autocommit, kept for this read
alone (no pool checkout, ping, BEGIN or COMMIT: one round trip instead of four). A lookup first
reads it on the event loop (`read_on_loop`, `fetch_on_loop`: on PostgreSQL the same way on an
asynchronous connection, on SQLite on a file connection that never waits) and is answered there
when the caches hold everything it needs (no worker thread, no session).
It is still read on every lookup, so a lookup answers from the database's state, and a database
that is away answers the Chinese 503 like any other query.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import uuid
import weakref
from typing import Any

from sqlalchemy import Integer, String, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.pool import Pool

from app.core.config import settings
from app.core.database import Base, bounded_async_connection_class, connect_params

TABLE = "ledger_version"
_DIRTY = "ledger_dirty"
_TABLES: set[str] = set()
_WRITE: re.Pattern[str] | None = None
_READ = f"SELECT token FROM {TABLE} WHERE id = 1"


class LedgerVersion(Base):
    """The one row (id 1) whose token changes with every committed ledger change."""

    __tablename__ = TABLE

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(32))


def watch(*tables: str) -> None:
    """Count writes to these tables as ledger changes (status.models names its tables)."""
    global _WRITE
    _TABLES.update(tables)
    names = "|".join(sorted(re.escape(t) for t in _TABLES))
    _WRITE = re.compile(
        rf"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?)\s+"
        rf"(?:\w+\.)?\"?(?:{names})\"?(?![\w\"])",
        re.IGNORECASE,
    )


def is_ledger_write(statement: str) -> bool:
    """Whether an SQL statement writes to a watched ledger table."""
    return _WRITE is not None and _WRITE.search(statement) is not None


def new_token() -> str:
    """A fresh random token (random, not a counter: a rolled-back bump can never come back as
    the token of another state)."""
    return uuid.uuid4().hex


def dirty(conn: Connection) -> bool:
    """True while this connection has ledger writes it has not committed."""
    return bool(conn.info.get(_DIRTY))


def mark_dirty(conn: Connection) -> None:
    """Count this connection's transaction as a ledger change (writes the listener cannot see,
    e.g. a driver-level COPY straight into a ledger table)."""
    conn.info[_DIRTY] = True


def read(conn: Connection) -> str | None:
    """The current token (None before the first ledger change of a database made without the
    migrations' first row)."""
    # Straight on the driver's cursor: the statement layer cost more than the read itself. A
    # driver error is asked again through SQLAlchemy, which raises it as its own (a cut
    # connection then answers the Chinese 503 like any other query, and leaves the pool).
    try:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(_READ)
            row = cursor.fetchone()
        finally:
            cursor.close()
        value = None if row is None else row[0]
    except Exception:  # noqa: BLE001 - raised again, wrapped, by the same read below
        value = conn.exec_driver_sql(_READ).scalar()
    return None if value is None else str(value)


def direct_reads(engine: Engine) -> bool:
    """Whether `read_direct` serves this engine (PostgreSQL through psycopg, not async)."""
    dialect = engine.dialect
    return dialect.name == "postgresql" and dialect.driver == "psycopg" and not dialect.is_async


def loop_reads(engine: Engine) -> bool:
    """Whether `fetch_on_loop` serves this engine: PostgreSQL through psycopg (asynchronous
    connections) or an SQLite file (a local read: WAL never makes a reader wait for a writer)."""
    if engine.dialect.name == "sqlite":
        return engine.dialect.driver == "pysqlite" and engine.url.database not in (
            None,
            "",
            ":memory:",
        )
    return direct_reads(engine)


class _Reader:
    """Driver connections of one engine in autocommit, each used by one thread at a time for
    the token read. Made from the engine's own pool (its connect arguments and timeouts, then
    detached from it); at most `keep` are kept idle; closed when the engine is disposed."""

    def __init__(self, engine: Engine, keep: int) -> None:
        self._engine = weakref.ref(engine)
        self._keep = keep
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def take(self) -> tuple[Any, bool]:
        """(driver connection, whether it served a read before)."""
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's connections are not ours
                self._idle, self._pid = [], os.getpid()
            if self._idle:
                return self._idle.pop(), True
        return self.fresh(), False

    def fresh(self) -> Any:
        """A new connection (a connect failure is raised as SQLAlchemy raises it: a 503)."""
        from psycopg import errors as pg_errors

        engine = self._engine()
        assert engine is not None
        try:
            proxied = engine.raw_connection()
        except pg_errors.Error as exc:  # raw_connection passes the driver's errors up as they are
            raise _wrapped(engine, exc, None) from exc
        proxied.detach()
        dbapi = proxied.dbapi_connection
        assert dbapi is not None
        dbapi.autocommit = True
        return dbapi

    def give(self, dbapi: Any) -> None:
        """Back to the idle ones (or closed past `keep`)."""
        with self._lock:
            if self._pid == os.getpid() and len(self._idle) < self._keep:
                self._idle.append(dbapi)
                return
        _close(dbapi)

    def close_all(self, *_args: Any) -> None:
        """Close the idle connections (the engine is disposed)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for dbapi in idle:
            _close(dbapi)


def _close(dbapi: Any) -> None:
    try:
        dbapi.close()
    except Exception:  # noqa: BLE001 - a broken connection may fail to close; it is dropped
        pass


_readers: weakref.WeakKeyDictionary[Engine, _Reader] = weakref.WeakKeyDictionary()
_readers_lock = threading.Lock()


def _per_engine(registry: weakref.WeakKeyDictionary[Engine, Any], engine: Engine, make: Any) -> Any:
    """The engine's reader in `registry`, made once (keeping as many connections as the
    engine's pool), its connections closed when the engine is disposed."""
    reader = registry.get(engine)
    if reader is None:
        with _readers_lock:
            reader = registry.get(engine)
            if reader is None:
                size = getattr(engine.pool, "size", None)
                reader = make(engine, keep=size() if callable(size) else 5)
                event.listen(engine, "engine_disposed", reader.close_all)
                registry[engine] = reader
    return reader


def _reader(engine: Engine) -> _Reader:
    reader: _Reader = _per_engine(_readers, engine, _Reader)
    return reader


def _read_on(dbapi: Any) -> str | None:
    cursor = dbapi.cursor()
    try:
        cursor.execute(_READ)
        row = cursor.fetchone()
    finally:
        cursor.close()
    return None if row is None or row[0] is None else str(row[0])


def read_direct(engine: Engine) -> str | None:
    """The current token, read in autocommit on a connection kept for this read (direct_reads
    engines only). A kept connection that fails at once (closed while idle: a server restart, a
    cut) is replaced and the read asked once more, as the pool's ping would; one that timed out
    is not (the server is there but silent: a second wait would double the delay). Driver
    errors are raised as SQLAlchemy raises them, so a database that is away answers the 503."""
    from psycopg import errors as pg_errors

    reader = _reader(engine)
    dbapi, reused = reader.take()
    try:
        value = _read_on(dbapi)
    except pg_errors.Error as exc:
        _close(dbapi)
        if not (reused and isinstance(exc, pg_errors.OperationalError)) or isinstance(
            exc, pg_errors._WaitTimeout
        ):
            raise _wrapped(engine, exc, dbapi) from exc
        dbapi = reader.fresh()
        try:
            value = _read_on(dbapi)
        except pg_errors.Error as again:
            _close(dbapi)
            raise _wrapped(engine, again, dbapi) from again
    except BaseException:
        _close(dbapi)
        raise
    reader.give(dbapi)
    return value


class _AsyncReader:
    """Asynchronous driver connections of one engine in autocommit for the token read on the
    event loop: at most `keep` open (more reads at once wait for one, up to
    DATABASE_POOL_TIMEOUT, as the pool's checkouts do), kept idle between reads. A connection
    belongs to the loop it was made on: on another loop (tests start several) the idle ones are
    closed and new ones made."""

    def __init__(self, engine: Engine, keep: int) -> None:
        self._engine = weakref.ref(engine)
        self._keep = keep
        self._idle: list[Any] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots = asyncio.Semaphore(keep)

    async def acquire(self) -> asyncio.Semaphore:
        """A slot of the running loop's (a SQLAlchemy pool timeout, the 503, if none frees in
        time); release it when the read is over."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self.close_all()
            self._loop, self._slots = loop, asyncio.Semaphore(self._keep)
        slots = self._slots
        if not slots.locked():
            await slots.acquire()  # free: no wait
            return slots
        try:
            async with asyncio.timeout(settings.database_pool_timeout):
                await slots.acquire()
        except TimeoutError:
            raise SATimeoutError(
                f"no connection for the ledger read within {settings.database_pool_timeout} s"
            ) from None
        return slots

    def take(self) -> Any | None:
        """An idle connection (of the running loop: `acquire` first), or None."""
        return self._idle.pop() if self._idle else None

    async def fresh(self) -> Any:
        """A new connection, bounded by DATABASE_CONNECT_TIMEOUT like the pool's (a connect
        failure is raised as SQLAlchemy raises it: a 503)."""
        import psycopg

        engine = self._engine()
        assert engine is not None
        connection = bounded_async_connection_class()
        try:
            return await connection.connect(autocommit=True, **connect_params(engine))
        except psycopg.Error as exc:
            raise _wrapped(engine, exc, None) from exc

    def give(self, conn: Any) -> None:
        """Back to the idle ones (or closed past `keep`)."""
        if self._loop is asyncio.get_running_loop() and len(self._idle) < self._keep:
            self._idle.append(conn)
        else:
            _finish(conn)

    def close_all(self, *_args: Any) -> None:
        """Close the idle connections (the engine is disposed, or another loop runs)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            _finish(conn)


def _finish(conn: Any) -> None:
    # The libpq connection closed at once, without the protocol's goodbye (it may be in the
    # middle of an answer, and a closed loop cannot run an asynchronous close).
    try:
        conn.pgconn.finish()
    except Exception:  # noqa: BLE001 - a broken connection may fail to close; it is dropped
        pass


_async_readers: weakref.WeakKeyDictionary[Engine, _AsyncReader] = weakref.WeakKeyDictionary()


def _async_reader(engine: Engine) -> _AsyncReader:
    reader: _AsyncReader = _per_engine(_async_readers, engine, _AsyncReader)
    return reader


async def _fetch_on(conn: Any, statement: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    cursor = await conn.execute(statement, params or None)
    return list(await cursor.fetchall())


async def fetch_async(
    engine: Engine, statement: str, params: tuple[Any, ...] = ()
) -> list[tuple[Any, ...]]:
    """The rows of one read-only statement run in autocommit on the event loop (direct_reads
    engines only; a lookup's token read, or its token and rows in one statement), with
    `read_direct`'s rules: a kept connection that fails at once is replaced and the statement
    asked once more; one that gave no answer within DATABASE_WAIT_TIMEOUT is closed and not
    asked again; driver errors are raised as SQLAlchemy raises them (the database away: the
    Chinese 503), parameters hidden. At most the pool's size of them at once per process."""
    reader = _async_reader(engine)
    slots = await reader.acquire()
    try:
        return await _fetch(reader, engine, statement, params)
    finally:
        slots.release()


async def _fetch(
    reader: _AsyncReader, engine: Engine, statement: str, params: tuple[Any, ...]
) -> list[tuple[Any, ...]]:
    from psycopg import errors as pg_errors

    conn = reader.take()
    reused = conn is not None
    if conn is None:
        conn = await reader.fresh()
    try:
        rows = await _fetch_on(conn, statement, params)
    except pg_errors.Error as exc:
        _finish(conn)
        if not (reused and isinstance(exc, pg_errors.OperationalError)) or isinstance(
            exc, pg_errors._WaitTimeout
        ):
            raise _wrapped(engine, exc, conn, statement) from exc
        conn = await reader.fresh()
        try:
            rows = await _fetch_on(conn, statement, params)
        except pg_errors.Error as again:
            _finish(conn)
            raise _wrapped(engine, again, conn, statement) from again
    except BaseException:
        _finish(conn)  # cancelled mid-read: the connection's state is unknown
        raise
    reader.give(conn)
    return rows


# An SQLite read on the event loop never waits for a lock (its busy timeout here, in ms): a
# read that is refused goes the worker thread's way, which waits as every query does.
SQLITE_LOOP_BUSY_MS = 50


class LoopReadRefused(Exception):
    """An SQLite read on the event loop found the database busy or failing: ask in a thread."""


_sqlite_loop: weakref.WeakKeyDictionary[Engine, tuple[int, Any]] = weakref.WeakKeyDictionary()


def _sqlite_loop_connection(engine: Engine) -> Any:
    """This process's SQLite connection for reads on the event loop (made through the engine's
    pool, so with its pragmas, then detached; only the loop's thread uses it)."""
    kept = _sqlite_loop.get(engine)
    if kept is not None and kept[0] == os.getpid():
        return kept[1]
    proxied = engine.raw_connection()
    proxied.detach()
    dbapi = proxied.dbapi_connection
    assert dbapi is not None
    dbapi.execute(f"PRAGMA busy_timeout = {SQLITE_LOOP_BUSY_MS}")
    _sqlite_loop[engine] = (os.getpid(), dbapi)
    if not event.contains(engine, "engine_disposed", _close_sqlite_loop):
        event.listen(engine, "engine_disposed", _close_sqlite_loop)
    return dbapi


def _close_sqlite_loop(engine: Engine) -> None:
    kept = _sqlite_loop.pop(engine, None)
    if kept is not None:
        _close(kept[1])


def _sqlite_fetch(engine: Engine, statement: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    import sqlite3

    try:
        cursor = _sqlite_loop_connection(engine).execute(statement.replace("%s", "?"), params)
        try:
            return list(cursor.fetchall())
        finally:
            cursor.close()
    except sqlite3.Error as exc:
        _close_sqlite_loop(engine)
        raise LoopReadRefused(type(exc).__name__) from None


async def read_on_loop(engine: Engine) -> str | None:
    """The current token, read on the event loop (loop_reads engines): see fetch_on_loop."""
    rows = await fetch_on_loop(engine, _READ)
    return None if not rows or rows[0][0] is None else str(rows[0][0])


async def fetch_on_loop(
    engine: Engine, statement: str, params: tuple[Any, ...] = ()
) -> list[tuple[Any, ...]]:
    """The rows of one read-only statement (`%s` placeholders) on the event loop (loop_reads
    engines): fetch_async on PostgreSQL; on SQLite a read on a connection of its own that
    never waits (busy or failing: LoopReadRefused, and the caller asks in a thread)."""
    if engine.dialect.name == "sqlite":
        return _sqlite_fetch(engine, statement, params)
    return await fetch_async(engine, statement, params)


def _wrapped(engine: Engine, exc: Any, dbapi: Any, statement: str = _READ) -> DBAPIError:
    """The driver error as SQLAlchemy raises it (parameters hidden, disconnects marked)."""
    dialect = engine.dialect
    error = DBAPIError.instance(
        statement,
        None,
        exc,
        dialect.loaded_dbapi.Error,
        hide_parameters=True,
        dialect=dialect,
        connection_invalidated=dialect.is_disconnect(exc, dbapi, None),
    )
    assert isinstance(error, DBAPIError)
    return error


@event.listens_for(Engine, "before_cursor_execute")
def _watch_writes(
    conn: Connection, _cur: Any, statement: str, _params: Any, _ctx: Any, _many: bool
) -> None:
    if _DIRTY not in conn.info and is_ledger_write(statement):
        conn.info[_DIRTY] = True


@event.listens_for(Engine, "commit")
def _bump_before_commit(conn: Connection) -> None:
    # Fired just before the DBAPI commit: the new token goes into the same transaction. The raw
    # cursor keeps SQLAlchemy's statement events (and this module's watcher) out of it.
    if conn.invalidated or not conn.info.pop(_DIRTY, None):
        return
    token = new_token()  # hex only: safe as a literal, and the same SQL on every driver
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f"UPDATE {TABLE} SET token = '{token}' WHERE id = 1")
        if cursor.rowcount == 0:
            cursor.execute(f"INSERT INTO {TABLE} (id, token) VALUES (1, '{token}')")
    finally:
        cursor.close()


@event.listens_for(Engine, "rollback")
def _forget_on_rollback(conn: Connection) -> None:
    # A connection invalidated mid-transaction (the database cut away) has no info to read
    # (reading it raises); the pool's invalidate listener below forgets the mark instead.
    if not conn.invalidated:
        conn.info.pop(_DIRTY, None)


@event.listens_for(Pool, "reset")
def _forget_on_reset(_dbapi: Any, record: Any, _state: Any) -> None:
    record.info.pop(_DIRTY, None)  # a connection given back without commit or rollback


@event.listens_for(Pool, "invalidate")
def _forget_on_invalidate(_dbapi: Any, record: Any, _exc: Any) -> None:
    record.info.pop(_DIRTY, None)
