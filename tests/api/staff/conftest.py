"""Staff tests: a client whose requests commit like production (inside the test's outer
transaction), so a console page that rolls back a refused change keeps earlier requests' work."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from notify.outbox_fixtures import (  # noqa: F401  (the webhook tests' committed db and queue)
    committed_db,
    outbox_db,
    sqlite_queue,
)
from sqlalchemy.orm import Session

from app.core.database import get_db


@pytest.fixture
def client(db: Session) -> Iterator[TestClient]:
    """TestClient over the rolled-back test session; each request commits its savepoint."""
    from app.main import app

    def _override() -> Iterator[Session]:
        try:
            yield db
            db.commit()
        except Exception:
            db.rollback()
            raise

    app.dependency_overrides[get_db] = _override
    with TestClient(app) as c:
        yield c
    app.dependency_overrides.pop(get_db, None)
