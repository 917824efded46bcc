"""Logging set-up: access lines carry method, path, status and time, never bodies or queries."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


class AccessLog:
    """ASGI middleware: log each request's route template (not the raw path with numbers in
    it), status and timing. Plain ASGI rather than a `@app.middleware("http")` function, whose
    task group and streams cost more than a whole lookup answered from the caches."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not access_log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, sending)
        route = scope.get("route")
        path = getattr(route, "path", None) or "<unmatched>"
        access_log.info(
            "%s %s %s %.1fms", scope["method"], path, status, (time.perf_counter() - start) * 1000
        )
