"""Registry tests: a client whose requests commit like production (inside the test's outer
transaction), the registry's files in a temp folder, accounts of the roles that matter."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from staff.staffkit import bearer, make_user

from app.core.database import get_db
from app.modelhub.config import settings as hub_settings
from app.staff.models import StaffUser


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


@pytest.fixture(autouse=True)
def model_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """MODEL_CANDIDATES_DIR in the test's temp folder (never api/data/models)."""
    folder = tmp_path / "registry"
    monkeypatch.setattr(hub_settings, "model_candidates_dir", folder)
    return folder


@pytest.fixture
def users(db: Session) -> dict[str, StaffUser]:
    """One account per role."""
    made = {
        role: make_user(db, role)
        for role in ("maintainer", "admin", "clerk", "supervisor", "officer")
    }
    db.commit()
    return made


@pytest.fixture
def headers(db: Session, users: dict[str, StaffUser]) -> Callable[[str], dict[str, str]]:
    """`headers(role)` → bearer headers of that role's account."""
    cache: dict[str, dict[str, str]] = {}

    def get(role: str) -> dict[str, str]:
        if role not in cache:
            cache[role] = bearer(db, users[role])
            db.commit()
        return cache[role]

    return get


# The job queue fixtures of the outbox tests: a SQLite queue file of the test's own, or a
# Redis queue name of its own (the training queue follows the job queue's storage).
from notify.outbox_fixtures import (  # noqa: E402, F401
    committed_db,
    outbox_db,
    redis_queue,
    sqlite_queue,
)
