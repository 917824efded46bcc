"""The web chat's way to Rasa: asynchronous, pooled, bounded — so it can never starve the api.

Rasa's custom actions call back into this api (lookups, petitions) while the resident waits.
The first chat proxy was a sync endpoint: every message held a threadpool worker while Rasa
thought, so 40 messages in flight took every worker, the actions' calls queued behind them and
nothing moved (45 concurrent messages: 36 answered 500, lookups waited 66 s). Now:

- the endpoint is async and waits for Rasa on one pooled `httpx.AsyncClient`: no thread held;
- at most `CHAT_MAX_IN_FLIGHT` messages (per api process) are with Rasa at once; one more is
  answered at once with 429, Retry-After and a Chinese "稍等" (the page shows it and the
  resident sends again), never queued until it times out;
- the chat's little blocking work (rate-limit counter in Redis, storing the bubbles) runs in
  its own small thread pool (`CHAT_THREADS` tokens), not in the default one the sync endpoints
  the action server calls use: the chat cannot take their capacity.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread
import httpx
from anyio import CapacityLimiter

from app.core.config import settings
from app.core.errors import AppError

log = logging.getLogger("app.chat")

T = TypeVar("T")
RASA_TIMEOUT = httpx.Timeout(20.0, connect=3.0)
BOT_DOWN_MESSAGE = "小助手暂时没有响应，请过几分钟再发一次。给您带来不便，非常抱歉。"
BUSY_MESSAGE = "现在咨询的人比较多，请稍等几秒再发一次。"
BUSY_RETRY_SECONDS = 3


class InFlight:
    """A counter of messages with Rasa; `enter` is False when the bound is reached."""

    def __init__(self, bound: int) -> None:
        self.bound = bound
        self.count = 0
        self.refused = 0
        self._lock = threading.Lock()

    def enter(self) -> bool:
        with self._lock:
            if self.count >= self.bound:
                self.refused += 1
                return False
            self.count += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.count -= 1


in_flight = InFlight(settings.chat_max_in_flight)

# One client and one thread limiter per event loop (uvicorn has one per process; each test
# client runs its own), created in the loop that uses them.
_per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[httpx.AsyncClient, Any]]
_per_loop = weakref.WeakKeyDictionary()


def _loop_state() -> tuple[httpx.AsyncClient, CapacityLimiter]:
    loop = asyncio.get_running_loop()
    state = _per_loop.get(loop)
    if state is None:
        limits = httpx.Limits(
            max_connections=settings.chat_max_in_flight,
            max_keepalive_connections=min(20, settings.chat_max_in_flight),
        )
        state = (
            httpx.AsyncClient(timeout=RASA_TIMEOUT, limits=limits),
            CapacityLimiter(settings.chat_threads),
        )
        _per_loop[loop] = state
    return state[0], state[1]


def busy() -> AppError:
    return AppError(429, "chat_busy", BUSY_MESSAGE, {"retry_after": BUSY_RETRY_SECONDS})


async def in_chat_thread(func: Callable[..., T], *args: Any) -> T:
    """Run blocking work of the chat in the chat's own thread pool."""
    _, threads = _loop_state()
    return await anyio.to_thread.run_sync(func, *args, limiter=threads)


async def call_rasa(sender: str, message: str) -> list[dict[str, Any]]:
    """The bot's bubbles for one message from Rasa's REST channel; 503 in Chinese when Rasa
    is down or answers nonsense."""
    client, _ = _loop_state()
    url = settings.rasa_url.rstrip("/") + "/webhooks/rest/webhook"
    # input_channel: the bot records petitions from here as 网页聊天 (channel "webchat").
    body = {"sender": sender, "message": message, "input_channel": "webchat"}
    try:
        response = await client.post(url, json=body)
        response.raise_for_status()
        data = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("rasa unavailable: %s", type(exc).__name__)
        raise AppError(503, "bot_unavailable", BOT_DOWN_MESSAGE) from exc
    if not isinstance(data, list):
        log.warning("rasa answered an unexpected shape")
        raise AppError(503, "bot_unavailable", BOT_DOWN_MESSAGE)
    return [m for m in data if isinstance(m, dict)]
