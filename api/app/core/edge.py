"""The edge of the api, outermost in the app: control characters refused before any route runs,
and the one place an unhandled error is logged and answered.

- A JSON body, a form body or a query string carrying a control character other than newline,
  carriage return and tab is refused with a Chinese 422 naming the field (PostgreSQL cannot
  store NUL; the others only hide text from staff and logs).
- Staff pages and the staff API get security headers: a strict Content-Security-Policy (own
  scripts and styles only, no framing), nosniff, no-referrer, and `Cache-Control: no-store` so
  a shared office computer's browser keeps no copy of residents' cases.
- An error no handler took is logged once, with its type and the route template, never its text
  (an exception's message may quote what the resident typed), and answered with the Chinese 500;
  it is not re-raised, so the server prints no traceback.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.database import database_unavailable
from app.core.errors import STATUS_MESSAGES, database_unavailable_response
from app.core.limits import BodyTooLarge

log = logging.getLogger("app.errors")

# C0 controls but \t \n \r, and DEL.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
CONTROL_MESSAGE = "提交的内容里有无法识别的控制字符（{fields}），请删除后再试。"
SERVER_CODE, SERVER_ERROR = STATUS_MESSAGES[500]
_CHECKED_TYPES = ("application/json", "application/x-www-form-urlencoded")

CONSOLE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
_STAFF_PREFIXES = ("/console", "/api/v1/staff", "/api/v1/auth")
_STATIC_PREFIXES = ("/console/static/",)


def security_headers(path: str) -> list[tuple[bytes, bytes]]:
    """The headers added to every answer under `path` (none outside the staff side)."""
    if not path.startswith(_STAFF_PREFIXES):
        return []
    headers = [
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
        (b"content-security-policy", CONSOLE_CSP.encode()),
    ]
    if not path.startswith(_STATIC_PREFIXES):
        headers.append((b"cache-control", b"no-store"))
    return headers


def _json_fields(value: Any, path: str, found: list[str]) -> None:
    if isinstance(value, str):
        if CONTROL.search(value):
            found.append(path or "body")
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and CONTROL.search(key):
                found.append(path or "body")
            _json_fields(item, f"{path}.{key}" if path else str(key), found)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _json_fields(item, f"{path}[{index}]", found)


def _pairs_fields(raw: str) -> list[str]:
    pairs = parse_qsl(raw, keep_blank_values=True)
    return [key for key, value in pairs if CONTROL.search(key) or CONTROL.search(value)]


def control_fields(content_type: str, body: bytes, query: str) -> list[str]:
    """The fields (query parameters, JSON paths, form keys) holding a control character."""
    found = _pairs_fields(query) if query else []
    if not body:
        return found
    if content_type.startswith("application/json"):
        if b"\\" not in body and b"\x7f" not in body:
            # Without a backslash (an escape) or a raw DEL no JSON string can hold a control
            # character (raw C0 ones are not JSON): known without parsing the body twice.
            return found
        try:
            _json_fields(json.loads(body), "", found)
        except ValueError:
            pass  # not JSON: the route's own validation answers
    elif content_type.startswith("application/x-www-form-urlencoded"):
        found += _pairs_fields(body.decode("utf-8", errors="replace"))
    return found


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json; charset=utf-8")],
        }
    )
    await send(
        {"type": "http.response.body", "body": json.dumps(body, ensure_ascii=False).encode()}
    )


class Edge:
    """ASGI middleware; see the module's docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        query = scope.get("query_string", b"").decode("latin-1")
        started = False
        extra = security_headers(scope.get("path", ""))

        async def tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if extra:
                    names = {name for name, _ in extra}
                    kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                    message = {**message, "headers": kept + extra}
            await send(message)

        replay: list[Message] = []
        parts: list[bytes] = []
        if content_type.startswith(_CHECKED_TYPES):
            # BodySizeLimit (outside) has capped the body already, and a JSON or form body is
            # never a file upload. Read it all, check it, hand it on unchanged.
            while True:
                message = await receive()
                replay.append(message)
                if message["type"] != "http.request":
                    break
                parts.append(message.get("body", b""))
                if not message.get("more_body"):
                    break
        fields = control_fields(content_type, b"".join(parts), query)
        if fields:
            shown = "、".join(dict.fromkeys(fields))[:200]
            await _send_json(
                tracking,
                422,
                {
                    "code": "control_characters",
                    "message": CONTROL_MESSAGE.format(fields=shown),
                    "errors": [{"field": f, "type": "control_characters"} for f in fields],
                },
            )
            return

        async def replaying() -> Message:
            if replay:
                return replay.pop(0)
            return await receive()

        try:
            await self.app(scope, replaying if replay else receive, tracking)
        except Exception as exc:  # noqa: BLE001 - the last line of defence, logged once
            # The access log's task group wraps errors in an ExceptionGroup.
            inner = _leaves(exc)
            if any(isinstance(e, BodyTooLarge) for e in inner):
                raise BodyTooLarge from None  # BodySizeLimit, outside, answers 413
            down = next((e for e in inner if database_unavailable(e)), None)
            if down is not None and not started:
                # The database away outside a route's handlers (e.g. under a middleware).
                await database_unavailable_response(scope, down)(scope, receive, tracking)
                return
            route = scope.get("route")
            path = getattr(route, "path", None) or "<unmatched>"
            names = "+".join(dict.fromkeys(type(e).__name__ for e in inner))
            log.error("unhandled %s on %s %s", names, scope.get("method"), path)
            if not started:
                await _send_json(tracking, 500, {"code": SERVER_CODE, "message": SERVER_ERROR})


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups, or the exception itself."""
    if isinstance(exc, BaseExceptionGroup):  # noqa: F821 - a builtin of the api's Python 3.11
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]
