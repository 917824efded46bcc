"""The home's status, as a phone can take it: a short summary first, details on request.

The status object is the api's `ProjectStatusRead` (`POST /api/v1/lookup` → `status`, and
`GET /api/v1/projects/{code}/status`); the bot reads one spelling of each field. Every sentence
comes from a response in bot/domain/status.yml or from the catalogue text the api sends.
"""

from __future__ import annotations

from typing import Any

from actions.common import chinese_date
from actions.replies import Reply
from actions.text import unit_text


def home_from_result(result: dict[str, Any]) -> dict[str, Any]:
    """What the conversation remembers of a found home (no owner data)."""
    project = result.get("project") or {}
    status = result.get("status") or {}
    unit = result.get("unit") or None
    home: dict[str, Any] = {
        "code": project.get("code"),
        "name": project.get("name"),
        "initial_done": bool((status.get("initial_registration") or {}).get("done")),
        "blockers": len(status.get("open_blockers") or []),
        "unit_found": bool(unit),
    }
    if unit:
        home.update(
            building=str(unit.get("building") or ""),
            unit=str(unit.get("unit") or ""),
            room=str(unit.get("room") or ""),
            transfer_status=unit.get("transfer_status"),
        )
    return home


def home_label(home: dict[str, Any]) -> str:
    """'观象山庄3号楼2单元501', or the project name alone."""
    return f"{home.get('name') or ''}{unit_text(home) if home.get('unit_found') else ''}"


def situation(home: dict[str, Any] | None) -> str:
    """initial_pending, blocked (first registration done, blockers open), ready, in_progress,
    transfer_done or not_found: the case the answers and the guidance follow."""
    if not home or not home.get("code"):
        return "not_found"
    if not home.get("initial_done"):
        return "initial_pending"
    if home.get("transfer_status") == "done":
        return "transfer_done"
    if home.get("transfer_status") == "in_progress":
        return "in_progress"
    if home.get("blockers"):
        return "blocked"
    return "ready"


def blocker_line(blocker: dict[str, Any]) -> str:
    """One open blocker in one line: the ledger's note (else the catalogue name) and who."""
    what = blocker.get("note") or blocker.get("name") or ""
    department = (blocker.get("department") or {}).get("name") or ""
    return f"· {what}（{department}）" if department else f"· {what}"


def expected_date(status: dict[str, Any]) -> str:
    """The project's expected resolution date in Chinese, or ''."""
    return chinese_date(status.get("expected_resolution_date"))


def summary(reply: Reply, result: dict[str, Any]) -> None:
    """The first answer to a status question (about 200 characters) with the follow-up buttons."""
    status = result.get("status") or {}
    home = home_from_result(result)
    case = situation(home)
    unit = result.get("unit") or {}
    transfer = unit.get("transfer_status_label") or ""
    scope = "unit" if home.get("unit_found") else "project"
    lines = [reply.text("utter_status_found", home=home_label(home))]
    counts = status.get("transfer_registration") or {}
    lines.append(
        reply.text(
            f"utter_state_{case}_{scope}",
            transfer=transfer,
            done=counts.get("done", 0),
            total=counts.get("units_total", 0),
        )
    )
    blockers = status.get("open_blockers") or []
    if blockers:
        lines.append(reply.text("utter_status_blockers", count=len(blockers)))
        lines.extend(blocker_line(b) for b in blockers)
        date = expected_date(status)
        if date and status.get("expected_date_passed"):
            lines.append(reply.text("utter_status_date_passed", date=date))
        elif date:
            lines.append(reply.text("utter_status_expected", date=date))
        else:
            lines.append(reply.text("utter_status_no_date"))
    elif case == "initial_pending":
        lines.append(reply.text("utter_status_no_blockers_listed"))
    lines.append(reply.text(f"utter_status_now_{case}"))
    if scope == "project":
        lines.append(reply.text("utter_status_ask_unit"))
    reply.add("\n".join(line for line in lines if line))
    reply.say("utter_status_more")


def details(reply: Reply, status: dict[str, Any], home: dict[str, Any]) -> None:
    """详细原因: each open blocker explained (about 300 characters), one policy per reply."""
    blockers = status.get("open_blockers") or []
    if not blockers:
        reply.say(f"utter_details_none_{situation(home)}")
        return
    reply.say("utter_details_intro", project=home.get("name") or "")
    policy_said = False
    for index, blocker in enumerate(blockers, start=1):
        lines = [f"{index}. {blocker.get('name') or ''}"]
        if blocker.get("note"):
            lines.append(reply.text("utter_details_note", note=blocker["note"]))
        lines.append(str(blocker.get("explanation") or ""))
        department = (blocker.get("department") or {}).get("name")
        if department:
            lines.append(reply.text("utter_details_department", department=department))
        date = chinese_date(blocker.get("expected_date"))
        if date and status.get("expected_date_passed"):
            lines.append(reply.text("utter_details_date_passed", date=date))
        elif date:
            lines.append(reply.text("utter_details_expected", date=date))
        elif blocker.get("time_limit"):
            lines.append(reply.text("utter_details_time_limit", limit=blocker["time_limit"]))
        reply.add("\n".join(line for line in lines if line))
        policies = blocker.get("policies") or []
        if policies and not policy_said:
            policy = policies[0]
            reply.add(
                reply.text(
                    "utter_details_policy", name=policy.get("name"), text=policy.get("summary")
                )
            )
            policy_said = True
    reply.say("utter_status_more_after_details")


def when_answer(reply: Reply, status: dict[str, Any], home: dict[str, Any]) -> None:
    """多久 / 什么时候: from the project's own expected date and the registration time limit."""
    case = situation(home)
    date = expected_date(status)
    if case in ("initial_pending", "blocked"):
        if date and status.get("expected_date_passed"):
            reply.say("utter_when_date_passed", project=home.get("name"), date=date)
        elif date:
            reply.say("utter_when_expected", project=home.get("name"), date=date)
        else:
            reply.say("utter_when_no_date", project=home.get("name"))
    else:
        reply.say(f"utter_when_{case}")


def who_answer(reply: Reply, status: dict[str, Any], home: dict[str, Any]) -> None:
    """谁负责 / 找谁: the departments of the project's open blockers."""
    blockers = status.get("open_blockers") or []
    if not blockers:
        reply.say(f"utter_who_{situation(home)}")
        return
    lines = [reply.text("utter_who_intro", project=home.get("name"))]
    for blocker in blockers:
        department = (blocker.get("department") or {}).get("name") or ""
        lines.append(
            reply.text("utter_who_line", blocker=blocker.get("name"), department=department)
        )
    reply.add("\n".join(lines))
    reply.say("utter_who_contacts")
