"""Follow-ups: what to do now, what to bring, where to apply — for this home's situation."""

from __future__ import annotations

from typing import Any

from actions.replies import Reply
from actions.status import situation

# The guidance.yml section of `next_steps` for each situation of the home.
NEXT_STEPS_SECTION = {
    "initial_pending": "initial_pending",
    "blocked": "blocked",
    "ready": "initial_done",
    "in_progress": "transfer_in_progress",
    "transfer_done": "transfer_done",
    "not_found": "not_found",
}


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
    """The section of guidance.yml that answers a topic (next_steps, materials, where_to_apply)."""
    if topic == "where_to_apply":
        return guidance.get("where_to_apply")
    if topic == "materials":
        materials = guidance.get("materials") or {}
        if case in ("initial_pending", "blocked"):
            return materials.get("initial_pending")
        if case == "not_found":
            return materials.get("general") or materials.get("transfer_registration")
        return materials.get("transfer_registration")
    steps = guidance.get("next_steps") or {}
    return steps.get(NEXT_STEPS_SECTION.get(case, "not_found")) or steps.get("not_found")


def answer(
    reply: Reply,
    guidance: dict[str, Any],
    topic: str,
    home: dict[str, Any] | None,
    blockers: list[dict[str, Any]] | None = None,
) -> None:
    """Answer one guidance topic for the home (or in general when no home is known yet)."""
    case = situation(home)
    section = pick_section(guidance, topic, case)
    if not section:
        reply.say("utter_api_down_guidance", kind="error")
        return
    text = section_text(section)
    if home and case != "not_found" and topic != "where_to_apply":
        text = reply.text("utter_guidance_for_home", project=home.get("name")) + "\n" + text
    if topic == "next_steps" and case in ("initial_pending", "blocked") and blockers:
        first_steps = [s for b in blockers for s in (b.get("resident_next_steps") or [])[:1]]
        if first_steps:
            text += "\n" + "\n".join(f"· {s}" for s in dict.fromkeys(first_steps[:3]))
    reply.add(text)
    if case == "not_found" and topic != "where_to_apply":
        reply.say("utter_guidance_needs_home")
