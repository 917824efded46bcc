"""Outbox fixtures (the conftest of notify/ and of jobs/ import them): a committed database per
backend (own SQLite file / PostgreSQL schema), a job queue of the test's own (SQLite file or a
Redis queue name), the fake WeChat channel, and the real Huey consumer running on them."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from huey import Huey
from huey.consumer import Consumer
from notify.fake_channel import FakeChannel, FakeChannelServer
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import settings
from app.core.database import Base, make_engine
from app.jobs import queue as job_queue
from app.worker import running_consumer

API_DIR = Path(__file__).resolve().parents[3] / "api"
PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@dataclass
class CommittedDb:
    """A migrated database whose sessions really commit; `url` reaches it from a subprocess."""

    url: str
    engine: Engine
    sessions: sessionmaker[Session]

    @property
    def backend(self) -> str:
        return self.engine.dialect.name


def _migrate(engine: Engine) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config(str(API_DIR / "alembic.ini"))
    cfg.set_main_option("script_location", str(API_DIR / "alembic"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def committed_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CommittedDb]:
    """Its own SQLite file, or its own schema in the real PostgreSQL (database `test`)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('outbox') / 'outbox.db'}"
        engine = make_engine(url)
        _migrate(engine)
        yield CommittedDb(url, engine, sessionmaker(bind=engine, expire_on_commit=False))
        engine.dispose()
        return
    schema = f"o_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_URL, pool_size=1, max_overflow=0)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # pragma: no cover - depends on the machine
        admin.dispose()
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {PG_URL} is required under CI: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    try:
        _migrate(engine)
        yield CommittedDb(url, engine, sessionmaker(bind=engine, expire_on_commit=False))
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def outbox_db(committed_db: CommittedDb) -> Iterator[CommittedDb]:
    """The committed database, used by jobs too; emptied after the test."""
    previous = job_queue.sessions
    job_queue.use_database(committed_db.sessions)
    yield committed_db
    job_queue.use_database(previous)
    with committed_db.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


def _restore_queue() -> None:
    job_queue.use_queue(settings.job_queue_url, settings.job_queue_name)


@pytest.fixture
def sqlite_queue(tmp_path: Path) -> Iterator[Huey]:
    """The job queue in a SQLite file of this test."""
    huey = job_queue.use_queue(f"sqlite:///{tmp_path / 'jobs.db'}", "fangben-test")
    yield huey
    _restore_queue()


@pytest.fixture
def redis_queue() -> Iterator[Huey]:
    """The job queue in the real Redis under a queue name of this test run alone."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:  # pragma: no cover - depends on the machine
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis at {REDIS_URL} is required under CI: {exc}")
        pytest.skip(f"Redis unreachable: {exc}")
    huey = job_queue.use_queue(REDIS_URL, f"fangben-test-{uuid.uuid4().hex[:10]}")
    yield huey
    huey.storage.flush_all()
    _restore_queue()


@pytest.fixture(params=["sqlite-queue", "redis-queue"])
def any_queue(request: pytest.FixtureRequest) -> Huey:
    """Both queue modes: the embedded SQLite one and the production Redis one."""
    name = request.param.replace("-", "_")
    huey: Huey = request.getfixturevalue(name)
    return huey


@pytest.fixture(scope="session")
def channel_server() -> Iterator[FakeChannelServer]:
    """One fake WeChat channel for the session (a real HTTP server)."""
    with FakeChannelServer() as server:
        yield server


@pytest.fixture
def channel(channel_server: FakeChannelServer, monkeypatch: pytest.MonkeyPatch) -> FakeChannel:
    """The fake channel, fresh for each test, reached through `settings.rasa_url`; retries
    come quickly and the template id is set."""
    monkeypatch.setattr(settings, "rasa_url", channel_server.url)
    monkeypatch.setattr(settings, "notify_retry_seconds", 0.2)
    monkeypatch.setattr(settings, "wechat_template_id", "TPL-TEST")
    channel_server.fake.reset()
    return channel_server.fake


@pytest.fixture
def worker(outbox_db: CommittedDb, sqlite_queue: Huey) -> Iterator[Consumer]:
    """The real Huey consumer (2 worker threads and the scheduler) on the SQLite queue."""
    with running_consumer() as consumer:
        yield consumer
