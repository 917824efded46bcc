"""Follow-ups: what to do now, what to bring, where to apply — for this home's situation."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.clients import api
from actions.common import first
from actions.status import initial_registration_done

TOPIC_BY_INTENT = {
    "ask_next_steps": "next_steps",
    "ask_materials": "materials",
    "ask_where_to_apply": "where_to_apply",
}


def situation(initial_done: bool | None, transfer_status: str | None) -> str:
    """The guidance case for a home: initial_pending, initial_done, transfer_* or not_found."""
    if initial_done is None:
        return "not_found"
    if not initial_done:
        return "initial_pending"
    if transfer_status == "done":
        return "transfer_done"
    if transfer_status == "in_progress":
        return "transfer_in_progress"
    return "initial_done"


def section_text(section: dict[str, Any] | None) -> str:
    """A guidance section (title, items, note) as one short message."""
    if not section:
        return ""
    lines = [str(section.get("title") or "")]
    lines += [f"{i}. {item}" for i, item in enumerate(section.get("items") or [], start=1)]
    if section.get("note"):
        lines.append(str(section["note"]))
    return "\n".join(line for line in lines if line)


def pick_section(guidance: dict[str, Any], topic: str, case: str) -> dict[str, Any] | None:
    """The section of guidance.yml that answers a topic for a case."""
    if topic == "where_to_apply":
        return guidance.get("where_to_apply")
    if topic == "materials":
        materials = guidance.get("materials") or {}
        key = "initial_pending" if case == "initial_pending" else "transfer_registration"
        return materials.get(key)
    steps = guidance.get("next_steps") or {}
    return steps.get(case) or steps.get("not_found")


class ActionAnswerGuidance(Action):
    """Answer "现在该做什么" / "要带什么材料" / "去哪里办" for the home already found."""

    def name(self) -> str:
        """Action name."""
        return "action_answer_guidance"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        """Fetch the guidance (and the project's fresh status) from the api and answer."""
        intent = (tracker.latest_message.get("intent") or {}).get("name") or ""
        topic = TOPIC_BY_INTENT.get(intent, "next_steps")
        code = tracker.get_slot("project_code")
        initial_done = tracker.get_slot("initial_done") if code else None
        events: list[EventType] = []
        blockers: list[dict[str, Any]] = []
        try:
            guidance = await api.guidance(tracker.sender_id)
            if code and topic == "next_steps":
                status = await api.project_status(tracker.sender_id, code)
                initial_done = initial_registration_done(status)
                events.append(SlotSet("initial_done", initial_done))
                blockers = first(status, "open_blockers", default=[]) or []
        except (api.ApiUnavailable, api.ApiError):
            dispatcher.utter_message(response="utter_api_down_guidance")
            return []
        case = situation(initial_done, tracker.get_slot("transfer_status"))
        section = pick_section(guidance, topic, case)
        if not section:
            dispatcher.utter_message(response="utter_api_down_guidance")
            return events
        if code and case != "not_found":
            name = tracker.get_slot("project_name") or "您的小区"
            dispatcher.utter_message(text=f"按{name}现在的情况：")
        dispatcher.utter_message(text=section_text(section))
        if topic == "next_steps" and case == "initial_pending":
            for blocker in (blockers or [])[:3]:
                steps = blocker.get("resident_next_steps") or []
                if steps:
                    lines = "\n".join(f"· {s}" for s in steps[:3])
                    dispatcher.utter_message(text=f"针对“{blocker.get('name', '')}”：\n{lines}")
        if case == "not_found":
            dispatcher.utter_message(response="utter_guidance_needs_home")
        return events
