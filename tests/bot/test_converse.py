"""action_converse with the api mocked (respx): the turn logic, one message at a time.

The same paths against the real api run in test_actions_real_api.py; whole conversations
against the running stack in tests/conversations/.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from rasa_sdk.executor import CollectingDispatcher

from actions import converse
from actions.converse import ActionConverse
from actions.sensitive import is_sealed, seal, unseal

from . import payloads
from .conftest import API, make_tracker, slot_events

pytestmark = pytest.mark.asyncio
GUIDANCE = {"guidance": payloads.GUIDANCE, "faq": [], "blockers": []}


@pytest.fixture(autouse=True)
def _bot_mode() -> Iterator[None]:
    """Inside `respx.mock` the api answers the start of every turn with mode `bot`
    (test_loop.py covers the other modes); without it the call fails and the bot carries on."""
    respx.post(f"{API}/api/v1/conversations/turn", name="conversation_turn").mock(
        return_value=httpx.Response(200, json=payloads.TURN_BOT)
    )
    yield
    respx.mock.pop("conversation_turn", None)


async def turn(
    domain: dict[str, Any],
    text: str,
    intent: str = "inform",
    *,
    slots: dict[str, Any] | None = None,
    entities: list[dict[str, Any]] | None = None,
    response_key: str | None = None,
) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """Run one turn; (all text and button titles, the messages, the slots set)."""
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(
        text=text, intent=intent, slots=slots, entities=entities, response_key=response_key
    )
    events = await ActionConverse().run(dispatcher, tracker, domain)
    shown = "\n".join(
        [m.get("text") or "" for m in dispatcher.messages]
        + [b["title"] for m in dispatcher.messages for b in m.get("buttons") or []]
    )
    return shown, dispatcher.messages, slot_events(events)


def shown_chars(messages: list[dict[str, Any]]) -> int:
    """Characters a resident reads: texts and button titles."""
    return sum(len(m.get("text") or "") for m in messages) + sum(
        len(b["title"]) for m in messages for b in m.get("buttons") or []
    )


@respx.mock
async def test_first_status_answer_is_short_with_the_follow_up_buttons(domain) -> None:
    respx.post(f"{API}/api/v1/lookup").mock(
        return_value=httpx.Response(200, json=payloads.unit_match())
    )
    shown, messages, slots = await turn(domain, "观象山庄3号楼2单元501", "ask_certificate_status")
    assert "观象山庄3号楼2单元501" in shown and "首次登记未完成" in shown
    assert "现在还不能申请转移登记" in shown and "现在就可以申请" not in shown
    assert "3号楼消防设施整改后尚未复验（消防救援大队）" in shown
    assert "2027年6月30日" in shown
    assert shown_chars(messages) <= 250
    titles = [b["title"] for m in messages for b in m.get("buttons") or []]
    assert titles == ["详细原因", "我该做什么", "要带什么材料", "去哪里办", "找工作人员"]
    assert slots["home"]["code"] == "QS001" and slots["home"]["unit_found"] is True


@respx.mock
async def test_ready_home_may_apply_now(domain) -> None:
    found = payloads.unit_match(done=True)
    respx.post(f"{API}/api/v1/lookup").mock(return_value=httpx.Response(200, json=found))
    shown, _, _ = await turn(domain, "观象山庄3号楼2单元501", "ask_certificate_status")
    assert "现在就可以申请" in shown and "还不能" not in shown


@respx.mock
async def test_details_say_no_fault_once_and_one_policy(domain) -> None:
    status = payloads.status()
    second = dict(status["open_blockers"][0], code="civil_defense", name="人防费未落实")
    second["explanation"] = "人防费该由开发企业承担。这不是您的过错。"
    status["open_blockers"] = [
        dict(status["open_blockers"][0], explanation="这是开发企业的责任，不是您的过错。"),
        second,
    ]
    respx.get(f"{API}/api/v1/projects/QS001/status").mock(
        return_value=httpx.Response(200, json=status)
    )
    home = {"code": "QS001", "name": "观象山庄", "initial_done": False, "blockers": 2}
    shown, _, _ = await turn(domain, "详细原因", slots={"home": home})
    assert shown.count("不是您的过错") == 1
    assert shown.count("适用政策") == 1
    assert "人防费未落实" in shown and "消防验收未通过" in shown


@respx.mock
async def test_a_fragment_after_a_found_project_means_that_project(domain) -> None:
    route = respx.post(f"{API}/api/v1/lookup").mock(
        return_value=httpx.Response(200, json=payloads.unit_match())
    )
    home = {"code": "QS001", "name": "观象山庄", "initial_done": False, "unit_found": False}
    await turn(domain, "我家是3号楼2单元501", "inform", slots={"home": home})
    assert route.calls.last.request.content.decode().count("观象山庄3号楼2单元501") == 1


async def test_the_description_takes_whatever_is_typed(domain) -> None:
    slots = {
        "task": "petition",
        "requested_slot": "description",
        "person_name": seal("王秀英"),
        "phone": seal("13912345678"),
        "address": "观象山庄3号楼2单元501",
    }
    shown, messages, set_slots = await turn(
        domain, "去了住建局2次，打了13800138000也没人管", slots=slots
    )
    assert set_slots["description"] == "去了住建局2次，打了138****8000也没人管"
    assert "11位" not in shown
    # The read-back: masked name and phone, the home, who will see it, three buttons.
    assert "王**" in shown and "139****5678" in shown and "观象山庄3号楼2单元501" in shown
    assert [b["title"] for b in messages[-1]["buttons"]] == ["同意", "改一下", "不同意"]
    assert set_slots["requested_slot"] == "consent"


@pytest.mark.parametrize(
    "typed",
    [
        "139 1234 5678",
        "139-1234-5678",
        "+86 139 1234 5678",
        "１３９１２３４５６７８",
        "一三九一二三四五六七八",
    ],
)
async def test_phones_as_residents_type_them(domain, typed: str) -> None:
    slots = {"task": "petition", "requested_slot": "phone", "person_name": seal("王秀英")}
    shown, _, set_slots = await turn(domain, typed, slots=slots)
    assert unseal(set_slots["phone"]) == "13912345678"
    assert set_slots["requested_slot"] == "address"


async def test_a_question_while_the_phone_is_asked_is_answered_and_the_form_resumes(domain) -> None:
    slots = {"task": "petition", "requested_slot": "phone", "person_name": seal("王秀英")}
    shown, _, set_slots = await turn(
        domain,
        "契税我要自己交吗",
        "policy_faq",
        slots=slots,
        response_key="policy_faq/no_fault_buyer",
    )
    assert "11位" not in shown and "手机号" in shown
    assert set_slots.get("task", "petition") == "petition"


@pytest.mark.parametrize("digits", ["99010119590903552", "9901011959090355251"])
async def test_an_id_of_the_wrong_length_gets_a_specific_hint(domain, digits: str) -> None:
    shown, messages, _ = await turn(domain, f"身份证{digits} 沈凤海", "inform")
    assert f"{len(digits)}位" in shown and "18位" in shown
    assert len(messages) == 1


@respx.mock
async def test_id_and_name_in_one_message_start_the_id_lookup(domain) -> None:
    route = respx.post(f"{API}/api/v1/lookup").mock(
        return_value=httpx.Response(200, json=payloads.unit_match())
    )
    shown, _, set_slots = await turn(domain, "沈凤海 身份证990101195909035525", "inform")
    body = route.calls.last.request.content.decode()
    assert "990101195909035525" in body and "沈凤海" in body
    assert "观象山庄" in shown and set_slots["id_number"] is None


@respx.mock
async def test_candidate_buttons_carry_the_project_code(domain) -> None:
    respx.post(f"{API}/api/v1/lookup").mock(
        return_value=httpx.Response(200, json=payloads.AMBIGUOUS)
    )
    _, messages, set_slots = await turn(domain, "阳光花园5号楼", "inform")
    payloads_sent = [b["payload"] for m in messages for b in m.get("buttons") or []]
    assert any(p.endswith("（QS002）") for p in payloads_sent)
    assert any(p.endswith("（QS003）") for p in payloads_sent)
    assert [c["code"] for c in set_slots["candidates"]] == ["QS002", "QS003"]


@respx.mock
async def test_a_petition_filed_here_is_checked_at_once(domain) -> None:
    route = respx.post(f"{API}/api/v1/petitions/lookup").mock(
        return_value=httpx.Response(200, json=payloads.PETITION_STATUS)
    )
    filed = {"number": "XF-20261201-0001", "phone": seal("13912345678")}
    shown, _, _ = await turn(domain, "我的信访怎么样了", "check_petition", slots={"filed": filed})
    assert "XF-20261201-0001" in shown and "已分派" in shown and "12月8日" in shown
    assert "住建局" in shown
    assert "13912345678" in route.calls.last.request.content.decode()


@respx.mock
@pytest.mark.parametrize("failure", ["500", "timeout", "not json", "odd json"])
async def test_whatever_the_api_answers_the_resident_gets_a_reply(domain, failure: str) -> None:
    answers = {
        "500": httpx.Response(500),
        "not json": httpx.Response(200, text="<html>"),
        "odd json": httpx.Response(200, json={"match": "unit", "project": None, "status": []}),
    }
    route = respx.route(host="127.0.0.1")
    if failure == "timeout":
        route.side_effect = httpx.ConnectTimeout("down")
    else:
        route.mock(return_value=answers[failure])
    home = {"code": "QS001", "name": "观象山庄", "initial_done": False}
    for text, intent, slots in [
        ("观象山庄3号楼2单元501", "ask_certificate_status", {}),
        ("详细原因", "inform", {"home": home}),
        ("要带什么材料", "ask_materials", {"home": home}),
        ("我的信访怎么样了", "check_petition", {"filed": {"number": "XF-20261201-0001"}}),
        (
            "同意",
            "affirm",
            {
                "task": "petition",
                "requested_slot": "consent",
                "person_name": seal("王秀英"),
                "phone": seal("13912345678"),
                "address": "观象山庄",
                "description": "等了五年",
            },
        ),
    ]:
        shown, _, _ = await turn(domain, text, intent, slots=slots)
        assert shown.strip(), (failure, text)


async def test_an_action_that_raises_still_answers_and_leaves_the_task(domain, monkeypatch) -> None:
    async def broken(self: converse.Turn) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(converse.Turn, "handle", broken)
    slots = {"task": "petition", "requested_slot": "phone"}
    shown, _, set_slots = await turn(domain, "13912345678", slots=slots)
    assert "出了点问题" in shown
    assert set_slots["task"] is None and set_slots["requested_slot"] is None


async def test_two_misunderstandings_in_a_row_offer_a_person(domain) -> None:
    shown, _, set_slots = await turn(domain, "了吗呢吧", "nlu_fallback")
    assert "没太看懂" in shown
    shown, messages, set_slots = await turn(
        domain, "啊啊", "nlu_fallback", slots={"misunderstood": set_slots["misunderstood"]}
    )
    assert "工作人员" in shown and messages[-1]["buttons"]
    assert "没太看懂" not in shown  # one fallback sentence per turn, never the same twice


async def test_sealed_values_only_in_slots(domain) -> None:
    slots = {"task": "petition", "requested_slot": "person_name"}
    _, _, set_slots = await turn(domain, "王秀英", slots=slots)
    assert is_sealed(set_slots["person_name"])
    assert not any(re.search("王秀英", str(v)) for v in set_slots.values())


@respx.mock
async def test_out_of_scope_says_what_the_bot_can_do_without_a_petition_offer(domain) -> None:
    respx.post(f"{API}/api/v1/lookup").mock(return_value=httpx.Response(200, json=payloads.NONE))
    shown, _, _ = await turn(domain, "明天天气怎么样", "out_of_scope")
    assert "房本" in shown and "转给工作人员" not in shown
    shown, messages, _ = await turn(domain, "hello what is this", "out_of_scope")
    assert "中文" in shown and messages[-1]["buttons"] and shown_chars(messages) < 150


def test_every_follow_up_button_payload_is_a_command(domain) -> None:
    """The buttons under a status answer send payloads the turn knows (domain ↔ COMMANDS)."""
    for response in ("utter_status_more", "utter_status_more_after_details", "utter_who_contacts"):
        for button in domain["responses"][response][0]["buttons"]:
            assert button["payload"] in converse.COMMANDS, button


async def test_a_remark_read_as_deny_does_not_cancel_the_form(domain) -> None:
    slots = {"task": "petition", "requested_slot": "phone", "person_name": seal("张桂兰")}
    shown, _, set_slots = await turn(domain, "我不想留手机号", "deny", slots=slots)
    assert "取消" not in shown and "通知到您" in shown
    assert "task" not in set_slots  # still in the petition
    shown, _, set_slots = await turn(domain, "算了", "deny", slots=slots)
    assert "取消" in shown and set_slots["task"] is None


async def test_twice_not_understood_in_a_lookup_offers_a_person_not_a_loop(domain) -> None:
    slots = {"task": "lookup", "requested_slot": "address"}
    shown, _, set_slots = await turn(domain, "嗯那个啥", "nlu_fallback", slots=slots)
    assert "没太看懂" in shown and set_slots.get("task", "lookup") == "lookup"
    slots["misunderstood"] = set_slots["misunderstood"]
    shown, messages, set_slots = await turn(domain, "就那个呗", "nlu_fallback", slots=slots)
    assert "工作人员" in shown and messages[-1]["buttons"] and set_slots["task"] is None


async def test_thanks_and_goodbye_at_once_is_small_talk_not_a_misunderstanding(domain) -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(text="好的谢谢 再见", intent="nlu_fallback")
    tracker.latest_message["intent"]["confidence"] = 0.3
    tracker.latest_message["intent_ranking"] = [
        {"name": "nlu_fallback", "confidence": 0.3},
        {"name": "thank", "confidence": 0.51},
        {"name": "goodbye", "confidence": 0.48},
    ]
    await ActionConverse().run(dispatcher, tracker, domain)
    shown = "\n".join(m.get("text") or "" for m in dispatcher.messages)
    assert "不客气" in shown and "没太看懂" not in shown


@respx.mock
async def test_the_petition_carries_the_masked_conversation_and_the_channel(domain) -> None:
    route = respx.post(f"{API}/api/v1/petitions").mock(
        return_value=httpx.Response(
            200,
            json={
                "number": "XF-20261201-0002",
                "status": "accepted",
                "status_label": "已受理",
                "answer_due": "2026-12-08",
                "provisional": False,
            },
        )
    )
    history = [
        {"event": "user", "text": "我要反映", "timestamp": 1764550000.0},
        {"event": "bot", "text": "请问您怎么称呼（姓名）？", "timestamp": 1764550001.0},
        {"event": "user", "text": "王秀英", "timestamp": 1764550010.0},
        {
            "event": "user",
            "text": "13912345678 身份证990101195909035525",
            "timestamp": 1764550020.0,
        },
    ]
    slots = {
        "task": "petition",
        "requested_slot": "consent",
        "person_name": seal("王秀英"),
        "phone": seal("13912345678"),
        "address": "观象山庄3号楼2单元501",
        "description": "等了五年",
    }
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(text="同意", intent="affirm", slots=slots, events=history)
    await ActionConverse().run(dispatcher, tracker, domain)
    body = json.loads(route.calls.last.request.content)
    turns = body["conversation"]
    assert [t["from"] for t in turns[:2]] == ["resident", "bot"]
    joined = "\n".join(t["text"] for t in turns)
    assert "王秀英" not in joined and "王**" in joined
    assert "13912345678" not in joined and "990101195909035525" not in joined
    assert turns[0]["at"].startswith("2025-") or turns[0]["at"].startswith("2026-")
    assert body["channel"] == "bot"
    # The key ignores the growing conversation: a retried 同意 files the same petition.
    assert route.calls.last.request.headers["Idempotency-Key"].startswith("bot-")


@pytest.mark.parametrize(
    ("channel", "recorded"), [("webchat", "webchat"), ("wechat", "wechat"), ("rest", "bot")]
)
def test_the_petition_records_the_real_channel(channel: str, recorded: str) -> None:
    from actions.common import channel_of

    assert channel_of(make_tracker(text="同意", channel=channel)) == recorded
