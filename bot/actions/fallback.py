"""Low confidence, out of scope and the offer of a person."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import offer_human

# Actions that run on every turn and say nothing: they do not break a run of fallbacks.
_SILENT = {"action_listen", "action_extract_slots", "action_validate_slot_mappings"}


def previous_reply_action(tracker: Tracker) -> str | None:
    """The last action that answered the resident's previous message (None at the start)."""
    seen_user = 0
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            seen_user += 1
            if seen_user == 2:
                return None
        elif event.get("event") == "action" and seen_user == 1:
            name = event.get("name")
            if name and name not in _SILENT:
                return str(name)
    return None


class ActionFallbackMenu(Action):
    """Low confidence or out of scope: a short menu; two in a row: the offer of a person."""

    def name(self) -> str:
        """Action name."""
        return "action_fallback_menu"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        """Send the menu, or offer a person when the previous reply was also the menu."""
        if previous_reply_action(tracker) == self.name():
            dispatcher.utter_message(response="utter_still_not_understood")
            return [offer_human(dispatcher)]
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        if intent == "out_of_scope":
            dispatcher.utter_message(response="utter_out_of_scope")
        else:
            dispatcher.utter_message(response="utter_not_understood")
        dispatcher.utter_message(response="utter_menu")
        return []


class ActionOfferHuman(Action):
    """Offer a person (e.g. after a complaint) and remember the offer for a "好的"."""

    def name(self) -> str:
        """Action name."""
        return "action_offer_human"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        """Send the offer with its buttons."""
        return [offer_human(dispatcher)]


class ActionDeclineHuman(Action):
    """The resident does not want a person now: say how to come back, clear the offer."""

    def name(self) -> str:
        """Action name."""
        return "action_decline_human"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        """Acknowledge and clear `offered_human`."""
        dispatcher.utter_message(response="utter_decline_human")
        return [SlotSet("offered_human", False)]
