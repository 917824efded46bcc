"""Request body size cap, enforced before the body is read into memory."""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.config import settings

_TOO_LARGE = json.dumps(
    {"code": "too_large", "message": "提交的内容太长了，请精简后再试。"}, ensure_ascii=False
).encode()


# Routes that take larger bodies than the staff uploads, added by their area on import:
# (does this path match, its cap in bytes). The model registry's artifact upload is one.
LARGE_BODY_ROUTES: list[tuple[Callable[[str], bool], Callable[[], int]]] = []


class BodySizeLimit:
    """Rejects bodies over MAX_BODY_BYTES (uploads under /console and /api/v1/staff get more)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        is_upload = path.startswith(("/console", "/api/v1/staff"))
        cap = settings.max_upload_bytes if is_upload else settings.max_body_bytes
        cap = next((limit() for match, limit in LARGE_BODY_ROUTES if match(path)), cap)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > cap:
            await _reject(send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except BodyTooLarge:
            await _reject(send)


class BodyTooLarge(Exception):
    """Raised by the capped `receive`; BodySizeLimit answers 413 (inner layers let it pass)."""


async def _reject(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": _TOO_LARGE})
