"""Api test fixtures: one engine per backend (SQLite and the real PostgreSQL), migrated with
Alembic, and each test inside an outer transaction rolled back at the end."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.core.database import Base, get_db, make_engine
from app.core.ratelimit import limiter

API_DIR = Path(__file__).resolve().parents[2] / "api"
PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", "postgresql"]


def migrate(engine: Engine) -> None:
    """Bring a database to the head revision with the project's own migrations."""
    cfg = Config(str(API_DIR / "alembic.ini"))
    cfg.set_main_option("script_location", str(API_DIR / "alembic"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def _postgres_engine() -> Iterator[Engine]:
    """A private schema per test session, so parallel runs on database `test` never collide."""
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_URL, pool_size=1, max_overflow=0)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # pragma: no cover - depends on the machine
        admin.dispose()
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {PG_URL} is required under CI: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    engine = make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """A migrated engine, once for SQLite and once for PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "test.db"
        eng = make_engine(f"sqlite:///{path}")
        migrate(eng)
        yield eng
        eng.dispose()
    else:
        gen = _postgres_engine()
        eng = next(gen)
        migrate(eng)
        yield eng
        gen.close()


@pytest.fixture
def backend(engine: Engine) -> str:
    """'sqlite' or 'postgresql'."""
    return engine.dialect.name


@pytest.fixture(scope="session")
def rollback_engine(engine: Engine) -> Iterator[Engine]:
    """The engine for rolled-back tests. On SQLite, pysqlite never emits the outer BEGIN, so a
    SAVEPOINT's RELEASE would commit for real: apply SQLAlchemy's documented pysqlite recipe."""
    if engine.dialect.name != "sqlite":
        yield engine
        return
    eng = make_engine(str(engine.url))

    @event.listens_for(eng, "connect")
    def _no_driver_transactions(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None

    @event.listens_for(eng, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")

    yield eng
    eng.dispose()


@pytest.fixture
def db(rollback_engine: Engine) -> Iterator[Session]:
    """A session in an outer transaction that is rolled back after the test."""
    conn = rollback_engine.connect()
    outer = conn.begin()
    session = Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()
        outer.rollback()
        conn.close()


@pytest.fixture
def committing_sessions(engine: Engine) -> Iterator[sessionmaker[Session]]:
    """Real committing sessions (for concurrency tests); every table is emptied afterwards."""
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    yield factory
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


# Middle of a one-minute window: a test's hits never straddle two windows (fixed-window counts
# would reset at the minute boundary and a test expecting a 429 would see a 200).
PINNED_NOW = 1_800_000_030.0


@pytest.fixture(autouse=True)
def _reset_rate_limits() -> Iterator[None]:
    from app.status import lookup_stats

    lookup_stats.reset()
    limiter.reset()
    limiter.clock = lambda: PINNED_NOW
    yield
    limiter.clock = time.time
    limiter.reset()


@pytest.fixture
def client(db: Session) -> Iterator[TestClient]:
    """A TestClient whose requests use the test's rolled-back session."""
    from app.main import app

    def _override() -> Iterator[Session]:
        yield db
        db.flush()

    app.dependency_overrides[get_db] = _override
    with TestClient(app) as c:
        yield c
    app.dependency_overrides.pop(get_db, None)
