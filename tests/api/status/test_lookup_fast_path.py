"""The lookup's fast path (issue 15): the ledger token read on a connection of its own on
PostgreSQL (one round trip, no pooled checkout), fuzzy scoring only of the keys that can score,
and the scores of a text kept — each giving the answers the plain path gives.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest
from fastapi.testclient import TestClient
from rapidfuzz import fuzz, process
from sqlalchemy import event, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import settings
from app.core.database import database_unavailable, make_engine
from app.status import ledger_version, matching
from app.status.models import Project

URL = "/api/v1/lookup"
HOME = "观象山庄3号楼2单元501"
_senders = itertools.count()


def _ask(client: TestClient, body: dict[str, str]) -> Any:
    headers = {
        "Authorization": f"Service {settings.service_token}",
        "X-Sender-Id": f"fast-path-{next(_senders)}",
    }
    return client.post(URL, json=body, headers=headers)


def away_engine(engine: Engine) -> Engine:
    """An engine like `engine` pointed at a port where nothing listens."""
    return make_engine(
        engine.url.set(port=1).render_as_string(hide_password=False),
        connect_args={"connect_timeout": 2},
    )


def own_engine(shared: Engine, **kwargs: Any) -> Engine:
    """A second engine on the same database and schema as the test's `shared` one."""
    with shared.connect() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
    return make_engine(
        shared.url.render_as_string(hide_password=False),
        connect_args={"options": f"-csearch_path={schema}"},
        **kwargs,
    )


def _postgresql_only(engine: Engine) -> None:
    if not ledger_version.direct_reads(engine):
        pytest.skip("the direct token read is PostgreSQL's (SQLite reads on the session)")


def test_a_cached_lookup_checks_out_no_pooled_connection(
    ledger: sessionmaker[Session], http: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = ledger.kw["bind"]
    _postgresql_only(engine)
    from app.status import lookup_stats

    monkeypatch.setattr(lookup_stats, "FLUSH_SECONDS", 3600.0)  # no count written meanwhile
    first = _ask(http, {"address": HOME}).json()
    assert first["match"] == "unit"
    checkouts: list[object] = []

    def _checkout(*_args: Any) -> None:
        checkouts.append(object())

    event.listen(engine, "checkout", _checkout)
    try:
        again = _ask(http, {"address": HOME}).json()
    finally:
        event.remove(engine, "checkout", _checkout)
    assert again == first
    assert checkouts == []


def test_a_direct_connection_the_server_dropped_is_replaced(
    ledger: sessionmaker[Session], http: TestClient
) -> None:
    engine = ledger.kw["bind"]
    _postgresql_only(engine)
    token = ledger_version.read_direct(engine)
    assert token is not None
    reader = ledger_version._reader(engine)
    pids = [c.info.backend_pid for c in reader._idle]
    assert pids
    with engine.connect() as conn:
        for pid in pids:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    assert ledger_version.read_direct(engine) == token  # asked again on a new connection
    assert _ask(http, {"address": HOME}).json()["match"] == "unit"


def test_a_direct_read_on_a_database_that_is_away_is_unavailable(engine: Engine) -> None:
    _postgresql_only(engine)
    away = away_engine(engine)
    try:
        with pytest.raises(OperationalError) as caught:
            ledger_version.read_direct(away)
        assert database_unavailable(caught.value)  # the Chinese 503, not a 500
    finally:
        away.dispose()


def test_dispose_closes_the_direct_connections(ledger: sessionmaker[Session]) -> None:
    shared = ledger.kw["bind"]
    _postgresql_only(shared)
    own = own_engine(shared)
    try:
        ledger_version.read_direct(own)
        idle = list(ledger_version._reader(own)._idle)
        assert idle and not any(c.closed for c in idle)
    finally:
        own.dispose()
    assert all(c.closed for c in idle)
    assert ledger_version._reader(own)._idle == []


def test_uncommitted_ledger_writes_of_an_engine_session_are_looked_up_on_its_connection(
    ledger: sessionmaker[Session],
) -> None:
    """A session bound to the engine that edited the ledger reads on its own connection (it is
    in a transaction): it sees its edit, and nobody else does, before and after its rollback."""
    with ledger() as writer:
        project = writer.scalar(select(Project).where(Project.code == "QS001"))
        assert project is not None
        project.name = "松涛苑"
        writer.flush()
        answer = matching.lookup_address(db=writer, address="松涛苑3号楼2单元501")
        assert answer["match"] == "unit" and answer["project"]["code"] == "QS001"
        with ledger() as other:
            assert matching.lookup_address(db=other, address=HOME)["match"] == "unit"
        writer.rollback()
    with ledger() as db:
        assert matching.lookup_address(db=db, address=HOME)["match"] == "unit"
        moved = matching.lookup_address(db=db, address="松涛苑3号楼2单元501")
        assert moved["match"] != "unit" or moved["project"]["code"] != "QS001"


def _typed(keys: list[str], rng: random.Random, alphabet: list[str]) -> str:
    """A key with a few characters dropped, added or changed, inside other characters."""
    chars = list(rng.choice(keys))
    for _ in range(rng.randint(0, 3)):
        at = rng.randrange(len(chars) + 1)
        roll = rng.random()
        if roll < 0.3 and len(chars) > 1:
            chars.pop(min(at, len(chars) - 1))
        elif roll < 0.6:
            chars.insert(at, rng.choice(alphabet))
        else:
            chars[min(at, len(chars) - 1)] = rng.choice(alphabet)
    before = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 4)))
    after = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 3)))
    return before + "".join(chars) + after


def test_the_key_filter_finds_what_scoring_every_key_finds(demo_db: Session) -> None:
    index = matching.project_index.get(demo_db)
    assert index.fuzzy_filter is not None and index.sound_filter is not None
    rng = random.Random(15)
    alphabet = sorted(set("".join(index.fuzzy_keys)) | set("小区花园号楼单元我家在的"))
    queries = [_typed(index.fuzzy_keys, rng, alphabet) for _ in range(1500)]
    queries += ["幸福里小区", "观象", "花园", "小区", "阳光城", "瑰园", "湾", "XY"]
    for query in queries:
        for keys, key_filter, typed in (
            (index.fuzzy_keys, index.fuzzy_filter, query),
            (index.sound_keys, index.sound_filter, matching.pinyin.encode(query)),
        ):
            for cutoff in (30.0, 55.0, 90.0):
                every = process.extract(
                    typed, keys, scorer=fuzz.partial_ratio, score_cutoff=cutoff, limit=12
                )
                want = [(k, s, i) for k, s, i in every]
                assert key_filter.extract(typed, cutoff, 12) == want, (typed, cutoff)


def test_scores_of_a_text_are_kept_and_bounded(
    demo_db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = matching.project_index.get(demo_db)
    monkeypatch.setattr(matching, "SCORED_CACHE_LIMIT", 3)
    typed = ("观像山庄", "幸福里小区", "翠湖园", "金都花园", "观山庄")
    names = [matching.NameText(t) for t in typed]
    first = [matching.score_projects(index, n, set()) for n in names]
    assert len(index.scored) == 3
    index.scored.clear()
    again = [matching.score_projects(index, n, set()) for n in names]
    kept = [matching.score_projects(index, n, set()) for n in names[-3:]]
    assert again == first and kept == first[-3:]
    assert any(hits for hits in first)
