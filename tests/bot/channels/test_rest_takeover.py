"""The REST channel (in a real Sanic server, with the real domain) while a clerk has taken a
conversation over: the bot's takeover marker means an empty answer, never the apology that a
turn without any message gets, and the marker itself never reaches the caller."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from rasa.shared.core.domain import Domain
from wechat_double.harness import ChannelServer

from channels import TAKEOVER_MARKER
from channels.rest import SafeRestInput

DOMAIN_DIR = Path(__file__).resolve().parents[3] / "bot" / "domain"
TAKEN_OVER = "web-takenover-0001"


class Bot:
    """`on_new_message`: the marker for a conversation a clerk has, nothing for "静默" (a
    failure), else an answer, optionally with the marker too."""

    async def __call__(self, message: Any) -> None:
        out = message.output_channel
        if message.sender_id == TAKEN_OVER:
            await out.send_custom_json(message.sender_id, dict(TAKEOVER_MARKER))
        elif message.text == "静默":
            return
        elif message.text == "交接":
            await out.send_text_message(message.sender_id, "工作人员已接入，请稍候。")
            await out.send_custom_json(message.sender_id, dict(TAKEOVER_MARKER))
        else:
            await out.send_text_message(message.sender_id, "收到")
            await out.send_custom_json(message.sender_id, {"chip": "other"})


@pytest.fixture(scope="module")
def domain() -> Domain:
    """The bot's real domain (its utter_error_generic is the apology)."""
    return Domain.load(str(DOMAIN_DIR))


@pytest.fixture
def rest(domain: Domain) -> Iterator[ChannelServer]:
    """SafeRestInput at /webhooks/rest in a real server whose app knows the agent's domain."""
    server = ChannelServer(SafeRestInput(), Bot(), "/webhooks/rest")
    server.app.ctx.agent = SimpleNamespace(domain=domain)
    with server:
        yield server


def post(server: ChannelServer, sender: str, text: str, **params: str) -> httpx.Response:
    return httpx.post(server.url, json={"sender": sender, "message": text}, params=params)


def test_takeover_marker_alone_is_an_empty_answer(rest: ChannelServer) -> None:
    resp = post(rest, TAKEN_OVER, "有人吗")
    assert resp.status_code == 200 and resp.json() == []


def test_no_message_at_all_is_still_the_apology(rest: ChannelServer, domain: Domain) -> None:
    apology = domain.responses["utter_error_generic"][0]["text"]
    assert post(rest, "web-other-0002", "静默").json() == [
        {"recipient_id": "web-other-0002", "text": apology}
    ]


def test_the_marker_is_dropped_and_the_rest_kept(rest: ChannelServer) -> None:
    body = post(rest, "web-other-0003", "交接").json()
    assert body == [{"recipient_id": "web-other-0003", "text": "工作人员已接入，请稍候。"}]
    # Other custom messages are not the marker: they pass through.
    body = post(rest, "web-other-0003", "你好").json()
    assert {"recipient_id": "web-other-0003", "custom": {"chip": "other"}} in body


def test_streamed_answers_drop_the_marker_too(rest: ChannelServer) -> None:
    resp = post(rest, "web-other-0004", "交接", stream="true")
    lines = [json.loads(line) for line in resp.text.splitlines() if line.strip()]
    assert lines == [{"recipient_id": "web-other-0004", "text": "工作人员已接入，请稍候。"}]
    resp = post(rest, TAKEN_OVER, "有人吗", stream="true")
    assert resp.status_code == 200 and resp.text.strip() == ""
