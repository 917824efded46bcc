"""Registration rows and open blockers kept per ledger token (app.status.ledger_memo): built
once while the ledger stays the same, built again after any committed ledger change (another
connection's, a tally rebuild), and never served to a connection with uncommitted ledger writes.

These tests commit for real: the memo serves committed ledgers only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from app.dashboard import service as dashboard_service
from app.dashboard import tally
from app.ledger.demo import demo_paths
from app.ledger.service import import_ledger
from app.status import ledger_memo, ledger_version
from app.status.models import BLOCKER_OPEN, BLOCKER_RESOLVED, Blocker, Project


def _households(db: Session, code: str) -> int:
    _, projects, _ = dashboard_service.registration(db=db)
    return next(r.households for r in projects if r.key == code)


def _imported(factory: sessionmaker[Session]) -> None:
    with factory() as db:
        import_ledger(demo_paths(), db=db, actor="test")
        db.commit()
    ledger_memo.clear()


def test_rows_are_built_once_per_token_and_again_after_a_commit(
    committing_sessions: sessionmaker[Session],
) -> None:
    _imported(committing_sessions)
    with committing_sessions() as db:
        first = dashboard_service.registration(db=db)
        again = dashboard_service.registration(db=db)
        # The same rows, not a recount (and fresh lists, which a caller may sort).
        assert first[1][0] is again[1][0] and first[2] is again[2]
        assert first[1] is not again[1]
        code = first[1][0].key
        before = first[1][0].households
    # Another connection commits a ledger change: the next dashboard shows it.
    with committing_sessions.kw["bind"].begin() as conn:
        conn.execute(update(Project).where(Project.code == code).values(unit_count=before + 1000))
    with committing_sessions() as db:
        assert _households(db, code) == before + 1000
        total = dashboard_service.registration(db=db)[2]
        assert total.households == first[2].households + 1000


def test_uncommitted_ledger_writes_are_never_cached_or_served(
    committing_sessions: sessionmaker[Session],
) -> None:
    _imported(committing_sessions)
    with committing_sessions() as db:
        code = dashboard_service.registration(db=db)[1][0].key
        before = _households(db, code)
    with committing_sessions() as db:
        db.execute(update(Project).where(Project.code == code).values(unit_count=before + 7))
        assert _households(db, code) == before + 7  # its own change, built fresh
        db.rollback()
    with committing_sessions() as db:
        assert _households(db, code) == before  # the rolled-back figure was not kept


def test_open_blockers_follow_a_committed_close(
    committing_sessions: sessionmaker[Session],
) -> None:
    _imported(committing_sessions)

    def projects_of(db: Session, code: str) -> int:
        rows = dashboard_service.blocker_counts(db=db)
        return next((r["projects"] for r in rows if r["code"] == code), 0)

    with committing_sessions() as db:
        blocker = db.scalars(select(Blocker).where(Blocker.status == BLOCKER_OPEN)).first()
        assert blocker is not None
        code = blocker.code
        before = projects_of(db, code)
        assert before >= 1
        blocker.status = BLOCKER_RESOLVED
        db.commit()
    with committing_sessions() as db:
        assert projects_of(db, code) == before - 1


def test_a_tally_rebuild_moves_the_token(
    committing_sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`python -m app.dashboard.tally rebuild` recounts the unit totals: the registration rows
    kept by the token are built again."""
    _imported(committing_sessions)
    engine = committing_sessions.kw["bind"]
    with engine.connect() as conn:
        token = ledger_version.read(conn)
    monkeypatch.setattr("app.core.database.session_scope", lambda: _committed(committing_sessions))
    assert tally.main(["rebuild"]) == 0
    with engine.connect() as conn:
        assert ledger_version.read(conn) != token


@contextlib.contextmanager
def _committed(factory: sessionmaker[Session]) -> Iterator[Session]:
    with factory() as db:
        yield db
        db.commit()


def test_the_staff_api_json_splices_the_current_registration_rows(
    committing_sessions: sessionmaker[Session],
) -> None:
    from fastapi.testclient import TestClient

    from app.core.database import get_db
    from app.main import app
    from tests.api.staff.staffkit import bearer, make_user

    _imported(committing_sessions)
    with committing_sessions() as db:
        headers = bearer(db, make_user(db, "admin"))
        _, projects, total = dashboard_service.registration(db=db)
        db.commit()

    def _committing() -> Iterator[Session]:
        with committing_sessions() as db:
            yield db
            db.commit()

    app.dependency_overrides[get_db] = _committing
    try:
        with TestClient(app) as client:
            first = client.get("/api/v1/staff/dashboard", headers=headers)
            assert first.status_code == 200
            body = first.json()
            assert [p["key"] for p in body["projects"]] == [p.key for p in projects]
            assert body["total"]["households"] == total.households
            assert body["total"]["overall_rate"] == total.overall_rate
            assert {"petitions", "by_blocker", "by_department", "period"} <= body.keys()
            code = projects[0].key
            with committing_sessions.kw["bind"].begin() as conn:
                conn.execute(update(Project).where(Project.code == code).values(unit_count=9999))
            again = client.get("/api/v1/staff/dashboard", headers=headers).json()
    finally:
        app.dependency_overrides.pop(get_db, None)
    row = next(p for p in again["projects"] if p["key"] == code)
    assert row["households"] == 9999
    assert again["total"]["households"] == total.households - projects[0].households + 9999
