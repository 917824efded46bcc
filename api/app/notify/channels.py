"""The WeChat side of delivery: the channel (Rasa's `wechat` custom channel) owns the access
token, so the worker asks it to send (`POST {RASA_URL}/webhooks/wechat/notify`)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from sqlalchemy.orm import Session

from app.core.config import settings

NOTIFY_PATH = "/webhooks/wechat/notify"
TIMEOUT = httpx.Timeout(15.0, connect=3.0)
# 45015: the 48-hour customer-service window has closed (the resident wrote too long ago).
ERR_WINDOW_CLOSED = 45015
# Answers that another try cannot change: bad openid, unfollowed, blocked by the resident.
PERMANENT_ERRCODES = frozenset({40003, 43004, 43019})


@dataclass(frozen=True)
class ChannelAnswer:
    """What the channel said: delivered (or already delivered), its errcode, or a transport
    error code such as 'http 502' (never the body or the openid)."""

    delivered: bool
    errcode: int = 0
    duplicate: bool = False
    error: str | None = None


_client: httpx.Client | None = None
_client_lock = threading.Lock()


def _http() -> httpx.Client:
    global _client
    with _client_lock:
        if _client is None:
            _client = httpx.Client(timeout=TIMEOUT)
        return _client


def post_wechat(body: dict[str, Any]) -> ChannelAnswer:
    """Send one notification request to the WeChat channel."""
    url = settings.rasa_url.rstrip("/") + NOTIFY_PATH
    headers = {"Authorization": f"Service {settings.service_token}"}
    try:
        response = _http().post(url, json=body, headers=headers)
    except httpx.HTTPError as exc:
        return ChannelAnswer(False, error=type(exc).__name__)
    if response.status_code >= 300:
        return ChannelAnswer(False, error=f"http {response.status_code}")
    try:
        data = response.json()
    except ValueError:
        return ChannelAnswer(False, error="bad answer")
    if not isinstance(data, dict):
        return ChannelAnswer(False, error="bad answer")
    errcode = data.get("errcode")
    return ChannelAnswer(
        delivered=bool(data.get("delivered")),
        errcode=errcode if isinstance(errcode, int) else 0,
        duplicate=bool(data.get("duplicate")),
    )


class WebchatDelivery(Protocol):
    """Puts a bubble in a web-chat transcript once per notification id (the chat area's
    `deliver_notice`, registered by it: this package sits below the chat area)."""

    def __call__(
        self,
        db: Session,
        *,
        transcript_key: str,
        notification_id: int,
        role: str,
        text: str,
        staff_name: str | None = None,
    ) -> bool: ...


_webchat: list[WebchatDelivery] = []


def register_webchat(deliver: WebchatDelivery) -> None:
    """Called once by the web chat when it is imported."""
    _webchat[:] = [deliver]


def webchat_delivery() -> WebchatDelivery:
    """The registered web-chat delivery; a worker that did not import the chat fails loudly."""
    if not _webchat:
        raise RuntimeError("web chat delivery not registered: import app.tasks in the worker")
    return _webchat[0]
