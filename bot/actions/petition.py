"""Petitions (信访): file one from the petition form, and look one up by number and phone."""

from __future__ import annotations

import hashlib
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.clients import api
from actions.common import channel_of, chinese_date, first
from actions.sensitive import unseal

_FORM_SLOTS = ("phone", "description", "consent", "requested_slot")


def idempotency_key(sender_id: str, body: dict[str, Any]) -> str:
    """Same sender and same form contents → same key, so a retried turn files only once."""
    parts = [sender_id] + [str(body.get(k) or "") for k in sorted(body) if k != "channel"]
    return "bot-" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:48]


def _clear(*names: str) -> list[EventType]:
    return [SlotSet(name, None) for name in names]


class ActionSubmitPetition(Action):
    """Create the petition through the api once the form is complete and consent given."""

    def name(self) -> str:
        """Action name."""
        return "action_submit_petition"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        """POST /api/v1/petitions with an idempotency key; answer with number and deadline."""
        done = [*_clear(*_FORM_SLOTS), SlotSet("offered_human", False)]
        if tracker.get_slot("consent") is not True:
            dispatcher.utter_message(response="utter_petition_no_consent")
            return done
        phone = unseal(tracker.get_slot("phone"))
        person_name = unseal(tracker.get_slot("person_name"))
        if not phone or not person_name:
            dispatcher.utter_message(response="utter_petition_incomplete")
            return done
        body: dict[str, Any] = {
            "person_name": person_name,
            "phone": phone,
            "description": tracker.get_slot("description"),
            "consent": True,
            "channel": channel_of(tracker),
        }
        address = tracker.get_slot("address")
        if address:
            body["address"] = address
        if tracker.get_slot("project_code"):
            body["project_code"] = tracker.get_slot("project_code")
        key = idempotency_key(tracker.sender_id, body)
        try:
            created = await api.create_petition(tracker.sender_id, body, key)
        except api.ApiUnavailable:
            dispatcher.utter_message(response="utter_petition_api_down")
            return done
        except api.ApiError as error:
            dispatcher.utter_message(text=error.message)
            dispatcher.utter_message(response="utter_petition_retry")
            return done
        due = chinese_date(created.get("answer_due"))
        dispatcher.utter_message(
            response="utter_petition_created",
            number=created.get("number", ""),
            status_label=created.get("status_label", "已受理"),
            answer_due=due,
        )
        if created.get("provisional"):
            dispatcher.utter_message(response="utter_petition_due_provisional")
        return done


class ActionCheckPetition(Action):
    """Tell the state of a petition found by its number and the phone given at intake."""

    def name(self) -> str:
        """Action name."""
        return "action_check_petition"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        """POST /api/v1/petitions/lookup; status, departments, last update and deadline."""
        done = _clear("petition_number", "phone", "requested_slot")
        number = tracker.get_slot("petition_number")
        phone = unseal(tracker.get_slot("phone"))
        if not number or not phone:
            dispatcher.utter_message(response="utter_petition_incomplete")
            return done
        try:
            found = await api.lookup_petition(tracker.sender_id, number, phone)
        except api.ApiUnavailable:
            dispatcher.utter_message(response="utter_api_down")
            return done
        except api.ApiError as error:
            dispatcher.utter_message(text=error.message)
            dispatcher.utter_message(response="utter_petition_check_retry")
            return done
        departments = []
        for item in found.get("departments") or []:
            departments.append(first(item, "name", "code") if isinstance(item, dict) else item)
        dispatcher.utter_message(
            response="utter_petition_status",
            number=found.get("number", number),
            status_label=found.get("status_label", ""),
            departments="、".join(str(d) for d in departments if d) or "正在分派",
            updated_at=chinese_date(found.get("updated_at")),
            answer_due=chinese_date(found.get("answer_due")),
        )
        return done
