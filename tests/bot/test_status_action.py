"""action_lookup_status against a mocked api (respx): every kind of answer, and the api down."""

from __future__ import annotations

import json
import time

import httpx
import pytest
import respx

from actions.sensitive import seal
from actions.status import ActionLookupStatus, ActionNoneOfCandidates

from . import payloads
from .conftest import API, make_tracker, slot_events, texts

pytestmark = pytest.mark.asyncio
VALID_ID = "11010519491231002X"


@respx.mock
async def test_unit_found_explains_registration_and_blockers(domain, dispatcher) -> None:
    route = respx.post(f"{API}/api/v1/lookup").mock(
        return_value=httpx.Response(200, json=payloads.unit_match())
    )
    tracker = make_tracker(slots={"address": "观象山庄3号楼2单元501"})
    events = await ActionLookupStatus().run(dispatcher, tracker, domain)
    body = json.loads(route.calls.last.request.content)
    assert body == {"address": "观象山庄3号楼2单元501"}
    headers = route.calls.last.request.headers
    assert headers["Authorization"].startswith("Service ")
    assert headers["X-Sender-Id"] == "test-sender"
    sent = texts(dispatcher)
    joined = "\n".join(sent)
    assert "观象山庄3号楼2单元501室" in sent[0]
    assert "首次登记还没有完成" in joined and "未办理" in joined
    assert "消防验收未通过" in joined and "消防救援大队" in joined
    assert "不是您的过错" in joined and "国家利益不受损" in joined
    assert "2027年6月30日" in joined
    assert len(sent) >= 5 and max(len(m) for m in sent) < 300  # short messages
    slots = slot_events(events)
    assert slots["project_code"] == "QS001" and slots["lookup_result"] == "unit"
    assert slots["initial_done"] is False and slots["lookup_failures"] == 0


@respx.mock
async def test_done_project_tells_to_apply(domain, dispatcher) -> None:
    respx.post(f"{API}/api/v1/lookup").mock(
        return_value=httpx.Response(200, json=payloads.unit_match(done=True))
    )
    events = await ActionLookupStatus().run(
        dispatcher, make_tracker(slots={"address": "x3号楼"}), domain
    )
    joined = "\n".join(texts(dispatcher))
    assert "首次登记已经完成" in joined and "现在就可以申请" in joined
    assert "卡点" not in joined
    assert slot_events(events)["initial_done"] is True


@respx.mock
async def test_lookup_by_id_unseals_only_for_the_api(domain, dispatcher) -> None:
    route = respx.post(f"{API}/api/v1/lookup").mock(
        return_value=httpx.Response(200, json=payloads.unit_match())
    )
    tracker = make_tracker(slots={"id_number": seal(VALID_ID), "person_name": seal("张桂兰")})
    events = await ActionLookupStatus().run(dispatcher, tracker, domain)
    assert json.loads(route.calls.last.request.content) == {
        "id_number": VALID_ID,
        "person_name": "张桂兰",
    }
    slots = slot_events(events)
    assert slots["id_number"] is None  # the reference is dropped after use
    assert all(VALID_ID not in m for m in texts(dispatcher))


@respx.mock
async def test_ambiguous_offers_plain_text_buttons(domain, dispatcher) -> None:
    respx.post(f"{API}/api/v1/lookup").mock(
        return_value=httpx.Response(200, json=payloads.AMBIGUOUS)
    )
    events = await ActionLookupStatus().run(
        dispatcher, make_tracker(slots={"address": "阳光"}), domain
    )
    buttons = dispatcher.messages[0]["buttons"]
    payloads_ = [b["payload"] for b in buttons]
    assert payloads_ == ["阳光花园5号楼1单元301室", "阳光花苑", "都不是"]
    assert not any(p.startswith("/") for p in payloads_)
    slots = slot_events(events)
    assert slots["lookup_result"] == "ambiguous" and slots["address"] is None


@respx.mock
async def test_not_found_twice_offers_a_person(domain, dispatcher) -> None:
    respx.post(f"{API}/api/v1/lookup").mock(return_value=httpx.Response(200, json=payloads.NONE))
    first = slot_events(
        await ActionLookupStatus().run(
            dispatcher, make_tracker(slots={"address": "幸福里9号楼"}), domain
        )
    )
    assert first["lookup_failures"] == 1 and "offered_human" not in first
    assert "utter_not_found" in texts(dispatcher)
    dispatcher.messages.clear()
    second = slot_events(
        await ActionLookupStatus().run(
            dispatcher, make_tracker(slots={"address": "幸福里9号", "lookup_failures": 1.0}), domain
        )
    )
    assert second["offered_human"] is True
    assert "utter_not_found_twice" in texts(dispatcher) and "utter_offer_human" in texts(dispatcher)


@respx.mock
async def test_api_down_apologises_quickly(domain, dispatcher) -> None:
    respx.post(f"{API}/api/v1/lookup").mock(side_effect=httpx.ConnectError("refused"))
    events = await ActionLookupStatus().run(
        dispatcher, make_tracker(slots={"address": "x1号楼"}), domain
    )
    assert texts(dispatcher) == ["utter_api_down"]
    assert slot_events(events)["lookup_result"] == "error"


async def test_api_slow_apologises_within_a_few_seconds(domain, dispatcher, monkeypatch) -> None:
    import asyncio
    import dataclasses

    from actions.clients import api

    monkeypatch.setattr(api, "settings", dataclasses.replace(api.settings, api_timeout=0.5))

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, json=payloads.unit_match())

    with respx.mock:
        respx.post(f"{API}/api/v1/lookup").mock(side_effect=slow)
        start = time.monotonic()
        await ActionLookupStatus().run(
            dispatcher, make_tracker(slots={"address": "x1号楼"}), domain
        )
    assert time.monotonic() - start < 2
    assert texts(dispatcher) == ["utter_api_down"]


@respx.mock
async def test_server_error_is_treated_as_down(domain, dispatcher) -> None:
    respx.post(f"{API}/api/v1/lookup").mock(return_value=httpx.Response(503, text="busy"))
    await ActionLookupStatus().run(dispatcher, make_tracker(slots={"address": "x1号楼"}), domain)
    assert texts(dispatcher) == ["utter_api_down"]


@respx.mock
async def test_invalid_id_message_from_the_api_is_shown(domain, dispatcher) -> None:
    respx.post(f"{API}/api/v1/lookup").mock(
        return_value=httpx.Response(
            422, json={"code": "validation_error", "message": "身份证号校验位不对"}
        )
    )
    tracker = make_tracker(slots={"id_number": seal(VALID_ID), "person_name": seal("张桂兰")})
    await ActionLookupStatus().run(dispatcher, tracker, domain)
    assert "身份证号校验位不对" in texts(dispatcher)


async def test_none_of_candidates_leaves_the_ambiguous_state(domain, dispatcher) -> None:
    events = await ActionNoneOfCandidates().run(dispatcher, make_tracker(intent="deny"), domain)
    assert slot_events(events)["lookup_result"] == "none"
