"""HTTP client for the 房本助手 api (status, policies, petitions).

Every call is bounded to about API_TIMEOUT seconds in total, so that the bot can apologise within
a few seconds when the api is slow or down instead of leaving the resident waiting.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any, cast

import httpx

from actions.config import settings


class ApiUnavailable(Exception):
    """The api did not answer in time, refused the connection or failed (5xx)."""


class ApiError(Exception):
    """The api answered with a 4xx error `{code, message}` (message in Chinese)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.message = message


def _headers(sender_id: str | None, extra: dict[str, str] | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Service {settings.service_token}"}
    if sender_id:
        headers["X-Sender-Id"] = sender_id[:128]
    if extra:
        headers.update(extra)
    return headers


# One pooled client per event loop: a new AsyncClient per call would build an SSL context and
# open a new connection every time (tens of milliseconds per message on two shared cores).
_clients: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, tuple[tuple[str, float], httpx.AsyncClient]
] = weakref.WeakKeyDictionary()


def _client() -> httpx.AsyncClient:
    """The pooled client of the running loop, made anew if the api URL or timeout changed."""
    loop = asyncio.get_running_loop()
    key = (settings.api_url, settings.api_timeout)
    cached = _clients.get(loop)
    if cached is not None and cached[0] == key and not cached[1].is_closed:
        return cached[1]
    client = httpx.AsyncClient(
        base_url=settings.api_url,
        timeout=settings.api_timeout,
        limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
    )
    _clients[loop] = (key, client)
    return client


async def _request(
    method: str,
    path: str,
    *,
    sender_id: str | None,
    json: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float | None = None,
) -> Any:
    timeout = min(timeout or settings.api_timeout, settings.api_timeout)
    try:
        response = await asyncio.wait_for(
            _client().request(
                method, path, json=json, headers=_headers(sender_id, headers), timeout=timeout
            ),
            timeout=timeout,
        )
    except (httpx.HTTPError, asyncio.TimeoutError, OSError) as exc:
        # The exception text may carry the URL only, never a body; keep only its type.
        raise ApiUnavailable(type(exc).__name__) from None
    if response.status_code >= 500:
        raise ApiUnavailable(f"HTTP {response.status_code}")
    try:
        payload = response.json()
    except ValueError:
        raise ApiUnavailable("not json") from None
    if response.status_code >= 400:
        if not isinstance(payload, dict):
            payload = {}
        raise ApiError(
            response.status_code,
            str(payload.get("code", "error")),
            str(payload.get("message") or "请求没有成功，请稍后再试。"),
        )
    return payload


async def lookup(
    sender_id: str | None,
    *,
    address: str | None = None,
    id_number: str | None = None,
    person_name: str | None = None,
) -> dict[str, Any]:
    """POST /api/v1/lookup by address, or by ID number with the owner's name."""
    body: dict[str, Any] = (
        {"address": address} if address else {"id_number": id_number, "person_name": person_name}
    )
    return cast(
        dict[str, Any], await _request("POST", "/api/v1/lookup", sender_id=sender_id, json=body)
    )


async def project_status(sender_id: str | None, code: str) -> dict[str, Any]:
    """GET /api/v1/projects/{code}/status: the project's registration status and blockers."""
    return cast(
        dict[str, Any],
        await _request("GET", f"/api/v1/projects/{code}/status", sender_id=sender_id),
    )


async def policy(sender_id: str | None, code: str) -> dict[str, Any]:
    """GET /api/v1/policies/{code}: a catalogue entry (FAQ topic, guidance or policy)."""
    return cast(
        dict[str, Any], await _request("GET", f"/api/v1/policies/{code}", sender_id=sender_id)
    )


async def faq_answer(sender_id: str | None, topic: str) -> str | None:
    """Today's answer of a `policy_faq/<topic>`; None when the catalogue has no such topic.

    `GET /policies/{code}` serves the blocker when a code is both a blocker and a FAQ topic
    (developer_uncooperative), so the FAQ is then taken from the whole catalogue.
    """
    entry = await policy(sender_id, topic)
    if entry.get("kind", "faq") == "faq" and entry.get("answer"):
        return str(entry["answer"])
    catalogue = await _request("GET", "/api/v1/policies", sender_id=sender_id)
    for item in catalogue.get("faq") or []:
        if item.get("code") == topic and item.get("answer"):
            return str(item["answer"])
    return None


async def create_petition(
    sender_id: str | None, body: dict[str, Any], idempotency_key: str
) -> dict[str, Any]:
    """POST /api/v1/petitions with an Idempotency-Key, so a retried turn files it only once."""
    payload = await _request(
        "POST",
        "/api/v1/petitions",
        sender_id=sender_id,
        json=body,
        headers={"Idempotency-Key": idempotency_key},
    )
    return cast(dict[str, Any], payload)


async def lookup_petition(sender_id: str | None, number: str, phone: str) -> dict[str, Any]:
    """POST /api/v1/petitions/lookup; a 404 (number and phone do not match) is an ApiError."""
    body = {"petition_number": number, "phone": phone}
    return cast(
        dict[str, Any],
        await _request("POST", "/api/v1/petitions/lookup", sender_id=sender_id, json=body),
    )


async def guidance(sender_id: str | None) -> dict[str, Any]:
    """The catalogue's guidance (materials, where to apply, next steps) from GET /policies."""
    return dict((await catalogue(sender_id)).get("guidance") or {})


async def find_petitions(sender_id: str | None, phone: str, person_name: str) -> dict[str, Any]:
    """POST /api/v1/petitions/lookup with `{phone, person_name}`: the resident's petitions."""
    body = {"phone": phone, "person_name": person_name}
    return cast(
        dict[str, Any],
        await _request("POST", "/api/v1/petitions/lookup", sender_id=sender_id, json=body),
    )


async def catalogue(sender_id: str | None) -> dict[str, Any]:
    """GET /api/v1/policies: the whole catalogue (blockers, FAQ, departments, guidance)."""
    return dict(await _request("GET", "/api/v1/policies", sender_id=sender_id))


# -- the loop: the conversation's mode, notifications, a person, satisfaction (docs/loop.md) --


async def conversation_turn(sender_id: str | None, channel: str, text: str) -> dict[str, Any]:
    """POST /api/v1/conversations/turn (the resident's text masked): mode, notify, feedback_for.

    Called first in every turn with a short timeout: a slow api must not hold the reply up.
    """
    body = {"channel": channel, "text": text}
    return dict(
        await _request(
            "POST",
            "/api/v1/conversations/turn",
            sender_id=sender_id,
            json=body,
            timeout=settings.turn_timeout,
        )
    )


async def set_notify(sender_id: str | None, notify: bool) -> dict[str, Any]:
    """POST /api/v1/conversations/notify: "不用通知我了" (false) / "恢复通知" (true)."""
    return dict(
        await _request(
            "POST", "/api/v1/conversations/notify", sender_id=sender_id, json={"notify": notify}
        )
    )


async def handoff(sender_id: str | None, channel: str) -> dict[str, Any]:
    """POST /api/v1/conversations/handoff: queued for a person in office hours, else when."""
    return dict(
        await _request(
            "POST", "/api/v1/conversations/handoff", sender_id=sender_id, json={"channel": channel}
        )
    )


async def petition_feedback(
    sender_id: str | None, number: str, satisfaction: str, reason: str | None = None
) -> dict[str, Any]:
    """POST /api/v1/petitions/{number}/feedback: the resident's own 满意 / 基本满意 / 不满意."""
    body: dict[str, Any] = {"satisfaction": satisfaction}
    if reason:
        body["reason"] = reason
    return dict(
        await _request(
            "POST", f"/api/v1/petitions/{number}/feedback", sender_id=sender_id, json=body
        )
    )


# -- the maintainers' NLU inbox (docs/maintainers.md) ----------------------------------------


async def nlu_observation(sender_id: str | None, body: dict[str, Any]) -> dict[str, Any]:
    """POST /api/v1/nlu/observations: a message the bot misunderstood (masked) → `{id}`.

    Short timeout (NLU_INBOX_TIMEOUT): the report is a by-product of the turn, never its cost.
    """
    return dict(
        await _request(
            "POST",
            "/api/v1/nlu/observations",
            sender_id=sender_id,
            json=body,
            timeout=settings.nlu_inbox_timeout,
        )
    )
