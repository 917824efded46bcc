"""A project whose 预计化解日期 has passed with blockers still open: the resident is told the date
slipped, never shown the past date as a promise (the api's `expected_date_passed`)."""

from __future__ import annotations

from typing import Any

from actions import status as status_actions
from actions.replies import Reply

from . import payloads


def _texts(reply: Reply) -> str:
    return "\n".join(str(b.get("text") or "") for b in reply.bubbles)


def _slipped() -> dict[str, Any]:
    result = payloads.unit_match()
    result["status"]["expected_resolution_date"] = "2026-10-31"
    result["status"]["expected_date_passed"] = True
    for blocker in result["status"]["open_blockers"]:
        blocker["expected_date"] = "2026-10-31"
    return result


def test_summary_says_the_date_slipped(domain: dict[str, Any]) -> None:
    reply = Reply(domain)
    status_actions.summary(reply, _slipped())
    said = _texts(reply)
    assert "延期" in said
    assert "预计2026年10月31日前化解" not in said


def test_details_and_when_say_the_date_slipped(domain: dict[str, Any]) -> None:
    result = _slipped()
    home = status_actions.home_from_result(result)
    reply = Reply(domain)
    status_actions.details(reply, result["status"], home)
    status_actions.when_answer(reply, result["status"], home)
    said = _texts(reply)
    assert said.count("延期") == 2
    assert "预计2026年10月31日前化解" not in said


def test_a_future_date_is_still_shown_as_expected(domain: dict[str, Any]) -> None:
    reply = Reply(domain)
    status_actions.summary(reply, payloads.unit_match())
    said = _texts(reply)
    assert "延期" not in said
    assert "2027年" in said
