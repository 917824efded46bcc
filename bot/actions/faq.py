"""Policy questions: the selector picks the topic, the api gives today's answer."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker

from actions.clients import api
from actions.replies import Reply


def faq_topic(tracker: Tracker) -> str | None:
    """The `policy_faq/<topic>` the response selector chose for the latest message."""
    selector = tracker.latest_message.get("response_selector") or {}
    chosen = selector.get("policy_faq") or selector.get("default") or {}
    key = (chosen.get("response") or {}).get("intent_response_key") or ""
    if key.startswith("policy_faq/"):
        return key.split("/", 1)[1]
    return None


async def answer(reply: Reply, sender_id: str, topic: str, domain: dict[str, Any]) -> None:
    """Today's catalogue answer of a topic; the trained answer when the api is down."""
    try:
        text = await api.faq_answer(sender_id, topic)
    except (api.ApiUnavailable, api.ApiError):
        text = None
    if not text:
        text = reply.text(f"utter_policy_faq/{topic}")
    if text:
        reply.add(str(text))
    else:
        reply.say("utter_not_understood", kind="fallback")
