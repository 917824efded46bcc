"""Form validators: lookup, petition and petition check.

ID numbers, phones and names are extracted here from the latest message (custom slot mappings) and
sealed at once (actions.sensitive), so the slot events in the tracker never hold them in the
clear. Slots are only taken from free text while the form asks for them, and never from a
message that means "cancel", so that "算了" leaves the form.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction
from rasa_sdk.types import DomainDict

from actions import text
from actions.sensitive import is_sealed, seal, unseal

# Intents that never fill a slot from free text (they mean: stop, or something else entirely).
NOT_AN_ANSWER = {
    "deny",
    "greet",
    "goodbye",
    "thank",
    "bot_challenge",
    "request_human",
    "check_petition",
    "policy_faq",
    "ask_next_steps",
    "ask_materials",
    "ask_where_to_apply",
}
CANCEL_WORDS = ("算了", "取消", "不办了", "不查了", "不弄了", "不用了", "退出")


def _intent(tracker: Tracker) -> str:
    return (tracker.latest_message.get("intent") or {}).get("name") or ""


def _text(tracker: Tracker) -> str:
    return tracker.latest_message.get("text") or ""


def _entity(tracker: Tracker, name: str) -> str | None:
    for entity in tracker.latest_message.get("entities") or []:
        if entity.get("entity") == name and entity.get("value"):
            return str(entity["value"])
    return None


def _asked(tracker: Tracker, slot: str) -> bool:
    return tracker.get_slot("requested_slot") == slot


def _is_cancel(tracker: Tracker) -> bool:
    message = text.normalize(_text(tracker))
    return _intent(tracker) == "deny" or any(word in message for word in CANCEL_WORDS)


def _free_text_allowed(tracker: Tracker) -> bool:
    return _intent(tracker) not in NOT_AN_ANSWER and not _is_cancel(tracker)


class _CommonSlots:
    """Extraction and validation shared by the forms (name, phone, ID number, address)."""

    def extract_person_name(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """Owner's or petitioner's name: the person_name entity, or a name typed on its own."""
        value = _entity(tracker, "person_name")
        if not value and _asked(tracker, "person_name") and _free_text_allowed(tracker):
            value = text.name_from_text(_text(tracker))
            if not value and text.normalize(_text(tracker)):
                dispatcher.utter_message(response="utter_invalid_person_name")
                return {"person_name": None}
        return {"person_name": seal(text.normalize(value))} if value else {}

    def validate_person_name(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """A name has no digits and at most 32 characters; it is kept sealed."""
        name = text.normalize(unseal(value) if is_sealed(value) else str(value or ""))
        if not name or len(name) > 32 or any(ch.isdigit() for ch in name):
            dispatcher.utter_message(response="utter_invalid_person_name")
            return {"person_name": None}
        return {"person_name": seal(name)}

    def extract_phone(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """The mobile number from the phone entity or the typed digits, sealed at once."""
        raw = _entity(tracker, "phone") or text.find_phone(_text(tracker))
        if not raw and _asked(tracker, "phone") and _free_text_allowed(tracker):
            digits = "".join(ch for ch in text.normalize(_text(tracker)) if ch.isdigit())
            if digits:
                dispatcher.utter_message(response="utter_invalid_phone")
                return {"phone": None}
            return {}
        if not raw:
            return {}
        phone = text.clean_phone(raw)
        if not phone:
            dispatcher.utter_message(response="utter_invalid_phone")
            return {"phone": None}
        return {"phone": seal(phone)}

    def validate_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """Only sealed references are kept; a clear value is checked and sealed."""
        if is_sealed(value):
            return {"phone": value}
        phone = text.clean_phone(str(value or ""))
        if not phone:
            dispatcher.utter_message(response="utter_invalid_phone")
            return {"phone": None}
        return {"phone": seal(phone)}

    def extract_id_number(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """The 18-character ID number from the entity or the text, checked and sealed."""
        raw = _entity(tracker, "id_number") or text.find_id_number(_text(tracker))
        if not raw:
            if _asked(tracker, "id_number") and _free_text_allowed(tracker):
                if any(ch.isdigit() for ch in text.normalize(_text(tracker))):
                    dispatcher.utter_message(response="utter_invalid_id_number")
                    return {"id_number": None}
            return {}
        value = text.normalize(raw).replace(" ", "").upper()
        if not text.valid_id_number(value):
            dispatcher.utter_message(response="utter_invalid_id_number")
            return {"id_number": None}
        return {"id_number": seal(value)}

    def validate_id_number(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """Only sealed references are kept."""
        if is_sealed(value):
            return {"id_number": value}
        if value and text.valid_id_number(str(value)):
            return {"id_number": seal(text.normalize(str(value)).upper())}
        return {"id_number": None}

    def extract_address(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """When the address was asked for and no entity was found, the typed text itself."""
        if tracker.slots_to_validate().get("address") or _entity(tracker, "address"):
            return {}
        if not _asked(tracker, "address") or not _free_text_allowed(tracker):
            return {}
        message = _text(tracker)
        if text.find_id_number(message) or not text.looks_like_address(message):
            return {}
        return {"address": text.normalize(message)}

    def validate_address(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """An address is 2–120 characters of text."""
        address = text.normalize(str(value or ""))
        if not 2 <= len(address) <= 120:
            dispatcher.utter_message(response="utter_invalid_address")
            return {"address": None}
        return {"address": address}


class ValidateLookupForm(_CommonSlots, FormValidationAction):
    """Collects the address, or the ID number and the owner's name, for a status lookup."""

    def name(self) -> str:
        """Action name."""
        return "validate_lookup_form"

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        """Address by default; ID number then name when the resident gives an ID number."""
        has_id = tracker.get_slot("id_number") or _entity(tracker, "id_number")
        has_id = has_id or text.find_id_number(_text(tracker))
        if has_id and not tracker.slots_to_validate().get("address"):
            return ["id_number", "person_name"]
        return domain_slots

    def validate_address(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """A new address replaces any ID lookup in progress."""
        result = super().validate_address(value, dispatcher, tracker, domain)
        if result.get("address"):
            result.update({"id_number": None})
        return result


class ValidatePetitionForm(_CommonSlots, FormValidationAction):
    """Collects name, phone, home, what happened and explicit consent for a petition."""

    def name(self) -> str:
        """Action name."""
        return "validate_petition_form"

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        """The home is not asked again when a lookup already found the project."""
        if tracker.get_slot("project_code") and not tracker.get_slot("address"):
            return [slot for slot in domain_slots if slot != "address"]
        return domain_slots

    def extract_description(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """What happened, as typed (ID and phone numbers in it are masked)."""
        if not _asked(tracker, "description") or _is_cancel(tracker):
            return {}
        message = text.normalize(_text(tracker))
        if len(message) < 2:
            return {}
        return {"description": text.mask_numbers(message)[:2000]}

    def extract_consent(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """Explicit yes or no to passing the data to the departments."""
        if not _asked(tracker, "consent"):
            return {}
        message = text.normalize(_text(tracker))
        intent = _intent(tracker)
        if intent == "deny" or any(w in message for w in ("不同意", "不行", "不要", "不可以")):
            return {"consent": False}
        if _is_cancel(tracker):
            return {"consent": False}
        if intent == "affirm" or any(w in message for w in ("同意", "可以", "好的", "行", "是的")):
            return {"consent": True}
        return {}

    def validate_description(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """Anything of at least two characters."""
        return {"description": value if value and len(str(value)) >= 2 else None}

    def validate_consent(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """Yes or no; "no" ends the form and nothing is sent."""
        return {"consent": bool(value)}


class ValidatePetitionCheckForm(_CommonSlots, FormValidationAction):
    """Collects the petition number and the phone given at intake."""

    def name(self) -> str:
        """Action name."""
        return "validate_petition_check_form"

    def extract_petition_number(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """XF-YYYYMMDD-NNNN from the entity or the text, normalised."""
        raw = _entity(tracker, "petition_number") or _text(tracker)
        number = text.find_petition_number(raw)
        if number:
            return {"petition_number": number}
        if _asked(tracker, "petition_number") and _free_text_allowed(tracker):
            if any(ch.isdigit() for ch in text.normalize(_text(tracker))):
                dispatcher.utter_message(response="utter_invalid_petition_number")
                return {"petition_number": None}
        return {}

    def validate_petition_number(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """The number must have the XF-YYYYMMDD-NNNN shape."""
        number = text.find_petition_number(str(value or ""))
        if not number:
            dispatcher.utter_message(response="utter_invalid_petition_number")
        return {"petition_number": number}
