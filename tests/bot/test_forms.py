"""Form validators: what fills a slot, what is refused, and that numbers are sealed."""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.forms import ValidateLookupForm, ValidatePetitionCheckForm, ValidatePetitionForm
from actions.sensitive import is_sealed, unseal
from actions.slots import ValidateSlotMappings

from .conftest import entity, make_tracker, slot_events, texts

pytestmark = pytest.mark.asyncio
VALID_ID = "11010519491231002X"


async def run(action: Any, dispatcher: CollectingDispatcher, domain: dict, **kw: Any) -> dict:
    return slot_events(await action.run(dispatcher, make_tracker(**kw), domain))


async def test_lookup_address_typed_without_entity_is_taken(domain, dispatcher) -> None:
    slots = await run(
        ValidateLookupForm(),
        dispatcher,
        domain,
        text="观象山庄3-2-501",
        active_loop="lookup_form",
        requested_slot="address",
    )
    assert slots["address"] == "观象山庄3-2-501"


async def test_lookup_cancel_words_fill_nothing(domain, dispatcher) -> None:
    slots = await run(
        ValidateLookupForm(),
        dispatcher,
        domain,
        text="算了",
        intent="deny",
        active_loop="lookup_form",
        requested_slot="address",
    )
    assert "address" not in slots


async def test_lookup_id_number_is_sealed_and_name_asked(domain, dispatcher) -> None:
    slots = await run(
        ValidateLookupForm(),
        dispatcher,
        domain,
        text=f"身份证{VALID_ID}",
        entities=[entity("id_number", VALID_ID)],
        active_loop="lookup_form",
        requested_slot="address",
    )
    assert is_sealed(slots["id_number"]) and VALID_ID not in slots["id_number"]
    assert unseal(slots["id_number"]) == VALID_ID
    assert slots["requested_slot"] == "person_name"


async def test_lookup_name_after_id_completes_the_form(domain, dispatcher) -> None:
    from actions.sensitive import seal

    slots = await run(
        ValidateLookupForm(),
        dispatcher,
        domain,
        text="张桂兰",
        slots={"id_number": seal(VALID_ID)},
        active_loop="lookup_form",
        requested_slot="person_name",
    )
    assert is_sealed(slots["person_name"]) and unseal(slots["person_name"]) == "张桂兰"
    assert slots["requested_slot"] is None


async def test_lookup_bad_id_number_is_refused(domain, dispatcher) -> None:
    slots = await run(
        ValidateLookupForm(),
        dispatcher,
        domain,
        text="110105194912310021",
        entities=[entity("id_number", "110105194912310021")],
        active_loop="lookup_form",
        requested_slot="address",
    )
    assert slots.get("id_number") is None
    assert "utter_invalid_id_number" in texts(dispatcher)


async def test_petition_phone_is_validated_and_sealed(domain, dispatcher) -> None:
    slots = await run(
        ValidatePetitionForm(),
        dispatcher,
        domain,
        text="12345678901",
        active_loop="petition_form",
        requested_slot="phone",
        slots={"person_name": "李秀梅"},
    )
    assert slots["phone"] is None and "utter_invalid_phone" in texts(dispatcher)
    dispatcher.messages.clear()
    slots = await run(
        ValidatePetitionForm(),
        dispatcher,
        domain,
        text="我的手机 139 1234 5678",
        active_loop="petition_form",
        requested_slot="phone",
        slots={"person_name": "李秀梅"},
    )
    assert is_sealed(slots["phone"]) and unseal(slots["phone"]) == "13912345678"


async def test_petition_does_not_ask_the_home_again(domain, dispatcher) -> None:
    action = ValidatePetitionForm()
    tracker = make_tracker(slots={"project_code": "QS001"}, active_loop="petition_form")
    required = await action.required_slots(
        domain["forms"]["petition_form"]["required_slots"], dispatcher, tracker, domain
    )
    assert "address" not in required and "consent" in required


@pytest.mark.parametrize(
    ("said", "intent", "expected"),
    [("同意", "affirm", True), ("不同意", "deny", False), ("算了", "deny", False)],
)
async def test_petition_consent(domain, dispatcher, said, intent, expected) -> None:
    slots = await run(
        ValidatePetitionForm(),
        dispatcher,
        domain,
        text=said,
        intent=intent,
        active_loop="petition_form",
        requested_slot="consent",
    )
    assert slots["consent"] is expected


async def test_petition_description_masks_numbers(domain, dispatcher) -> None:
    slots = await run(
        ValidatePetitionForm(),
        dispatcher,
        domain,
        text="等了八年了，有事打我电话13912345678",
        intent="complain",
        active_loop="petition_form",
        requested_slot="description",
    )
    assert "13912345678" not in slots["description"]
    assert slots["description"].startswith("等了八年了")


async def test_petition_cancel_during_description_fills_nothing(domain, dispatcher) -> None:
    slots = await run(
        ValidatePetitionForm(),
        dispatcher,
        domain,
        text="算了不弄了",
        intent="deny",
        active_loop="petition_form",
        requested_slot="description",
    )
    assert "description" not in slots


async def test_check_form_number_and_phone(domain, dispatcher) -> None:
    slots = await run(
        ValidatePetitionCheckForm(),
        dispatcher,
        domain,
        text="xf-20261123-0007",
        active_loop="petition_check_form",
        requested_slot="petition_number",
    )
    assert slots["petition_number"] == "XF-20261123-0007"
    assert "phone" not in slots  # the number holds no phone; the form asks for it next


async def test_check_form_bad_number_is_refused(domain, dispatcher) -> None:
    slots = await run(
        ValidatePetitionCheckForm(),
        dispatcher,
        domain,
        text="XF-2026-07",
        active_loop="petition_check_form",
        requested_slot="petition_number",
    )
    assert slots["petition_number"] is None
    assert "utter_invalid_petition_number" in texts(dispatcher)


async def test_tapped_candidate_fills_the_address_outside_forms(domain, dispatcher) -> None:
    slots = await run(
        ValidateSlotMappings(),
        dispatcher,
        domain,
        text="阳光花园5号楼1单元301室",
        slots={"lookup_result": "ambiguous"},
    )
    assert slots["address"] == "阳光花园5号楼1单元301室"
    slots = await run(
        ValidateSlotMappings(),
        dispatcher,
        domain,
        text="阳光花园5号楼1单元301室",
        slots={"lookup_result": "unit"},
    )
    assert "address" not in slots
