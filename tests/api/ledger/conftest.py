"""Ledger tests: the committed databases, job queue and real consumer of tests/api/notify, and a
client whose requests use that committed database (uploads are imported by the worker)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from notify.outbox_fixtures import (  # noqa: F401
    CommittedDb,
    committed_db,
    outbox_db,
    sqlite_queue,
    worker,
)
from sqlalchemy.orm import Session

from app.core.config import settings
from app.core.database import get_db


@pytest.fixture
def upload_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """LEDGER_UPLOAD_DIR of this test."""
    folder = tmp_path / "ledger-uploads"
    monkeypatch.setattr(settings, "ledger_upload_dir", folder)
    return folder


@pytest.fixture
def live_client(  # noqa: F811 - pytest fixtures by name
    outbox_db: CommittedDb,  # noqa: F811
    sqlite_queue: object,  # noqa: F811
    upload_dir: Path,
) -> Iterator[TestClient]:
    """TestClient whose requests commit to the committed database the worker reads."""
    from app.main import app

    def _override() -> Iterator[Session]:
        db = outbox_db.sessions()
        try:
            yield db
            db.commit()
        except Exception:
            db.rollback()
            raise
        finally:
            db.close()

    app.dependency_overrides[get_db] = _override
    with TestClient(app) as c:
        yield c
    app.dependency_overrides.pop(get_db, None)
