"""Logging set-up: access lines carry method, path, status and time, never bodies or queries."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from app.core.config import settings

access_log = logging.getLogger("app.access")


# Libraries whose own error logs carry tracebacks: a database driver's messages may quote
# what a resident typed ('invalid input syntax …: "139…"'), so only the types are kept.
_QUIET_LIBRARIES = ("sqlalchemy", "psycopg", "huey")


class NoLibraryTracebacks(logging.Filter):
    """Turn a library's error-with-traceback (SQLAlchemy's pool logs "Exception during reset
    or similar" when a dead connection cannot roll back) into one line with the exception
    types: no traceback, no exception message."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.name.startswith(_QUIET_LIBRARIES):
            exc = record.exc_info[1]
            types: list[str] = []
            while exc is not None and len(types) < 5:
                types.append(type(exc).__name__)
                exc = exc.__cause__ or exc.__context__
            record.msg = f"{record.getMessage()} ({'/'.join(types) or 'no exception'})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def configure_logging() -> None:
    """Plain one-line logs; uvicorn's own access log is off (it prints query strings)."""
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    logging.getLogger("uvicorn.access").disabled = True
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, NoLibraryTracebacks) for f in handler.filters):
            handler.addFilter(NoLibraryTracebacks())


async def access_log_middleware(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Log each request's route template (not the raw path with numbers in it) and timing."""
    start = time.perf_counter()
    response = await call_next(request)
    route = request.scope.get("route")
    path = getattr(route, "path", None) or "<unmatched>"
    access_log.info(
        "%s %s %s %.1fms",
        request.method,
        path,
        response.status_code,
        (time.perf_counter() - start) * 1000,
    )
    return response
