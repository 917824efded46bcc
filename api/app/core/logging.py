"""Logging set-up: access lines carry method, path, status and time, never bodies or queries."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from app.core.config import settings

access_log = logging.getLogger("app.access")


def configure_logging() -> None:
    """Plain one-line logs; uvicorn's own access log is off (it prints query strings)."""
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    logging.getLogger("uvicorn.access").disabled = True


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
