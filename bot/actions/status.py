"""Status lookup: find the home by address or ID number and explain its blockers."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.clients import api
from actions.common import chinese_date, first, offer_human
from actions.sensitive import unseal

TRANSFER_LABELS = {"done": "已办结", "in_progress": "办理中", "not_started": "未办理"}
MAX_CANDIDATES = 5


def initial_registration_done(status: dict[str, Any] | None) -> bool:
    """Whether the project's 首次登记 is done, from the status object of the api."""
    initial = first(status, "initial_registration", default=None)
    if isinstance(initial, dict):
        return bool(initial.get("done"))
    return bool(first(status, "initial_registration_done", default=False))


def unit_label(unit: dict[str, Any] | None) -> str:
    """'3号楼2单元501室' from a unit's building, unit and room."""
    if not unit:
        return ""
    building = first(unit, "building", default="")
    part = first(unit, "unit", default="")
    room = first(unit, "room", default="")
    label = f"{building}号楼" if building else ""
    label += f"{part}单元" if part else ""
    label += f"{room}室" if room else ""
    return first(unit, "label", "display", default=label) or label


def candidate_text(candidate: dict[str, Any]) -> str:
    """The full address text of a candidate: project name and, when known, the unit."""
    project = candidate.get("project") or {}
    name = first(project, "name", default="") or first(candidate, "name", default="")
    return f"{name}{unit_label(candidate.get('unit'))}" or str(first(project, "code", default=""))


def _department_names(blocker: dict[str, Any]) -> str:
    value = first(blocker, "department_name", "department", "departments", default="")
    if isinstance(value, dict):
        value = first(value, "name", "code", default="")
    if isinstance(value, list):
        names = [first(v, "name", "code") if isinstance(v, dict) else str(v) for v in value]
        value = "、".join(n for n in names if n)
    return str(value or "")


def _policies(blocker: dict[str, Any]) -> list[str]:
    lines = []
    for item in blocker.get("policies") or []:
        if isinstance(item, dict):
            name, summary = item.get("name"), item.get("summary")
            if name and summary:
                lines.append(f"“{name}”：{summary}")
            elif name:
                lines.append(f"“{name}”")
        elif item:
            lines.append(f"“{item}”")
    return lines


def blocker_messages(index: int, blocker: dict[str, Any]) -> list[str]:
    """Two short messages for one open blocker: what and who; then what helps and what next."""
    name = first(blocker, "name", "code", default="")
    explanation = first(blocker, "explanation", default="")
    note = first(blocker, "note", default="")
    department = _department_names(blocker)
    what = f"卡点{index}：{name}。{explanation}"
    if note:
        what += f"\n本项目情况：{note}"
    if department:
        what += f"\n负责单位：{department}。"
    if blocker.get("buyer_at_fault") is False:
        what += "这不是您的过错，不需要您替开发企业补钱。"
    elif blocker.get("buyer_at_fault") is True:
        what += "这一项需要您本人办理。"
    policies = _policies(blocker)
    steps = [str(s) for s in (blocker.get("resident_next_steps") or []) if s]
    expected = chinese_date(
        first(blocker, "expected_date", "expected_resolution_date", "expected", default="")
    )
    time_limit = first(blocker, "time_limit", default="")
    more: list[str] = []
    if policies:
        more.append("适用政策：\n" + "\n".join(f"· {p}" for p in policies[:2]))
    if steps:
        more.append("您可以：\n" + "\n".join(f"· {s}" for s in steps[:3]))
    if expected:
        more.append(f"预计{expected}前化解。")
    elif time_limit:
        more.append(f"办理时限：{time_limit}")
    return [what] + (["\n".join(more)] if more else [])


def status_messages(result: dict[str, Any]) -> list[str]:
    """The status answer as several short messages a phone screen can take."""
    project = result.get("project") or {}
    status = result.get("status") or {}
    unit = result.get("unit")
    name = first(project, "name", default="您的小区")
    messages = [f"查到了：{name}{unit_label(unit)}。"]
    initial_done = initial_registration_done(status)
    transfer = first(unit or {}, "transfer_status", default=None)
    if initial_done:
        line = "小区的首次登记已经完成。"
    else:
        line = "小区的首次登记还没有完成，各家的房本要等它办完才能办。"
    if unit:
        label = first(unit, "transfer_status_label", default=TRANSFER_LABELS.get(transfer, ""))
        if transfer == "done":
            line += f"您家的转移登记：{label}，房本已经办好，可以去登记窗口领证。"
        elif transfer == "in_progress":
            line += f"您家的转移登记：{label}，登记窗口正在审核。"
        elif initial_done:
            line += f"您家的转移登记：{label}。现在就可以申请，问我“要带什么材料”。"
        else:
            line += f"您家的转移登记：{label}，首次登记办完后就能申请。"
    else:
        counts = first(status, "transfer_registration", default=None)
        if isinstance(counts, dict) and counts.get("units_total"):
            line += f"全小区{counts['units_total']}户中，已办结转移登记{counts.get('done', 0)}户。"
    messages.append(line)
    blockers = first(status, "open_blockers", "blockers", default=[]) or []
    if blockers:
        messages.append(f"目前还有{len(blockers)}个卡点没有解决：")
        for index, blocker in enumerate(blockers, start=1):
            messages.extend(blocker_messages(index, blocker))
    elif not initial_done:
        messages.append("台账里暂时没有登记具体卡点，可以问工作人员了解进度。")
    messages.append("还想知道“现在该做什么”“要带什么材料”“去哪里办”，直接问我就行。")
    return messages


def _reset_identity() -> list[EventType]:
    return [SlotSet("id_number", None), SlotSet("person_name", None)]


class ActionLookupStatus(Action):
    """Look the home up through the api and explain its status, blockers and next steps."""

    def name(self) -> str:
        """Action name."""
        return "action_lookup_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        """Call POST /api/v1/lookup and answer for unit, project, ambiguous, none or error."""
        address = tracker.get_slot("address")
        id_number = unseal(tracker.get_slot("id_number"))
        person_name = unseal(tracker.get_slot("person_name"))
        if not address and not (id_number and person_name):
            dispatcher.utter_message(response="utter_ask_address")
            return [SlotSet("lookup_result", "none")]
        try:
            if id_number and person_name:
                result = await api.lookup(
                    tracker.sender_id, id_number=id_number, person_name=person_name
                )
            else:
                result = await api.lookup(tracker.sender_id, address=address)
        except api.ApiUnavailable:
            dispatcher.utter_message(response="utter_api_down")
            return [SlotSet("lookup_result", "error"), *_reset_identity()]
        except api.ApiError as error:
            if error.status == 429:
                dispatcher.utter_message(text=error.message)
                return [SlotSet("lookup_result", "error"), *_reset_identity()]
            result = {"match": "none", "message": error.message}
        match = result.get("match")
        if match in ("unit", "project"):
            return self._found(dispatcher, result)
        if match == "ambiguous" and result.get("candidates"):
            return self._ambiguous(dispatcher, result)
        return self._not_found(dispatcher, tracker, result)

    @staticmethod
    def _found(dispatcher: CollectingDispatcher, result: dict[str, Any]) -> list[EventType]:
        for message in status_messages(result):
            dispatcher.utter_message(text=message)
        project = result.get("project") or {}
        status = result.get("status") or {}
        unit = result.get("unit") or {}
        initial_done = initial_registration_done(status)
        return [
            SlotSet("lookup_result", result["match"]),
            SlotSet("lookup_failures", 0.0),
            SlotSet("project_code", project.get("code")),
            SlotSet("project_name", project.get("name")),
            SlotSet("initial_done", initial_done),
            SlotSet("transfer_status", unit.get("transfer_status")),
            *_reset_identity(),
        ]

    @staticmethod
    def _ambiguous(dispatcher: CollectingDispatcher, result: dict[str, Any]) -> list[EventType]:
        buttons = []
        for candidate in result["candidates"][:MAX_CANDIDATES]:
            label = candidate_text(candidate)
            # Plain text payloads: the NLU reads them like a typed address (no "/intent").
            buttons.append({"title": label, "payload": label})
        buttons.append({"title": "都不是", "payload": "都不是"})
        dispatcher.utter_message(response="utter_ambiguous_address", buttons=buttons)
        return [SlotSet("lookup_result", "ambiguous"), SlotSet("address", None)]

    @staticmethod
    def _not_found(
        dispatcher: CollectingDispatcher, tracker: Tracker, result: dict[str, Any]
    ) -> list[EventType]:
        failures = int(tracker.get_slot("lookup_failures") or 0) + 1
        message = result.get("message")
        if message:
            dispatcher.utter_message(text=str(message))
        events: list[EventType] = [
            SlotSet("lookup_result", "none"),
            SlotSet("lookup_failures", float(failures)),
            SlotSet("address", None),
            *_reset_identity(),
        ]
        if failures >= 2:
            dispatcher.utter_message(response="utter_not_found_twice")
            events.append(offer_human(dispatcher))
        else:
            dispatcher.utter_message(response="utter_not_found")
        return events


class ActionNoneOfCandidates(Action):
    """The resident's home is none of the candidates: ask again for the full address."""

    def name(self) -> str:
        """Action name."""
        return "action_none_of_candidates"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        """Acknowledge and leave the ambiguous state (the lookup form asks next)."""
        dispatcher.utter_message(response="utter_none_of_candidates")
        return [SlotSet("lookup_result", "none"), SlotSet("address", None)]
