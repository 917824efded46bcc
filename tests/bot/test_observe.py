"""The bot's reports to the maintainers' NLU inbox (docs/maintainers.md), one turn of
action_converse at a time with the api mocked (respx): only when a reason applies, masked,
with the conversation around the message, and never at the reply's expense. The same path over
the real stack runs in tests/e2e/test_nlu_inbox.py."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from rasa_sdk.executor import CollectingDispatcher

from actions import observe
from actions.clients import api as api_client
from actions.converse import ActionConverse
from actions.sensitive import seal

from . import payloads
from .conftest import API, make_tracker

pytestmark = pytest.mark.asyncio
OBSERVE = "/api/v1/nlu/observations"
PHONE = "13912345678"
ID_NUMBER = "110101199003071234"


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    """The api, mocked: every turn in mode `bot`, every report stored."""
    with respx.mock(base_url=API, assert_all_called=False) as router:
        router.post("/api/v1/conversations/turn", name="turn").mock(
            return_value=httpx.Response(200, json=payloads.TURN_BOT)
        )
        # A message that might name an estate is looked up first: none here.
        router.post("/api/v1/lookup").mock(
            return_value=httpx.Response(200, json={"match": "none", "message": "没有查到。"})
        )
        router.post(OBSERVE, name="observe").mock(return_value=httpx.Response(201, json={"id": 1}))
        yield router


def user(text: str, intent: str, confidence: float, **parse: Any) -> dict[str, Any]:
    """A resident's earlier message as a tracker event."""
    data = {"text": text, "intent": {"name": intent, "confidence": confidence}, **parse}
    return {"event": "user", "text": text, "parse_data": data, "input_channel": "webchat"}


def bot(text: str) -> dict[str, Any]:
    """One of the bot's earlier messages."""
    return {"event": "bot", "text": text}


async def run(
    domain: dict[str, Any],
    said: str,
    intent: str,
    confidence: float = 0.9,
    *,
    events: list[dict[str, Any]] | None = None,
    ranking: list[dict[str, Any]] | None = None,
    entities: list[dict[str, Any]] | None = None,
    slots: dict[str, Any] | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """One turn; what the resident sees."""
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(
        text=said,
        intent=intent,
        events=events,
        entities=entities,
        slots=slots,
        channel="webchat",
    )
    tracker.latest_message["intent"]["confidence"] = confidence
    if ranking:
        tracker.latest_message["intent_ranking"] = ranking
    tracker.events[-1]["metadata"] = {"model_id": "20261202-123456-model"}
    events_out = await ActionConverse().run(dispatcher, tracker, domain)
    shown = "\n".join(m.get("text") or "" for m in dispatcher.messages)
    return shown, events_out


def reports(api: respx.MockRouter) -> list[dict[str, Any]]:
    """The bodies the bot posted to the inbox."""
    return [json.loads(call.request.content) for call in api.routes["observe"].calls]


async def test_nothing_is_sent_on_the_normal_path(domain, api) -> None:
    """A confident, answered message costs no call at all."""
    shown, _ = await run(domain, "谢谢你啊", "thank", 0.97)
    assert "不客气" in shown
    assert not api.routes["observe"].called


async def test_a_fallback_is_reported_masked(domain, api) -> None:
    """Not understood: the masked text, the NLU's runner-up, the context with this reply."""
    said = f"呜呜哦哦 {PHONE} 嗯嗯"
    shown, _ = await run(
        domain,
        said,
        "nlu_fallback",
        0.3,
        events=[user("你好", "greet", 0.99), bot("您好，我是房本助手。")],
        ranking=[
            {"name": "nlu_fallback", "confidence": 0.3},
            {"name": "complain", "confidence": 0.22},
            {"name": "inform", "confidence": 0.2},
        ],
    )
    assert "没太看懂" in shown
    (report,) = reports(api)
    assert report["reason"] == "fallback"
    assert report["text"] == "呜呜哦哦 139****5678 嗯嗯"
    assert report["predicted_intent"] == "complain" and report["confidence"] == 0.22
    assert report["channel"] == "webchat" and report["model_id"] == "20261202-123456-model"
    assert [t["from"] for t in report["context"]] == ["resident", "bot", "resident", "bot"]
    assert report["context"][2]["text"] == "呜呜哦哦 139****5678 嗯嗯"
    assert "没太看懂" in report["context"][3]["text"]
    assert PHONE not in json.dumps(report, ensure_ascii=False)
    request = api.routes["observe"].calls.last.request
    assert request.headers["X-Sender-Id"] == "test-sender"
    assert request.headers["Authorization"].startswith("Service ")


async def test_out_of_scope_and_low_confidence(domain, api) -> None:
    """Out of scope is reported even when sure; an answered but unsure message as low."""
    await run(domain, "明天天气咋样", "out_of_scope", 0.96)
    await run(domain, "多谢多谢", "thank", 0.5)
    first, second = reports(api)
    assert (first["reason"], first["predicted_intent"]) == ("out_of_scope", "out_of_scope")
    assert (second["reason"], second["confidence"]) == ("low_confidence", 0.5)


async def test_threshold_is_the_setting(domain, api, monkeypatch) -> None:
    """NLU_INBOX_CONFIDENCE decides what is unsure."""
    lower = dataclasses.replace(observe.settings, nlu_inbox_confidence=0.3)
    monkeypatch.setattr(observe, "settings", lower)
    await run(domain, "多谢多谢", "thank", 0.5)
    assert not api.routes["observe"].called


async def test_an_answer_to_a_form_question_is_not_low_confidence(domain, api) -> None:
    """The petition form takes the description whatever the NLU thought of it."""
    await run(
        domain,
        "交房八年了房本一直没下来，开发商也找不到人",
        "complain",
        0.45,
        slots={"task": "petition", "requested_slot": "description"},
    )
    assert not api.routes["observe"].called


async def test_the_message_before_a_complaint_is_misunderstood(domain, api) -> None:
    """ "不是这个意思": the previous message goes in, with its own prediction and the names the
    conversation revealed masked."""
    earlier = user(
        "我叫刘桂芳 问下娃上学的事",
        "policy_faq",
        0.81,
        entities=[{"entity": "person_name", "start": 2, "end": 5, "value": "刘桂芳"}],
        response_selector={
            "policy_faq": {
                "response": {"intent_response_key": "policy_faq/processing_time"},
            }
        },
    )
    await run(
        domain,
        "不是这个意思，我问的是孩子上学",
        "complain",
        0.88,
        events=[earlier, bot("一般办证要三十个工作日。")],
        slots={"person_name": seal("刘桂芳")},
    )
    (report,) = reports(api)
    assert report["reason"] == "misunderstood"
    assert report["text"] == "我叫刘** 问下娃上学的事"
    assert report["predicted_intent"] == "policy_faq/processing_time"
    assert report["confidence"] == 0.81
    assert report["entities"] == [{"entity": "person_name", "start": 2, "end": 5, "value": "刘**"}]
    assert "刘桂芳" not in json.dumps(report, ensure_ascii=False)
    assert report["context"][-2]["text"] == "不是这个意思，我问的是孩子上学"


async def test_handoff_reports_the_messages_before(domain, api) -> None:
    """转人工: the resident's last messages before it, each with reason handoff."""
    api.post("/api/v1/conversations/handoff").mock(
        return_value=httpx.Response(200, json=payloads.HANDOFF_OPEN)
    )
    history = [
        user("房本", "ask_certificate_status", 0.7),
        bot("请告诉我小区和楼号。"),
        user(f"身份证{ID_NUMBER}", "inform", 0.9),
        bot("请问怎么称呼您？"),
        user("你们这个到底行不行", "complain", 0.66),
        bot("理解您的心情。"),
    ]
    await run(domain, "转人工", "request_human", 0.98, events=history)
    found = reports(api)
    assert [r["reason"] for r in found] == ["handoff"] * 3
    assert [r["text"] for r in found] == [
        "你们这个到底行不行",
        "身份证**************1234",
        "房本",
    ]
    assert ID_NUMBER not in json.dumps(found, ensure_ascii=False)


async def test_a_failing_inbox_never_changes_the_reply(domain, api, caplog) -> None:
    """The api refusing or failing: same reply, a warning with no text in it."""
    said = f"哦哦哦 {PHONE}"
    baseline, _ = await run(domain, said, "nlu_fallback", 0.2)
    api.routes["observe"].mock(return_value=httpx.Response(500, json={"code": "x"}))
    with caplog.at_level(logging.WARNING, logger="actions.observe"):
        shown, _ = await run(domain, said, "nlu_fallback", 0.2)
    assert shown == baseline
    warnings = [r.getMessage() for r in caplog.records if r.name == "actions.observe"]
    assert warnings == ["nlu inbox: 1 of 1 report(s) not sent (ApiUnavailable)"]
    assert all(
        PHONE not in r.getMessage() and "哦哦哦" not in r.getMessage() for r in caplog.records
    )


async def test_a_slow_inbox_costs_at_most_the_timeout(domain, api, monkeypatch) -> None:
    """A hanging api holds the turn no longer than NLU_INBOX_TIMEOUT."""
    quick = dataclasses.replace(observe.settings, nlu_inbox_timeout=0.3)
    monkeypatch.setattr(observe, "settings", quick)
    monkeypatch.setattr(api_client, "settings", quick)

    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(201, json={"id": 1})

    api.routes["observe"].mock(side_effect=hang)
    started = time.monotonic()
    shown, _ = await run(domain, "咿咿呀呀", "nlu_fallback", 0.1)
    assert time.monotonic() - started < 1.5
    assert "没太看懂" in shown


async def test_a_taken_over_conversation_reports_nothing(domain, api) -> None:
    """A clerk answers: the bot is silent and tells the inbox nothing."""
    api.routes["turn"].mock(
        return_value=httpx.Response(
            200, json={**payloads.TURN_BOT, "mode": "staff", "staff_name": "李*"}
        )
    )
    await run(domain, "呜呜呜", "nlu_fallback", 0.1)
    assert not api.routes["observe"].called
