"""`POST /api/v1/lookup`: find a home by address, or by ID number plus owner name."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from fastapi import Depends, FastAPI, Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.core.config import settings
from app.core.database import get_db
from app.core.ratelimit import limiter
from app.core.security import CallerDep
from app.status import lookup_stats, matching
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
    # The session (get_db, or the app's override of it) is opened, used and committed in one
    # worker thread: as a sync dependency it cost two more thread hops than the lookup itself.
    provider = request.app.dependency_overrides.get(get_db, get_db)
    return await run_in_threadpool(_lookup_in_session, body, provider)


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
    # Only the kind of lookup, the outcome and the time: never the address, ID or name.
    log.info(
        "lookup by=%s match=%s %.1fms", kind, answer["match"], (time.perf_counter() - start) * 1e3
    )
    # Encoded here, once (the project's status comes encoded from the cache); the schema
    # stays LookupRead in OpenAPI (response_model) and tests hold the two to the same JSON.
    return Response(matching.encode(answer, found), media_type="application/json")
