"""Follow-up guidance, policy answers and the fallback menu, with the api mocked (respx)."""

from __future__ import annotations

import httpx
import pytest
import respx

from actions.fallback import ActionDeclineHuman, ActionFallbackMenu, ActionOfferHuman
from actions.faq import ActionAnswerFaq
from actions.guidance import ActionAnswerGuidance

from . import payloads
from .conftest import API, make_tracker, slot_events, texts

pytestmark = pytest.mark.asyncio


def mock_guidance() -> respx.Route:
    return respx.get(f"{API}/api/v1/policies").mock(
        return_value=httpx.Response(200, json={"guidance": payloads.GUIDANCE})
    )


@respx.mock
async def test_next_steps_for_a_blocked_project_use_fresh_status(domain, dispatcher) -> None:
    mock_guidance()
    status = respx.get(f"{API}/api/v1/projects/QS001/status").mock(
        return_value=httpx.Response(200, json=payloads.status(done=False))
    )
    tracker = make_tracker(
        intent="ask_next_steps",
        text="那我现在该做什么",
        slots={"project_code": "QS001", "project_name": "观象山庄", "initial_done": True},
    )
    events = await ActionAnswerGuidance().run(dispatcher, tracker, domain)
    joined = "\n".join(texts(dispatcher))
    assert status.called
    assert "按观象山庄现在的情况" in joined
    assert "首次登记还没办完" in joined and "消防验收未通过" in joined
    assert slot_events(events)["initial_done"] is False


@respx.mock
async def test_materials_after_initial_registration(domain, dispatcher) -> None:
    mock_guidance()
    tracker = make_tracker(
        intent="ask_materials", slots={"project_code": "QS001", "initial_done": True}
    )
    await ActionAnswerGuidance().run(dispatcher, tracker, domain)
    assert "转移登记" in "\n".join(texts(dispatcher))


@respx.mock
async def test_materials_while_initial_registration_pending(domain, dispatcher) -> None:
    mock_guidance()
    tracker = make_tracker(
        intent="ask_materials", slots={"project_code": "QS001", "initial_done": False}
    )
    await ActionAnswerGuidance().run(dispatcher, tracker, domain)
    assert "先准备" in "\n".join(texts(dispatcher))


@respx.mock
async def test_where_to_apply_without_a_home_asks_for_it(domain, dispatcher) -> None:
    mock_guidance()
    await ActionAnswerGuidance().run(dispatcher, make_tracker(intent="ask_where_to_apply"), domain)
    sent = texts(dispatcher)
    assert "政务服务中心" in sent[0] and sent[-1] == "utter_guidance_needs_home"


@respx.mock
async def test_guidance_api_down(domain, dispatcher) -> None:
    respx.get(f"{API}/api/v1/policies").mock(side_effect=httpx.ConnectTimeout("slow"))
    await ActionAnswerGuidance().run(dispatcher, make_tracker(intent="ask_materials"), domain)
    assert texts(dispatcher) == ["utter_api_down_guidance"]


@respx.mock
async def test_faq_answer_comes_from_the_api(domain, dispatcher) -> None:
    route = respx.get(f"{API}/api/v1/policies/mortgage_seizure").mock(
        return_value=httpx.Response(
            200,
            json={
                "kind": "faq",
                "code": "mortgage_seizure",
                "title": "t",
                "answer": "今天修改过的回答。\n第二段。",
                "policies": [],
            },
        )
    )
    tracker = make_tracker(intent="policy_faq", response_key="policy_faq/mortgage_seizure")
    await ActionAnswerFaq().run(dispatcher, tracker, domain)
    assert route.called
    assert texts(dispatcher) == ["今天修改过的回答。\n第二段。"]


@respx.mock
async def test_faq_code_shared_with_a_blocker_uses_the_faq_entry(domain, dispatcher) -> None:
    respx.get(f"{API}/api/v1/policies/developer_uncooperative").mock(
        return_value=httpx.Response(
            200,
            json={"kind": "blocker", "code": "developer_uncooperative", "name": "开发企业不配合"},
        )
    )
    respx.get(f"{API}/api/v1/policies").mock(
        return_value=httpx.Response(
            200,
            json={
                "faq": [{"kind": "faq", "code": "developer_uncooperative", "answer": "公告寻疑。"}]
            },
        )
    )
    tracker = make_tracker(intent="policy_faq", response_key="policy_faq/developer_uncooperative")
    await ActionAnswerFaq().run(dispatcher, tracker, domain)
    assert texts(dispatcher) == ["公告寻疑。"]


@respx.mock
async def test_faq_falls_back_to_the_trained_answer(domain, dispatcher) -> None:
    respx.get(f"{API}/api/v1/policies/resettlement").mock(side_effect=httpx.ConnectError("x"))
    tracker = make_tracker(intent="policy_faq", response_key="policy_faq/resettlement")
    await ActionAnswerFaq().run(dispatcher, tracker, domain)
    assert texts(dispatcher) == ["utter_policy_faq/resettlement"]
    assert "utter_policy_faq/resettlement" in domain["responses"]


async def test_fallback_menu_then_offer_of_a_person(domain, dispatcher) -> None:
    events = await ActionFallbackMenu().run(dispatcher, make_tracker(intent="nlu_fallback"), domain)
    assert texts(dispatcher) == ["utter_not_understood", "utter_menu"] and events == []
    dispatcher.messages.clear()
    history = [
        {"event": "user", "text": "啊啊啊", "parse_data": {}},
        {"event": "action", "name": "action_fallback_menu"},
        {"event": "action", "name": "action_listen"},
    ]
    tracker = make_tracker(intent="out_of_scope", events=history)
    events = await ActionFallbackMenu().run(dispatcher, tracker, domain)
    assert texts(dispatcher) == ["utter_still_not_understood", "utter_offer_human"]
    assert slot_events(events) == {"offered_human": True}


async def test_menu_buttons_are_plain_text(domain) -> None:
    for name in ("utter_menu", "utter_offer_human", "utter_ask_consent"):
        for variant in domain["responses"][name]:
            for button in variant.get("buttons", []):
                assert not button["payload"].startswith("/")


async def test_offer_and_decline(domain, dispatcher) -> None:
    assert slot_events(await ActionOfferHuman().run(dispatcher, make_tracker(), domain)) == {
        "offered_human": True
    }
    assert slot_events(await ActionDeclineHuman().run(dispatcher, make_tracker(), domain)) == {
        "offered_human": False
    }
