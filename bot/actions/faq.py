"""Policy questions: the ResponseSelector picks the topic, the api gives today's answer."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.clients import api
from actions.common import split_lines


def faq_topic(tracker: Tracker) -> str | None:
    """The `policy_faq/<topic>` the ResponseSelector chose for the latest message."""
    selector = tracker.latest_message.get("response_selector") or {}
    chosen = selector.get("policy_faq") or selector.get("default") or {}
    key = (chosen.get("response") or {}).get("intent_response_key") or ""
    if key.startswith("policy_faq/"):
        return key.split("/", 1)[1]
    return None


class ActionAnswerFaq(Action):
    """Answer a policy question from the catalogue (GET /api/v1/policies/{topic})."""

    def name(self) -> str:
        """Action name."""
        return "action_answer_faq"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        """Send the current answer; when the api is down, the answer trained into the domain."""
        topic = faq_topic(tracker)
        if not topic:
            dispatcher.utter_message(response="utter_not_understood")
            dispatcher.utter_message(response="utter_menu")
            return []
        try:
            answer = await api.faq_answer(tracker.sender_id, topic)
        except (api.ApiUnavailable, api.ApiError):
            answer = None
        if not answer:
            dispatcher.utter_message(response=f"utter_policy_faq/{topic}")
            return []
        for message in split_lines(str(answer)):
            dispatcher.utter_message(text=message)
        return []
