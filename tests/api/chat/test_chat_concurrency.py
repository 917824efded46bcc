"""The web chat under load (issue 13): on the real api process, a hundred residents at once
while the bot calls the api back, and the bound on messages in flight.

Before: the chat proxy was a sync endpoint holding a threadpool worker while Rasa thought, and
Rasa's actions call back into the same api — at 45 concurrent messages 36 answered 500 and the
lookups waited behind them. The fake Rasa here (a real HTTP server) does what the action server
does: a lookup on the api, with the service token and the resident's sender id, before it
answers. The real Rasa twin is bench/chat_load_bench.py (100 concurrent over the whole stack)."""

from __future__ import annotations

import concurrent.futures
import time
from pathlib import Path

import httpx
import pytest
from fake_rasa import FakeRasaServer
from live_api import PRODUCTION_FLAGS, live_api
from notify.outbox_fixtures import CommittedDb, committed_db  # noqa: F401
from sqlalchemy import func, select

from app.chat.models import ChatMessage

SERVICE_TOKEN = "chat-load-test-service-token"


def _env(rasa_url: str, **more: str) -> dict[str, str]:
    return {
        "RASA_URL": rasa_url,
        "SERVICE_TOKEN": SERVICE_TOKEN,
        "CHAT_RATE_PER_IP": "10000",
        "LOOKUP_RATE_PER_IP": "10000",
        "LOG_LEVEL": "INFO",
        **more,
    }


def _resident(base: str, text: str) -> tuple[int, dict[str, str], float, str]:
    """A new resident: opens the page (cookie), sends one message; (status, headers, s, body)."""
    with httpx.Client(base_url=base, timeout=60) as client:
        client.get("/chat")
        started = time.monotonic()
        r = client.post("/chat/api/messages", json={"text": text}, headers={"X-Chat-Client": "web"})
        return r.status_code, dict(r.headers), time.monotonic() - started, r.text


def _send_all(base: str, n: int, text: str) -> list[tuple[int, dict[str, str], float, str]]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(lambda _: _resident(base, text), range(n)))


def test_a_hundred_residents_while_the_bot_calls_the_api_back(
    committed_db: CommittedDb,  # noqa: F811
    rasa_server: FakeRasaServer,
    tmp_path: Path,
) -> None:
    """100 messages at once, each making the bot look the home up on the api before it
    answers: every one answered 200 with the bot's bubble and stored; every lookup 200."""
    lookups: list[int] = []
    fake = rasa_server.fake
    fake.received.clear()
    fake.state.clear()
    fake.delay_all = 0.2  # the bot thinks a little, as NLU and the policies do
    base_holder: list[str] = []

    def action_server_lookup(sender: str, _text: str) -> None:
        r = httpx.post(
            f"{base_holder[0]}/api/v1/lookup",
            json={"address": "观象山庄3号楼2单元501"},
            headers={"Authorization": f"Service {SERVICE_TOKEN}", "X-Sender-Id": sender},
            timeout=60,
        )
        lookups.append(r.status_code)

    fake.before_reply = action_server_lookup
    try:
        env = _env(rasa_server.url)
        with live_api(committed_db.url, tmp_path / "api.log", env=env, flags=PRODUCTION_FLAGS) as b:
            base_holder.append(b)
            results = _send_all(b, 100, "我要信访")
    finally:
        fake.before_reply = None
        fake.delay_all = 0.0
    codes = [code for code, *_ in results]
    assert codes == [200] * 100, {c: codes.count(c) for c in set(codes)}
    assert all("请问您怎么称呼" in body for *_, body in results)
    assert len(lookups) == 100 and set(lookups) == {200}, lookups
    with committed_db.sessions() as db:
        stored = db.scalar(
            select(func.count()).select_from(ChatMessage).where(ChatMessage.text == "我要信访")
        )
    assert stored is not None and stored >= 100
    printed = (tmp_path / "api.log").read_text(errors="replace")
    assert "Traceback" not in printed and " 500 " not in printed


def test_beyond_the_bound_answers_at_once_with_429_and_retry_after(
    committed_db: CommittedDb,  # noqa: F811
    rasa_server: FakeRasaServer,
    tmp_path: Path,
) -> None:
    """CHAT_MAX_IN_FLIGHT=5 and a slow bot: of 12 messages at once, 5 are answered by the bot,
    the others at once with 429, Retry-After and a Chinese 稍等 — none waits for the bot."""
    fake = rasa_server.fake
    fake.delay_all = 2.0
    try:
        env = _env(rasa_server.url, CHAT_MAX_IN_FLIGHT="5")
        with live_api(committed_db.url, tmp_path / "api.log", env=env, flags=PRODUCTION_FLAGS) as b:
            results = _send_all(b, 12, "你好")
            # The bound frees as answers leave: the next message goes through.
            after = _resident(b, "你好")
    finally:
        fake.delay_all = 0.0
    ok = [r for r in results if r[0] == 200]
    busy = [r for r in results if r[0] == 429]
    assert len(ok) == 5 and len(busy) == 7, [r[0] for r in results]
    for _, headers, seconds, body in busy:
        assert headers["retry-after"].isdigit() and "稍等" in body and "chat_busy" in body
        assert seconds < 1.5, seconds  # refused at once, not after the bot's 2 s
    assert after[0] == 200


@pytest.fixture(autouse=True)
def _quiet_fake(rasa_server: FakeRasaServer) -> None:
    rasa_server.fake.fail_status = None
    rasa_server.fake.takeover = None
