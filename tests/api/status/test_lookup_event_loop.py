"""Lookups answered on the event loop (issue 15): the ledger token (with an ID number's homes,
in the same statement) is read there — on PostgreSQL on an asynchronous connection kept for it,
on SQLite on a file connection that never waits — and a lookup whose answer the caches hold
needs no worker thread and no session — with the answers the
plain path gives, counted like the others, and a database that is away or silent the 503.

(A module of its own: the demo_db fixture's module-long transaction holds the importer's lock,
which the committed `ledger` imports here would wait for.)
"""

from __future__ import annotations

import asyncio
import csv
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import settings
from app.core.database import database_unavailable
from app.core.security import hash_id_number
from app.ledger.demo import demo_paths
from app.status import ledger_version, lookup_stats, lookup_views, matching
from app.status.models import Project, Unit
from tests.api.status.test_lookup_cache import _addresses, _ask, _reference
from tests.api.status.test_lookup_fast_path import away_engine, own_engine

HOME = "观象山庄3号楼2单元501"


def _postgresql_only(engine: Engine) -> None:
    if not ledger_version.direct_reads(engine):
        pytest.skip("asynchronous connections are PostgreSQL's (SQLite reads a file)")


def _threaded(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The lookups that went to a worker thread with a session (a spy on that way)."""
    calls: list[Any] = []
    real = lookup_views._lookup_in_session

    def spy(body: Any, provider: Any) -> Any:
        calls.append(body.model_dump(exclude_none=True))
        return real(body, provider)

    monkeypatch.setattr(lookup_views, "_lookup_in_session", spy)
    return calls


def test_cached_lookups_are_answered_on_the_event_loop_as_the_plain_path_answers(
    ledger: sessionmaker[Session], http: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Addresses and ID numbers asked again are answered without a worker thread or a session
    (token, and an ID's homes, read on the event loop), with the answers computed afresh; only
    the texts that name no project (answered by a query over every project) still go there."""
    assert ledger_version.loop_reads(ledger.kw["bind"])
    bodies = _addresses()
    assert sum("id_number" in b for b in bodies) >= 10
    first = [_ask(http, b).json() for b in bodies]
    threaded = _threaded(monkeypatch)
    again = [_ask(http, b).json() for b in bodies]
    assert again == first
    for body, answer in zip(bodies, again, strict=True):
        assert answer == _reference(ledger, body), body
    on_loop = [b for b in bodies if b not in threaded]
    assert len(on_loop) >= 0.8 * len(bodies)
    assert all(b in on_loop for b in bodies if "id_number" in b)  # every ID, on the loop
    for body in threaded:  # what is left needs the database: no project named in the text
        answer = first[bodies.index(body)]
        assert answer.get("message") in (matching.MSG_UNIT_ONLY, matching.MSG_NONE), body


def test_an_id_with_homes_in_two_projects_on_the_event_loop(
    ledger: sessionmaker[Session], http: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One owner, two homes in two projects: the ranked candidates, the same on the loop as in
    a thread; a wrong name answers nothing either way."""
    assert ledger_version.loop_reads(ledger.kw["bind"])
    with ledger() as db:
        owner = db.scalars(select(Unit).where(Unit.id_hash.is_not(None)).order_by(Unit.id)).first()
        assert owner is not None
        other = db.scalars(
            select(Project).where(Project.id != owner.project_id).order_by(Project.id)
        ).first()
        assert other is not None
        db.add(
            Unit(
                project_id=other.id, building="9", unit="", room="901", owner_name=owner.owner_name,
                id_hash=owner.id_hash, id_last4=owner.id_last4,
                transfer_status=owner.transfer_status,
            )
        )  # fmt: skip
        db.commit()
        name, digest = owner.owner_name, owner.id_hash
    units_csv = next(p for p in demo_paths() if p.name.startswith("units"))
    with units_csv.open(encoding="utf-8-sig") as fh:
        id_number = next(
            r["身份证号"] for r in csv.DictReader(fh)
            if r["身份证号"] and hash_id_number(r["身份证号"]) == digest
        )  # fmt: skip
    bodies = [
        {"id_number": id_number, "person_name": name},
        {"id_number": id_number, "person_name": "不是业主"},
    ]
    threaded = _threaded(monkeypatch)
    first = [_ask(http, b).json() for b in bodies]
    # No home of that ID and name: answered on the loop even before any ledger state is built.
    assert threaded == [bodies[0]]
    threaded.clear()
    again = [_ask(http, b).json() for b in bodies]  # the two projects' statuses cached now
    assert threaded == []
    assert again == first
    assert again[0]["match"] == "ambiguous" and len(again[0]["candidates"]) == 2
    assert again[1]["match"] == "none"
    for body, answer in zip(bodies, again, strict=True):
        assert answer == _reference(ledger, body)


def test_lookups_answered_on_the_event_loop_are_counted(
    ledger: sessionmaker[Session], http: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ledger_version.loop_reads(ledger.kw["bind"])

    def counted() -> int:
        with ledger() as db:
            project = db.scalar(select(Project).where(Project.code == "QS001"))
            assert project is not None
            return lookup_stats.lookups_of(db, project.id)

    monkeypatch.setattr(lookup_stats, "FLUSH_SECONDS", 3600.0)
    assert _ask(http, {"address": HOME}).json()["match"] == "unit"  # caches filled
    lookup_stats.reset()
    before = counted()
    threaded = _threaded(monkeypatch)
    monkeypatch.setattr(lookup_stats, "FLUSH_SECONDS", 0.0)
    for _ in range(3):
        assert _ask(http, {"address": HOME}).json()["match"] == "unit"
    assert threaded == []
    assert counted() == before + 3


def test_an_async_connection_the_server_dropped_is_replaced(ledger: sessionmaker[Session]) -> None:
    engine = ledger.kw["bind"]
    _postgresql_only(engine)

    async def scenario() -> tuple[Any, Any, list[int]]:
        token = await ledger_version.read_on_loop(engine)
        pids = [c.info.backend_pid for c in ledger_version._async_reader(engine)._idle]
        with engine.connect() as conn:
            for pid in pids:
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        return token, await ledger_version.read_on_loop(engine), pids

    token, again, pids = asyncio.run(scenario())
    assert token is not None and pids
    assert again == token  # asked again on a new connection


def test_an_async_read_on_a_database_that_is_away_or_silent_is_unavailable(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Away (nothing listens): the 503's error at once. Silent (no answer within
    DATABASE_WAIT_TIMEOUT; here a statement that sleeps): the same, and that connection is
    closed, not kept, nor asked a second time."""
    _postgresql_only(engine)
    away = away_engine(engine)
    try:
        with pytest.raises(OperationalError) as caught:
            asyncio.run(ledger_version.read_on_loop(away))
        assert database_unavailable(caught.value)
    finally:
        away.dispose()
    monkeypatch.setattr(settings, "database_wait_timeout", 0.3)
    started: list[float] = []

    async def silent() -> None:
        await ledger_version.read_on_loop(engine)  # one connection kept
        reader = ledger_version._async_reader(engine)
        assert len(reader._idle) == 1
        kept = reader._idle[0]
        started.append(time.monotonic())
        try:
            await ledger_version.fetch_async(engine, "SELECT pg_sleep(5)")
        finally:
            started.append(time.monotonic())
            assert kept.closed and kept not in reader._idle

    with pytest.raises(OperationalError) as caught:
        asyncio.run(silent())
    assert database_unavailable(caught.value)
    assert started[1] - started[0] < 2.0  # given up after the wait timeout, not asked again


def test_a_busy_sqlite_read_on_the_loop_goes_the_threads_way(
    ledger: sessionmaker[Session], http: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite refusing the loop's read (busy, failing): the lookup is answered in a worker
    thread, which waits as every query does; the next read opens a new connection."""
    import sqlite3

    engine = ledger.kw["bind"]
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's loop read")
    first = _ask(http, {"address": HOME}).json()
    threaded = _threaded(monkeypatch)
    assert _ask(http, {"address": HOME}).json() == first and threaded == []
    kept = ledger_version._sqlite_loop[engine][1]
    real = ledger_version._sqlite_loop_connection

    def busy(*_args: Any) -> Any:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(ledger_version, "_sqlite_loop_connection", busy)
    assert _ask(http, {"address": HOME}).json() == first
    assert threaded == [{"address": HOME}]
    monkeypatch.setattr(ledger_version, "_sqlite_loop_connection", real)
    threaded.clear()
    assert _ask(http, {"address": HOME}).json() == first and threaded == []
    assert ledger_version._sqlite_loop[engine][1] is not kept


def test_async_reads_at_once_are_bounded_by_the_pool_size(
    ledger: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A burst of lookups opens at most the pool's size of connections for the reads; the
    others wait for one (up to DATABASE_POOL_TIMEOUT, then the pool's timeout: the 503)."""
    shared = ledger.kw["bind"]
    _postgresql_only(shared)
    own = own_engine(shared, pool_size=2)
    pids: set[int] = set()
    real = ledger_version._fetch_on

    async def spying(conn: Any, statement: str, params: Any) -> Any:
        pids.add(conn.info.backend_pid)
        return await real(conn, statement, params)

    monkeypatch.setattr(ledger_version, "_fetch_on", spying)

    async def burst() -> list[Any]:
        slow = [ledger_version.fetch_async(own, "SELECT pg_sleep(0.2), 1") for _ in range(6)]
        return await asyncio.gather(*slow)

    try:
        assert [r[0][1] for r in asyncio.run(burst())] == [1] * 6
        assert len(pids) == 2
        monkeypatch.setattr(settings, "database_pool_timeout", 0.1)

        async def crowded() -> None:
            held = asyncio.gather(
                *[ledger_version.fetch_async(own, "SELECT pg_sleep(0.5)") for _ in range(2)]
            )
            await asyncio.sleep(0.05)
            try:
                await ledger_version.fetch_async(own, ledger_version._READ)
            finally:
                await held

        with pytest.raises(SATimeoutError) as caught:
            asyncio.run(crowded())
        assert database_unavailable(caught.value)
    finally:
        own.dispose()
