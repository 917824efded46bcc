"""`POST /api/v1/lookup`: find a home by address, or by ID number plus owner name."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request, Response
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.core import database
from app.core.config import settings
from app.core.database import get_db, session_scope
from app.core.ratelimit import limiter
from app.core.security import CallerDep, hash_id_number
from app.status import ledger_version, lookup_stats, matching
from app.status.lookup_schemas import LookupRead, LookupRequest

log = logging.getLogger("app.lookup")

LOOKUP_RATE_MESSAGE = "查询太频繁了，请一分钟后再试。如需帮助，可以说“转人工”。"


async def lookup_rate_limit(caller: CallerDep) -> None:
    """Count the lookup per sender and per IP before the body is even validated, so that
    nobody can walk through ID numbers or addresses (bad IDs count too).

    Counted on the event loop when the counts are in memory; Redis is asked from a worker
    thread (it may be slow or away: its timeout must not hold the loop)."""
    args = (
        "lookup",
        caller.rate_keys,
        {"sender": settings.lookup_rate_per_sender, "ip": settings.lookup_rate_per_ip},
        LOOKUP_RATE_MESSAGE,
    )
    if limiter.in_memory:
        limiter.hit(*args)
    else:
        await run_in_threadpool(limiter.hit, *args)


# Load the pinyin table with the app (0.3 s) rather than in the first resident's request.
matching.pinyin.encode("")

LOOKUP_PATH = "/api/v1/lookup"


def add_route(app: FastAPI) -> None:
    """`POST /api/v1/lookup` on the app itself, before any router: FastAPI matches a route of
    an included router twice per request, walking the whole tree of included routers each time
    (api_router's 18: about a tenth of a lookup's CPU). The residents' hot path skips that."""
    app.add_api_route(
        LOOKUP_PATH,
        lookup,
        methods=["POST"],
        tags=["lookup"],
        response_model=LookupRead,
        # Keys the answer does not set are left out; the status keeps its nulls, so that it
        # has the shape GET /projects/{code}/status answers with.
        response_model_exclude_unset=True,
        dependencies=[Depends(lookup_rate_limit)],
        responses={
            422: {"description": "身份证号不合法或请求格式不对"},
            429: {"description": "查询太频繁"},
        },
    )


async def lookup(body: LookupRequest, request: Request) -> Response:
    """Resolve an address (unit, project, ranked candidates or none) or an ID number with the
    owner's name (both must match); IDs and names in the answer are masked."""
    provider = request.app.dependency_overrides.get(get_db, get_db)
    if provider is get_db:  # sessions of SessionLocal: committed data only
        bind = database.SessionLocal.kw.get("bind")
        if isinstance(bind, Engine) and ledger_version.loop_reads(bind):
            answered = await _from_caches(body, bind)
            if answered is not None:
                return answered
    # The session (get_db, or the app's override of it) is opened, used and committed in one
    # worker thread: as a sync dependency it cost two more thread hops than the lookup itself.
    return await run_in_threadpool(_lookup_in_session, body, provider)


async def _from_caches(body: LookupRequest, engine: Engine) -> Response | None:
    """A lookup answered on the event loop: the ledger token read there
    (ledger_version.fetch_on_loop; with an ID number's homes, in the same statement), the rest
    from the current ledger state's caches alone. None when they do not hold all it needs (the
    token changed, a project's status or homes not cached yet, a question only the database
    answers) or SQLite was busy: the worker thread's way then."""
    start = time.perf_counter()
    try:
        if body.address is not None:
            kind = "address"
            token = await ledger_version.read_on_loop(engine)
            state = matching.project_index.shared(engine, token)
            if state is None:
                return None
            found = matching.match_address(db=matching.CACHES_ONLY, text=body.address, state=state)
        else:
            assert body.id_number is not None and body.person_name is not None  # schema
            kind = "id"
            rows = await ledger_version.fetch_on_loop(
                engine, matching.ID_UNITS_WITH_TOKEN, (hash_id_number(body.id_number),)
            )
            state = matching.project_index.shared(engine, rows[0][0] if rows else None)
            found = matching.match_id_cached(state, rows, body.person_name)
    except (matching.NeedsDatabase, ledger_version.LoopReadRefused):
        return None
    answer = matching.answer(matching.CACHES_ONLY, found)
    lookup_stats.count_lookup(answer)
    if lookup_stats.due():
        await run_in_threadpool(_flush_counts)
    _log_answer(kind, answer, start)
    return Response(matching.encode(answer, found), media_type="application/json")


def _flush_counts() -> None:
    with session_scope() as db:
        lookup_stats.flush_if_due(db)


def _lookup_in_session(body: LookupRequest, provider: Callable[[], Iterator[Session]]) -> Response:
    with contextmanager(provider)() as db:
        return _lookup(body, db)


def _lookup(body: LookupRequest, db: Session) -> Response:
    start = time.perf_counter()
    if body.address is not None:
        found = matching.match_address(db=db, text=body.address)
        kind = "address"
    else:
        assert body.id_number is not None and body.person_name is not None  # schema
        found = matching.match_id(db=db, id_number=body.id_number, person_name=body.person_name)
        kind = "id"
    answer = matching.answer(db, found)
    # Per project per day, a count only (the project page shows it), written every few seconds.
    lookup_stats.count_lookup(answer)
    lookup_stats.flush_if_due(db)
    _log_answer(kind, answer, start)
    # Encoded here, once (the project's status comes encoded from the cache); the schema
    # stays LookupRead in OpenAPI (response_model) and tests hold the two to the same JSON.
    return Response(matching.encode(answer, found), media_type="application/json")


def _log_answer(kind: str, answer: dict[str, Any], start: float) -> None:
    # Only the kind of lookup, the outcome and the time: never the address, ID or name.
    log.info(
        "lookup by=%s match=%s %.1fms", kind, answer["match"], (time.perf_counter() - start) * 1e3
    )
