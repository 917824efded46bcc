"""The safe REST channel: "/" commands neutralised, length capped, sender required."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

BOT_DIR = Path(__file__).resolve().parents[2] / "bot"
if str(BOT_DIR) not in sys.path:
    sys.path.insert(0, str(BOT_DIR))

from rasa.core.channels.channel import UserMessage  # noqa: E402
from rasa.nlu.classifiers.regex_message_handler import RegexMessageHandler  # noqa: E402
from rasa.shared.nlu.training_data.message import Message  # noqa: E402

from channels import (  # noqa: E402
    MAX_MESSAGE_CHARS,
    clean_user_text,
    neutralize_slash,
)
from channels.rest import SafeRestInput  # noqa: E402


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("/request_human", "／request_human"),
        (
            '  /inform{"id_number":"37020319800101123X"}',
            '／inform{"id_number":"37020319800101123X"}',
        ),
        ("\u3000/greet", "／greet"),
        ("//affirm", "／/affirm"),
        ("观象山庄3号楼2单元501", "观象山庄3号楼2单元501"),
        ("我家是3/2/501", "我家是3/2/501"),
        ("都不是", "都不是"),
    ],
)
def test_neutralize_slash(typed: str, expected: str) -> None:
    assert neutralize_slash(typed) == expected


@pytest.mark.parametrize(
    "typed",
    ["/request_human", ' /inform{"id_number":"37020319800101123X"}', "\t/check_petition"],
)
def test_rasa_regex_handler_no_longer_parses_neutralised_text(typed: str) -> None:
    handler = RegexMessageHandler()
    raw = handler.process([Message(data={"text": typed})])[0]
    assert raw.get("intent") is not None  # Rasa itself would force an intent on the raw text
    safe = handler.process([Message(data={"text": neutralize_slash(typed)})])[0]
    assert safe.get("intent") is None
    assert not safe.get("entities")


def test_clean_user_text_caps_length_and_rejects_empty() -> None:
    assert clean_user_text("x" * MAX_MESSAGE_CHARS) == ("x" * MAX_MESSAGE_CHARS, None)
    text, reply = clean_user_text("我" * (MAX_MESSAGE_CHARS + 1))
    assert text is None and reply is not None and "500" in reply and "分几条" in reply
    assert clean_user_text("   ")[0] is None
    assert clean_user_text(None)[0] is None


def _route(channel: SafeRestInput, received: list[UserMessage], uri: str):
    async def on_new_message(message: UserMessage) -> None:
        received.append(message)
        await message.output_channel.send_text_message(message.sender_id, "收到")

    blueprint = channel.blueprint(on_new_message)
    for route in blueprint._future_routes:
        if route.uri == uri:
            return route.handler
    raise AssertionError(f"no route {uri}")


def _post(handler, body: Any, args: dict | None = None) -> tuple[int, Any]:
    request = SimpleNamespace(json=body, args=args or {})
    response = asyncio.run(handler(request))
    return response.status, json.loads(response.body)


def test_webhook_passes_neutralised_text_to_rasa() -> None:
    received: list[UserMessage] = []
    handler = _route(SafeRestInput(), received, "/webhook")
    status, body = _post(handler, {"sender": "u1", "message": "/request_human"})
    assert status == 200
    assert body == [{"recipient_id": "u1", "text": "收到"}]
    assert [m.text for m in received] == ["／request_human"]
    assert received[0].sender_id == "u1" and received[0].input_channel == "rest"


def test_webhook_answers_too_long_messages_without_calling_rasa() -> None:
    received: list[UserMessage] = []
    handler = _route(
        SafeRestInput.from_credentials({"max_message_chars": 20}), received, "/webhook"
    )
    status, body = _post(handler, {"sender": "u2", "message": "我家的房本" * 5})
    assert status == 200 and received == []
    assert body[0]["recipient_id"] == "u2" and "20" in body[0]["text"]
    status, body = _post(handler, {"sender": "u2", "message": "我家的房本" * 4})
    assert [m.text for m in received] == ["我家的房本" * 4]


@pytest.mark.parametrize(
    "body",
    [
        {"message": "你好"},
        {"sender": "", "message": "你好"},
        {"sender": "x" * 200, "message": "你好"},
        {"sender": "u3", "message": {"text": "你好"}},
        ["not", "an", "object"],
    ],
)
def test_webhook_refuses_malformed_requests(body: Any) -> None:
    received: list[UserMessage] = []
    handler = _route(SafeRestInput(), received, "/webhook")
    status, payload = _post(handler, body)
    assert status == 400 and received == []
    assert set(payload) == {"code", "message"}


def test_webhook_keeps_a_plain_declared_input_channel_only() -> None:
    received: list[UserMessage] = []
    handler = _route(SafeRestInput(), received, "/webhook")
    _post(handler, {"sender": "u4", "message": "你好", "input_channel": "webchat"})
    _post(handler, {"sender": "u4", "message": "你好", "input_channel": "<script>"})
    assert [m.input_channel for m in received] == ["webchat", "rest"]


def test_failures_are_logged_without_the_text(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(message: UserMessage) -> None:
        raise RuntimeError("boom")

    blueprint = SafeRestInput().blueprint(broken)
    handler = next(r.handler for r in blueprint._future_routes if r.uri == "/webhook")
    status, body = _post(handler, {"sender": "u5", "message": "身份证37020319800101123X"})
    assert status == 200 and body == []
    assert "message handling failed" in caplog.text
    assert "37020319800101123X" not in caplog.text


def test_channel_keeps_the_rest_url_name() -> None:
    assert SafeRestInput.name() == "rest"
    assert SafeRestInput().url_prefix() == "rest"


def test_a_turn_without_any_message_gets_the_domains_apology() -> None:
    """The action server down: Rasa sends nothing, the resident still reads an answer."""

    async def silent(message: UserMessage) -> None:
        return None

    blueprint = SafeRestInput().blueprint(silent)
    handler = next(r.handler for r in blueprint._future_routes if r.uri == "/webhook")
    domain = SimpleNamespace(responses={"utter_error_generic": [{"text": "抱歉，出了点问题。"}]})
    app = SimpleNamespace(ctx=SimpleNamespace(agent=SimpleNamespace(domain=domain)))
    request = SimpleNamespace(json={"sender": "u9", "message": "你好"}, args={}, app=app)
    response = asyncio.run(handler(request))
    assert json.loads(response.body) == [{"recipient_id": "u9", "text": "抱歉，出了点问题。"}]
