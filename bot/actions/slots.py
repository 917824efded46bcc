"""Slot extraction outside forms (action_validate_slot_mappings)."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import ValidationAction
from rasa_sdk.types import DomainDict

from actions import text
from actions.forms import _entity, _free_text_allowed, _text


class ValidateSlotMappings(ValidationAction):
    """After candidate buttons, the tapped (or typed) address text fills the address slot."""

    def name(self) -> str:
        """Action name (Rasa runs it after every user message)."""
        return "action_validate_slot_mappings"

    def extract_address(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """The whole text when the bot just offered candidates and no entity was found."""
        if tracker.active_loop.get("name") or _entity(tracker, "address"):
            return {}
        if tracker.get_slot("lookup_result") != "ambiguous" or not _free_text_allowed(tracker):
            return {}
        message = _text(tracker)
        if text.find_id_number(message) or not text.looks_like_address(message):
            return {}
        return {"address": text.normalize(message)}
