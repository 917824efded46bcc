"""Engine, session factory, declarative Base and the session dependency."""

from __future__ import annotations

import functools
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends
from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from app.core import sqlite_gate
from app.core.config import settings

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with a naming convention so migrations match on SQLite and PostgreSQL."""

    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> datetime:
    """Timezone-aware now in UTC (stored as UTC everywhere)."""
    return datetime.now(UTC)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets foreign keys, WAL, a busy timeout and the write gate (a
    write waits while a ledger import writes: app.core.sqlite_gate). Statement parameters are
    hidden from every error SQLAlchemy raises (they hold residents' names and phones)."""
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            # As many pooled connections as requests in flight, so that none is opened (and its
            # pragmas run) per request; the default 5 made one new connection per request at 8.
            kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        sqlite_gate.install(engine, make_url(url).database or "", settings.sqlite_gate_wait)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_timeout", settings.database_pool_timeout)
    if url.startswith("postgresql"):
        # A server that is away or silent never holds a request: connecting gives up after
        # DATABASE_CONNECT_TIMEOUT, a live connection that goes silent is given up by TCP
        # keepalives after about DATABASE_KEEPALIVE_SECONDS (and sent data unacknowledged as
        # long by tcp_user_timeout). The request then answers the Chinese 503 (app/core/errors.py).
        idle = max(1, settings.database_keepalive_seconds // 3)
        kwargs["connect_args"] = {
            "connect_timeout": settings.database_connect_timeout,
            "keepalives": 1,
            "keepalives_idle": idle,
            "keepalives_interval": idle,
            "keepalives_count": 2,
            "tcp_user_timeout": settings.database_keepalive_seconds * 1000,
            **kwargs.get("connect_args", {}),
        }
        engine = create_engine(url, **kwargs)
        _connect_args[engine] = dict(kwargs["connect_args"])
        if engine.dialect.driver == "psycopg" and not engine.dialect.is_async:
            event.listen(engine, "do_connect", _bounded_connect)
        event.listen(engine, "handle_error", _failed_ping_is_a_disconnect)
        return engine
    return create_engine(url, **kwargs)


_connect_args: weakref.WeakKeyDictionary[Engine, dict[str, Any]] = weakref.WeakKeyDictionary()


def connect_params(engine: Engine) -> dict[str, Any]:
    """The driver's keyword arguments of a PostgreSQL engine's connections: the URL's parts and
    the connect arguments make_engine gave it (timeouts, keepalives), for a connection made
    outside the pool (ledger_version's asynchronous token reads)."""
    _cargs, params = engine.dialect.create_connect_args(engine.url)
    params.pop("context", None)  # the sync dialect's adapters
    return {**params, **_connect_args.get(engine, {})}


def _failed_ping_is_a_disconnect(ctx: Any) -> None:
    """Whatever a checkout's ping raises, the connection is not usable: drop it and connect
    anew (a cut connection can fail the ping with psycopg's ProgrammingError "can't change
    'autocommit' now", which SQLAlchemy does not take for a disconnect: a 500, not the 503)."""
    if ctx.is_pre_ping:
        ctx.is_disconnect = True


def _bounded_connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
    return _bounded_connection_class().connect(*cargs, **cparams)


@functools.cache
def _bounded_connection_class() -> type[Any]:
    """A psycopg connection that waits at most DATABASE_WAIT_TIMEOUT for any answer. A server
    that is frozen (stopped, stuck on its disk) while its kernel still acknowledges never trips
    TCP keepalives; without this a request would wait for ever. The connection is then closed
    (it is in the middle of the protocol), SQLAlchemy sees it closed and drops it, the request
    answers the Chinese 503, and the pool opens a new one next time (bounded by
    DATABASE_CONNECT_TIMEOUT)."""
    import psycopg
    from psycopg import errors as pg_errors
    from psycopg.connection import _WAIT_INTERVAL

    class BoundedConnection(psycopg.Connection[Any]):
        def wait(
            self, gen: Any, interval: float = _WAIT_INTERVAL, timeout: float | None = None
        ) -> Any:
            try:
                return super().wait(
                    gen,
                    interval=interval,
                    timeout=settings.database_wait_timeout if timeout is None else timeout,
                )
            except pg_errors._WaitTimeout:
                self.pgconn.finish()
                raise

    return BoundedConnection


@functools.cache
def bounded_async_connection_class() -> type[Any]:
    """The asynchronous twin of the bounded connection (ledger_version's token reads on the
    event loop): at most DATABASE_WAIT_TIMEOUT for any answer, then closed. Not by cancelling
    the read from outside: psycopg answers a cancelled query by asking the server to cancel it
    (up to 5 s more against a server that is silent)."""
    import psycopg
    from psycopg import errors as pg_errors
    from psycopg.connection_async import _WAIT_INTERVAL

    class BoundedAsyncConnection(psycopg.AsyncConnection[Any]):
        async def wait(
            self, gen: Any, interval: float = _WAIT_INTERVAL, timeout: float | None = None
        ) -> Any:
            try:
                return await super().wait(
                    gen,
                    interval=interval,
                    timeout=settings.database_wait_timeout if timeout is None else timeout,
                )
            except pg_errors._WaitTimeout:
                self.pgconn.finish()
                raise

    return BoundedAsyncConnection


# SQLite's errors that mean "busy or unreachable", not "wrong statement" (which stays a 500).
_SQLITE_UNAVAILABLE = (
    "database is locked",
    "database table is locked",
    "unable to open",
    "disk i/o",
)


def database_unavailable(exc: BaseException) -> bool:
    """True for an error that says the database is away, silent, busy or out of connections
    (worth a retry later), not that a statement is wrong: a pool timeout, a connection SQLAlchemy
    found broken, PostgreSQL's operational errors (connection refused, reset, timed out, query
    cancelled, lock not available), SQLite's "database is locked"."""
    if isinstance(exc, SATimeoutError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError):
        return False
    if type(exc.orig).__module__.startswith("sqlite3"):
        # Also an OperationalError in sqlite3: "no such table", syntax errors.
        return str(exc.orig).lower().startswith(_SQLITE_UNAVAILABLE)
    return True


engine = make_engine(settings.database_url)
SessionLocal = sessionmaker(bind=engine, autoflush=False, expire_on_commit=False)


def get_db() -> Iterator[Session]:
    """Request-scoped session: the request boundary commits, errors roll back."""
    db = SessionLocal()
    try:
        yield db
        db.commit()
    except Exception:
        db.rollback()
        raise
    finally:
        db.close()


# scope="function": the commit happens before the response leaves, so an acknowledged
# petition is already in the database.
DbSession = Annotated[Session, Depends(get_db, scope="function")]


@contextmanager
def session_scope(factory: sessionmaker[Session] | None = None) -> Iterator[Session]:
    """Session for jobs and CLIs: commit on success, roll back on error, always close."""
    db = (factory or SessionLocal)()
    try:
        yield db
        db.commit()
    except Exception:
        db.rollback()
        raise
    finally:
        db.close()
