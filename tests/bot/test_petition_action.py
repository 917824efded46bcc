"""Petition filing and petition checks with the api mocked (respx)."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from actions.petition import ActionCheckPetition, ActionSubmitPetition
from actions.sensitive import seal

from .conftest import API, make_tracker, slot_events, texts

pytestmark = pytest.mark.asyncio

CREATED = {
    "number": "XF-20261123-0007",
    "status": "accepted",
    "status_label": "已受理",
    "answer_due": "2026-11-30",
    "provisional": False,
}


def filled(**overrides: object) -> dict:
    slots = {
        "person_name": seal("李秀梅"),
        "phone": seal("13912345678"),
        "address": "观象山庄3号楼2单元501",
        "description": "等了八年还没有房本",
        "consent": True,
        "offered_human": True,
    }
    slots.update(overrides)
    return slots


@respx.mock
async def test_petition_is_filed_with_an_idempotency_key(domain, dispatcher) -> None:
    route = respx.post(f"{API}/api/v1/petitions").mock(
        return_value=httpx.Response(201, json=CREATED)
    )
    events = await ActionSubmitPetition().run(dispatcher, make_tracker(slots=filled()), domain)
    request = route.calls.last.request
    body = json.loads(request.content)
    assert body == {
        "person_name": "李秀梅",
        "phone": "13912345678",
        "address": "观象山庄3号楼2单元501",
        "description": "等了八年还没有房本",
        "consent": True,
        "channel": "bot",
    }
    key = request.headers["Idempotency-Key"]
    assert key.startswith("bot-") and "13912345678" not in key
    message = dispatcher.messages[0]
    assert message["response"] == "utter_petition_created"
    assert message["number"] == "XF-20261123-0007" and message["answer_due"] == "2026年11月30日"
    slots = slot_events(events)
    assert slots["phone"] is None and slots["offered_human"] is False

    # The same form again (a retried turn) sends the same key; other content, another key.
    await ActionSubmitPetition().run(dispatcher, make_tracker(slots=filled()), domain)
    assert route.calls.last.request.headers["Idempotency-Key"] == key
    await ActionSubmitPetition().run(
        dispatcher, make_tracker(slots=filled(description="开发商跑了")), domain
    )
    assert route.calls.last.request.headers["Idempotency-Key"] != key
    await ActionSubmitPetition().run(
        dispatcher, make_tracker(slots=filled(), sender_id="other"), domain
    )
    assert route.calls.last.request.headers["Idempotency-Key"] != key


@respx.mock
async def test_known_project_is_sent_instead_of_an_address(domain, dispatcher) -> None:
    route = respx.post(f"{API}/api/v1/petitions").mock(
        return_value=httpx.Response(201, json=CREATED)
    )
    slots = filled(address=None, project_code="QS001")
    await ActionSubmitPetition().run(
        dispatcher, make_tracker(slots=slots, channel="wechat"), domain
    )
    body = json.loads(route.calls.last.request.content)
    assert body["project_code"] == "QS001" and "address" not in body
    assert body["channel"] == "wechat"


@respx.mock
async def test_no_consent_sends_nothing(domain, dispatcher) -> None:
    route = respx.post(f"{API}/api/v1/petitions")
    events = await ActionSubmitPetition().run(
        dispatcher, make_tracker(slots=filled(consent=False)), domain
    )
    assert not route.called
    assert texts(dispatcher) == ["utter_petition_no_consent"]
    assert slot_events(events)["phone"] is None


@respx.mock
async def test_petition_api_down(domain, dispatcher) -> None:
    respx.post(f"{API}/api/v1/petitions").mock(side_effect=httpx.ReadTimeout("slow"))
    await ActionSubmitPetition().run(dispatcher, make_tracker(slots=filled()), domain)
    assert texts(dispatcher) == ["utter_petition_api_down"]


@respx.mock
async def test_petition_refused_by_the_api_shows_its_message(domain, dispatcher) -> None:
    respx.post(f"{API}/api/v1/petitions").mock(
        return_value=httpx.Response(
            422, json={"code": "validation_error", "message": "请告诉我们您的房屋地址或项目编号"}
        )
    )
    await ActionSubmitPetition().run(dispatcher, make_tracker(slots=filled()), domain)
    assert texts(dispatcher) == ["请告诉我们您的房屋地址或项目编号", "utter_petition_retry"]


@respx.mock
async def test_petition_check(domain, dispatcher) -> None:
    route = respx.post(f"{API}/api/v1/petitions/lookup").mock(
        return_value=httpx.Response(
            200,
            json={
                "number": "XF-20261123-0007",
                "status": "assigned",
                "status_label": "已分派",
                "departments": ["住建局", "税务局"],
                "updated_at": "2026-11-24T09:00:00+08:00",
                "answer_due": "2026-11-30",
            },
        )
    )
    tracker = make_tracker(
        slots={"petition_number": "XF-20261123-0007", "phone": seal("13912345678")}
    )
    events = await ActionCheckPetition().run(dispatcher, tracker, domain)
    assert json.loads(route.calls.last.request.content) == {
        "petition_number": "XF-20261123-0007",
        "phone": "13912345678",
    }
    message = dispatcher.messages[0]
    assert message["response"] == "utter_petition_status"
    assert message["status_label"] == "已分派" and message["departments"] == "住建局、税务局"
    assert message["updated_at"] == "2026年11月24日" and message["answer_due"] == "2026年11月30日"
    assert slot_events(events)["phone"] is None


@respx.mock
async def test_petition_check_not_found(domain, dispatcher) -> None:
    respx.post(f"{API}/api/v1/petitions/lookup").mock(
        return_value=httpx.Response(
            404,
            json={
                "code": "petition_not_found",
                "message": "没有找到这件信访，请核对编号和手机号。",
            },
        )
    )
    tracker = make_tracker(
        slots={"petition_number": "XF-20261123-0099", "phone": seal("13912345678")}
    )
    await ActionCheckPetition().run(dispatcher, tracker, domain)
    assert texts(dispatcher) == [
        "没有找到这件信访，请核对编号和手机号。",
        "utter_petition_check_retry",
    ]


@respx.mock
async def test_petition_check_api_down(domain, dispatcher) -> None:
    respx.post(f"{API}/api/v1/petitions/lookup").mock(side_effect=httpx.ConnectError("x"))
    tracker = make_tracker(
        slots={"petition_number": "XF-20261123-0007", "phone": seal("13912345678")}
    )
    await ActionCheckPetition().run(dispatcher, tracker, domain)
    assert texts(dispatcher) == ["utter_api_down"]
