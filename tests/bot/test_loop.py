"""The loop on the bot's side (docs/loop.md), one turn at a time with the api mocked (respx):
the conversation's mode first, 转人工, 不用通知我了 / 恢复通知, 满意 / 基本满意 / 不满意, and the
petition check with the departments' answers. The same paths against the real api run in
test_loop_real_api.py.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from rasa_sdk.executor import CollectingDispatcher

from actions import text as textmod
from actions.converse import ActionConverse
from actions.sensitive import seal

from . import payloads
from .conftest import API, make_tracker, slot_events

pytestmark = pytest.mark.asyncio
TURN = "/api/v1/conversations/turn"
NUMBER = "XF-20261201-0001"


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    """The api, mocked; every turn starts in mode `bot` unless a test says otherwise."""
    with respx.mock(base_url=API, assert_all_called=False) as router:
        router.post(TURN, name="turn").mock(
            return_value=httpx.Response(200, json=payloads.TURN_BOT)
        )
        yield router


def answer_turn(api: respx.MockRouter, state: dict[str, Any]) -> None:
    """Make the api answer the start of the turn with `state`."""
    api.routes["turn"].mock(return_value=httpx.Response(200, json=state))


async def run(
    domain: dict[str, Any],
    said: str,
    intent: str = "inform",
    *,
    slots: dict[str, Any] | None = None,
    entities: list[dict[str, Any]] | None = None,
    confidence: float = 0.9,
    channel: str = "webchat",
) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
    """One turn of action_converse: (text and button titles shown, messages, events)."""
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(
        text=said, intent=intent, slots=slots, entities=entities, channel=channel
    )
    tracker.latest_message["intent"]["confidence"] = confidence
    events = await ActionConverse().run(dispatcher, tracker, domain)
    shown = "\n".join(
        [m.get("text") or "" for m in dispatcher.messages]
        + [b["title"] for m in dispatcher.messages for b in m.get("buttons") or []]
    )
    return shown, dispatcher.messages, events


def titles(messages: list[dict[str, Any]]) -> list[str]:
    """The button titles of a reply."""
    return [b["title"] for m in messages for b in m.get("buttons") or []]


def body(route: respx.Route) -> dict[str, Any]:
    """The JSON body of the route's last request."""
    return dict(json.loads(route.calls.last.request.content))


# -- the start of every turn --------------------------------------------------------------------


async def test_every_turn_first_tells_the_api_what_was_said_masked(domain, api) -> None:
    said = "我叫王秀英，电话13912345678，身份证990101195909035525"
    entities = [{"entity": "person_name", "value": "王秀英", "start": 2, "end": 5}]
    await run(domain, said, "inform", entities=entities)
    sent = body(api.routes["turn"])
    assert sent["channel"] == "webchat"
    assert "王秀英" not in sent["text"] and "王**" in sent["text"]
    assert "13912345678" not in sent["text"] and "139****5678" in sent["text"]
    assert "990101195909035525" not in sent["text"] and sent["text"].endswith("5525")
    request = api.routes["turn"].calls.last.request
    assert request.headers["X-Sender-Id"] == "test-sender"
    assert request.headers["Authorization"].startswith("Service ")


async def test_the_answer_to_the_name_question_is_masked_whole(domain, api) -> None:
    slots = {"task": "petition", "requested_slot": "person_name"}
    await run(domain, "欧阳秀英", slots=slots)
    assert body(api.routes["turn"])["text"] == "欧***"


async def test_taken_over_the_bot_says_nothing_and_changes_nothing(domain, api) -> None:
    answer_turn(api, payloads.TURN_STAFF)
    lookup = api.post("/api/v1/lookup").mock(
        return_value=httpx.Response(200, json=payloads.unit_match())
    )
    slots = {"task": "petition", "requested_slot": "phone", "person_name": seal("王秀英")}
    shown, messages, events = await run(domain, "13912345678", slots=slots)
    assert messages == [{"custom": {"takeover": True}}] or [
        m.get("custom") or m.get("json_message") for m in messages
    ] == [{"takeover": True}]
    assert not shown.strip() and events == []
    shown, messages, events = await run(domain, "观象山庄3号楼2单元501", "ask_certificate_status")
    assert not shown.strip() and events == [] and not lookup.called


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(500),
        httpx.Response(404, json={"code": "not_found", "message": "没有找到您要的内容。"}),
        httpx.Response(200, json={"mode": "sideways"}),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
    ],
    ids=["500", "404", "odd", "refused", "timeout"],
)
async def test_without_the_api_the_bot_carries_on_and_logs_no_personal_data(
    domain, api, failure, caplog
) -> None:
    if isinstance(failure, Exception):
        api.routes["turn"].mock(side_effect=failure)
    else:
        api.routes["turn"].mock(return_value=failure)
    caplog.set_level(logging.WARNING)
    shown, _, events = await run(domain, "你好 我叫王秀英 13912345678", "greet")
    assert "房本助手" in shown
    warnings = [r.getMessage() for r in caplog.records if r.name == "actions.loop"]
    assert warnings and not any("13912345678" in w or "王秀英" in w for w in warnings)


async def test_the_turn_call_is_short(domain, api, monkeypatch) -> None:
    from actions.clients import api as client

    assert client.settings.turn_timeout <= 2.0
    seen: list[float] = []

    def slow(request: httpx.Request) -> httpx.Response:
        seen.append(float(request.extensions["timeout"]["read"]))
        return httpx.Response(200, json=payloads.TURN_BOT)

    api.routes["turn"].mock(side_effect=slow)
    await run(domain, "你好", "greet")
    assert seen and seen[0] <= client.settings.turn_timeout


# -- 不用通知我了 / 恢复通知 ----------------------------------------------------------------------


@pytest.mark.parametrize("said", ["不用通知我了", "别给我发消息了", "取消通知", "以后别再通知我了"])
async def test_no_more_notifications(domain, api, said: str) -> None:
    route = api.post("/api/v1/conversations/notify").mock(
        return_value=httpx.Response(200, json={"notify": False})
    )
    shown, messages, _ = await run(domain, said, "deny")
    assert body(route) == {"notify": False}
    assert "不再" in shown and "恢复通知" in shown
    assert sum(len(m.get("text") or "") for m in messages) <= 60


async def test_notifications_back_on(domain, api) -> None:
    route = api.post("/api/v1/conversations/notify").mock(
        return_value=httpx.Response(200, json={"notify": True})
    )
    shown, _, _ = await run(domain, "恢复通知", "inform")
    assert body(route) == {"notify": True} and "已恢复通知" in shown


async def test_notifications_off_in_the_middle_of_a_form_keeps_the_form(domain, api) -> None:
    api.post("/api/v1/conversations/notify").mock(
        return_value=httpx.Response(200, json={"notify": False})
    )
    slots = {"task": "petition", "requested_slot": "phone", "person_name": seal("王秀英")}
    shown, _, events = await run(domain, "取消通知", "deny", slots=slots)
    assert "恢复通知" in shown and "手机号" in shown and "已经取消了" not in shown
    assert "task" not in slot_events(events)


async def test_notifications_setting_fails_gently(domain, api) -> None:
    api.post("/api/v1/conversations/notify").mock(side_effect=httpx.ConnectError("down"))
    shown, _, _ = await run(domain, "不用通知我了", "deny")
    assert "没能保存" in shown


# -- 转人工 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("said", ["转人工", "找人工", "人工客服", "给我转人工服务"])
async def test_a_person_in_office_hours_queue_wait_and_the_petition_offer(
    domain, api, said: str
) -> None:
    route = api.post("/api/v1/conversations/handoff").mock(
        return_value=httpx.Response(200, json=payloads.HANDOFF_OPEN)
    )
    shown, messages, events = await run(domain, said, "request_human")
    assert body(route) == {"channel": "webchat"}
    assert "已为您转人工，前面还有2位，预计等待约10分钟" in shown
    assert titles(messages) == ["我要信访"] and "姓名" not in shown
    # "好的" while waiting is not a yes to a petition.
    assert not slot_events(events).get("offered_human")


async def test_a_person_outside_office_hours_says_when_and_offers_the_petition(domain, api) -> None:
    api.post("/api/v1/conversations/handoff").mock(
        return_value=httpx.Response(200, json=payloads.HANDOFF_CLOSED)
    )
    shown, messages, events = await run(domain, "转人工", "request_human")
    assert "工作日 9:00—17:30" in shown and "周一 9:00" in shown and "前面还有" not in shown
    assert titles(messages) == ["我要信访", "先不用"]
    assert slot_events(events)["offered_human"] is True
    shown, _, events = await run(domain, "好的", "affirm", slots={"offered_human": True})
    assert "姓名" in shown and slot_events(events)["task"] == "petition"


async def test_first_in_line_and_the_api_down(domain, api) -> None:
    route = api.post("/api/v1/conversations/handoff").mock(
        return_value=httpx.Response(200, json={**payloads.HANDOFF_OPEN, "position": 0})
    )
    shown, _, _ = await run(domain, "转人工", "request_human")
    assert "马上" in shown and "前面还有" not in shown
    route.mock(side_effect=httpx.ConnectError("down"))
    shown, messages, _ = await run(domain, "转人工", "request_human")
    assert "接不通" in shown and "我要信访" in titles(messages)


@pytest.mark.parametrize(
    ("said", "intent"),
    [("我要信访", "request_human"), ("我要投诉", "request_human"), ("我要信访", "nlu_fallback")],
)
async def test_an_explicit_petition_goes_straight_to_the_form(
    domain, api, said: str, intent: str
) -> None:
    route = api.post("/api/v1/conversations/handoff").mock(
        return_value=httpx.Response(200, json=payloads.HANDOFF_OPEN)
    )
    shown, _, events = await run(domain, said, intent)
    assert "姓名" in shown and slot_events(events)["task"] == "petition"
    assert not route.called


async def test_the_staff_button_asks_for_a_person(domain, api) -> None:
    route = api.post("/api/v1/conversations/handoff").mock(
        return_value=httpx.Response(200, json=payloads.HANDOFF_OPEN)
    )
    shown, _, _ = await run(domain, "找工作人员", "request_human")
    assert route.called and "转人工" in shown
    for name in ("utter_greet", "utter_menu", "utter_status_more"):
        payloads_ = [b["payload"] for b in domain["responses"][name][0]["buttons"]]
        assert "找工作人员" in payloads_, name


async def test_asking_whether_it_is_a_person_is_no_handoff(domain, api) -> None:
    route = api.post("/api/v1/conversations/handoff")
    shown, _, _ = await run(domain, "你是人工吗", "bot_challenge")
    assert "机器人" in shown and not route.called
    assert not textmod.wants_person("你是人工智能吗")


async def test_a_person_in_the_middle_of_the_petition_keeps_the_form(domain, api) -> None:
    route = api.post("/api/v1/conversations/handoff").mock(
        return_value=httpx.Response(200, json=payloads.HANDOFF_OPEN)
    )
    slots = {"task": "petition", "requested_slot": "phone", "person_name": seal("王秀英")}
    shown, messages, events = await run(domain, "转人工", "request_human", slots=slots)
    assert route.called and "前面还有2位" in shown and "手机号" in shown
    assert "我要信访" not in titles(messages) and "task" not in slot_events(events)


# -- 满意 / 基本满意 / 不满意 ---------------------------------------------------------------------


@pytest.fixture
def feedback(api: respx.MockRouter) -> respx.Route:
    """The feedback endpoint; the turn says a closed petition awaits the resident's answer."""
    answer_turn(api, payloads.TURN_FEEDBACK)
    return api.post(f"/api/v1/petitions/{NUMBER}/feedback").mock(
        return_value=httpx.Response(200, json=payloads.FEEDBACK_CLOSED)
    )


@pytest.mark.parametrize(
    ("said", "intent", "verdict"),
    [
        ("满意", "affirm", "satisfied"),
        ("挺好的，谢谢", "thank", "satisfied"),
        ("基本满意", "affirm", "basically_satisfied"),
        ("还行吧", "nlu_fallback", "basically_satisfied"),
    ],
)
async def test_satisfied_is_sent_and_thanked(domain, feedback, said, intent, verdict) -> None:
    shown, _, events = await run(domain, said, intent)
    assert body(feedback) == {"satisfaction": verdict}
    assert "谢谢您的评价" in shown and "满意吗" not in shown
    assert slot_events(events)["feedback_asked"] == NUMBER


async def test_unsatisfied_asks_why_once_then_sends_the_reason_and_the_review_date(
    domain, api, feedback
) -> None:
    feedback.mock(return_value=httpx.Response(200, json=payloads.FEEDBACK_REVIEW))
    shown, _, events = await run(domain, "不满意", "deny")
    assert "哪里不满意" in shown and not feedback.called
    slots = slot_events(events)
    assert (slots["task"], slots["requested_slot"], slots["petition_number"]) == (
        "feedback",
        "reason",
        NUMBER,
    )
    reason = "答复说了等于没说，开发商电话13912345678打不通"
    shown, _, events = await run(domain, reason, "complain", slots=slots)
    sent = body(feedback)
    assert sent["satisfaction"] == "unsatisfied"
    assert "答复说了等于没说" in sent["reason"] and "13912345678" not in sent["reason"]
    assert "复查" in shown and "12月22日" in shown and "哪里不满意" not in shown
    assert slot_events(events)["task"] is None


async def test_unsatisfied_with_its_reason_is_sent_at_once(domain, feedback) -> None:
    feedback.mock(return_value=httpx.Response(200, json=payloads.FEEDBACK_REVIEW))
    shown, _, _ = await run(domain, "不满意，部门答复说了等于没说", "complain")
    assert body(feedback)["reason"] == "不满意，部门答复说了等于没说"
    assert "复查" in shown and "12月22日" in shown


async def test_no_no_not_solved_is_unsatisfied(domain, feedback) -> None:
    shown, _, events = await run(domain, "不行，没解决", "deny")
    assert "哪里不满意" in shown and slot_events(events)["task"] == "feedback"


async def test_a_new_question_after_why_is_answered_and_unsatisfied_sent_without_a_reason(
    domain, api, feedback
) -> None:
    feedback.mock(return_value=httpx.Response(200, json=payloads.FEEDBACK_REVIEW))
    api.post("/api/v1/lookup").mock(return_value=httpx.Response(200, json=payloads.NONE))
    slots = {"task": "feedback", "requested_slot": "reason", "petition_number": NUMBER}
    shown, _, events = await run(
        domain, "我家房本办到哪一步了", "ask_certificate_status", slots=slots, confidence=0.95
    )
    assert body(feedback) == {"satisfaction": "unsatisfied"}
    assert "复查" in shown and "地址" in shown  # the status question is asked for the address
    assert slot_events(events)["task"] == "lookup"


async def test_a_statement_after_why_is_the_reason_even_if_it_sounds_like_a_status_question(
    domain, feedback
) -> None:
    """ "房本还是没拿到" after 哪里不满意？ is why, though the NLU reads a status question."""
    feedback.mock(return_value=httpx.Response(200, json=payloads.FEEDBACK_REVIEW))
    slots = {"task": "feedback", "requested_slot": "reason", "petition_number": NUMBER}
    shown, _, _ = await run(
        domain, "房本还是没拿到", "ask_certificate_status", slots=slots, confidence=0.9
    )
    assert body(feedback) == {"satisfaction": "unsatisfied", "reason": "房本还是没拿到"}
    assert "复查" in shown


async def test_anything_else_is_handled_and_asked_once_with_buttons(domain, api, feedback) -> None:
    shown, messages, events = await run(domain, "你好", "greet")
    assert "房本助手" in shown and f"{NUMBER}已办结" in shown and not feedback.called
    assert titles(messages)[-3:] == ["满意", "基本满意", "不满意"]
    asked = slot_events(events)["feedback_asked"]
    shown, _, _ = await run(domain, "你好", "greet", slots={"feedback_asked": asked})
    assert "满意吗" not in shown


async def test_a_refused_answer_is_said_and_the_api_down_is_apologised(domain, feedback) -> None:
    feedback.mock(
        return_value=httpx.Response(
            409, json={"code": "feedback_given", "message": "这件信访您已经评价过了。"}
        )
    )
    shown, _, _ = await run(domain, "满意", "affirm")
    assert "已经评价过了" in shown
    feedback.mock(side_effect=httpx.ConnectError("down"))
    shown, _, _ = await run(domain, "满意", "affirm")
    assert "没能记下" in shown


async def test_inside_a_task_only_a_tapped_verdict_counts(domain, api, feedback) -> None:
    slots = {
        "task": "petition",
        "requested_slot": "consent",
        "person_name": seal("王秀英"),
        "phone": seal("13912345678"),
        "address": "观象山庄3号楼2单元501",
        "description": "等了五年",
    }
    shown, _, events = await run(domain, "不行", "deny", slots=slots)
    assert not feedback.called and "不会提交" in shown
    slots["requested_slot"] = "phone"
    shown, _, events = await run(domain, "满意", "affirm", slots=slots)
    assert body(feedback) == {"satisfaction": "satisfied"}
    assert "谢谢您的评价" in shown and "手机号" in shown and "task" not in slot_events(events)


async def test_a_verdict_without_a_question_pending_is_an_ordinary_message(domain, api) -> None:
    route = api.post(f"/api/v1/petitions/{NUMBER}/feedback")
    shown, _, _ = await run(domain, "满意", "affirm")
    assert not route.called and "谢谢您的评价" not in shown


# -- the petition check -------------------------------------------------------------------------


async def test_the_check_shows_the_departments_answer_the_next_step_and_shanghai_dates(
    domain, api
) -> None:
    api.post("/api/v1/petitions/lookup").mock(
        return_value=httpx.Response(200, json=payloads.PETITION_ANSWERED)
    )
    filed = {"number": NUMBER, "phone": seal("13912345678")}
    shown, messages, _ = await run(
        domain, "我的信访怎么样了", "check_petition", slots={"filed": filed}
    )
    assert "核实中" in shown and "住建局答复（12月3日）：已约谈开发企业" in shown
    assert "下一步：核实开发企业的整改情况" in shown
    assert "办结期限：12月31日" in shown
    assert "最近更新：12月4日" in shown  # 16:30 UTC is the next day in Shanghai
    assert sum(len(m.get("text") or "") for m in messages) < 400


async def test_a_closed_check_is_short_with_the_outcome_and_asks_satisfaction(domain, api) -> None:
    answer_turn(api, payloads.TURN_FEEDBACK)
    api.post("/api/v1/petitions/lookup").mock(
        return_value=httpx.Response(200, json=payloads.PETITION_CLOSED)
    )
    filed = {"number": NUMBER, "phone": seal("13912345678")}
    shown, messages, _ = await run(
        domain, "我的信访怎么样了", "check_petition", slots={"filed": filed}
    )
    check = messages[0]["text"]
    assert "已办结" in check and "办理结果：开发企业已补齐消防整改" in check
    assert "办结日期：12月20日" in check and "下一步" in check
    assert check.count("答复（12月10日）") == 3 and check.count("…") >= 3
    assert len(check) < 400
    for line in check.splitlines():
        if "答复（" in line:
            assert len(line.split("：", 1)[1]) <= 121
    assert "满意吗" in shown and titles(messages)[-3:] == ["满意", "基本满意", "不满意"]


async def test_forgot_the_number_lists_the_newest_in_full(domain, api) -> None:
    older = {**payloads.PETITION_STATUS, "number": "XF-20261101-0003", "status_label": "已办结"}
    api.post("/api/v1/petitions/lookup").mock(
        return_value=httpx.Response(200, json={"petitions": [payloads.PETITION_CLOSED, older]})
    )
    slots = {"task": "recover", "requested_slot": "person_name", "phone": seal("13912345678")}
    shown, messages, _ = await run(domain, "李秀梅", slots=slots)
    text = messages[0]["text"]
    assert NUMBER in text and "XF-20261101-0003" in text and "办理结果" in text
    assert len(text) < 400


# -- the petition carries what the bot explained ------------------------------------------------


async def test_the_petition_carries_the_blockers_the_bot_explained(domain, api) -> None:
    api.post("/api/v1/lookup").mock(return_value=httpx.Response(200, json=payloads.unit_match()))
    _, _, events = await run(domain, "观象山庄3号楼2单元501", "ask_certificate_status")
    explained = slot_events(events)["explained_blockers"]
    assert explained == ["fire_acceptance"]
    route = api.post("/api/v1/petitions").mock(
        return_value=httpx.Response(
            200,
            json={
                "number": NUMBER,
                "status": "accepted",
                "status_label": "已受理",
                "answer_due": "2026-12-08",
                "provisional": False,
            },
        )
    )
    slots = {
        "task": "petition",
        "requested_slot": "consent",
        "person_name": seal("王秀英"),
        "phone": seal("13912345678"),
        "address": "观象山庄3号楼2单元501",
        "description": "等了五年",
        "home": slot_events(events)["home"],
        "explained_blockers": explained,
    }
    shown, _, _ = await run(domain, "同意", "affirm", slots=slots)
    sent = body(route)
    assert sent["blockers"] == ["fire_acceptance"] and sent["project_code"] == "QS001"
    assert NUMBER in shown and "12月8日" in shown
    assert set(sent) <= set(payloads.PETITION_CREATE)
