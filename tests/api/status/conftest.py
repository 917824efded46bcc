"""Status-area fixtures: the shipped demo ledger, imported once per test module and backend.

The ledger is imported with the real importer inside an outer transaction that is rolled back
when the module ends; each test runs in a SAVEPOINT of it, so tests cannot see each other.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from app.core.database import get_db
from app.ledger.demo import demo_paths
from app.ledger.service import import_ledger
from app.status import matching


@pytest.fixture(scope="module")
def demo_conn(engine: Engine) -> Iterator[Connection]:
    """A connection whose (never committed) transaction holds the demo ledger."""
    conn = engine.connect()
    outer = conn.begin()
    session = Session(bind=conn, join_transaction_mode="create_savepoint")
    try:
        import_ledger(demo_paths(), db=session, actor="test")
        session.commit()  # releases the session's SAVEPOINT into the outer transaction
        session.close()
        yield conn
    finally:
        outer.rollback()
        conn.close()


@pytest.fixture
def demo_db(demo_conn: Connection) -> Iterator[Session]:
    """A session over the demo ledger; whatever the test writes is rolled back."""
    session = Session(bind=demo_conn, join_transaction_mode="create_savepoint")
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def demo_client(demo_db: Session) -> Iterator[TestClient]:
    """A TestClient whose requests read and write through demo_db."""
    from app.main import app

    def _override() -> Iterator[Session]:
        yield demo_db
        demo_db.flush()

    app.dependency_overrides[get_db] = _override
    with TestClient(app) as client:
        yield client
    app.dependency_overrides.pop(get_db, None)


@pytest.fixture(scope="session")
def demo_units() -> list[dict[str, str]]:
    """The rows of the shipped units.csv (to pick real owners and ID numbers in tests)."""
    with demo_paths()[1].open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="session")
def demo_projects() -> list[dict[str, str]]:
    """The rows of the shipped projects.csv."""
    with demo_paths()[0].open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


# Committed for real (the lookup caches serve committed ledgers only): test_lookup_cache.py and
# test_lookup_fast_path.py.
@pytest.fixture
def ledger(committing_sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """The demo ledger imported and committed; the caches start empty."""
    with committing_sessions() as db:
        import_ledger(demo_paths(), db=db, actor="test")
        db.commit()
    matching.project_index.clear()
    return committing_sessions


@pytest.fixture
def http(ledger: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """A TestClient whose requests go through the real get_db, its sessions the test's
    committing ones (so that a lookup takes the way it takes in production: on PostgreSQL,
    answered on the event loop when the caches hold the answer)."""
    from app.core import database
    from app.main import app

    monkeypatch.setattr(database, "SessionLocal", ledger)
    with TestClient(app) as client:
        yield client
