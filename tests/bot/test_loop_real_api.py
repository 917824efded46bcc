"""The loop against the REAL api (uvicorn, temp SQLite, demo ledger, its job worker): the turn
call, 不用通知我了, 转人工, a clerk taking over and handing back, the blockers a petition carries,
a department's published answer in the petition check, and 不满意 opening 复查."""

from __future__ import annotations

import dataclasses
import re
import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.clients import api
from actions.converse import ActionConverse
from actions.sensitive import seal

from .conftest import RealApi, make_tracker, running_api, slot_events

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]
ADMIN = "loop_admin"
PASSWORD = secrets.token_urlsafe(16)


@pytest.fixture(scope="module")
def real() -> Iterator[RealApi]:
    """The api with its worker and one admin account."""
    with running_api(worker=True) as running:
        running.cli(
            "-m",
            "app.staff.cli",
            "create-user",
            "--username",
            ADMIN,
            "--role",
            "admin",
            f"--password={PASSWORD}",  # a random password may begin with "-"
        )
        yield running


@pytest.fixture(autouse=True)
def _point_at_real_api(real: RealApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "settings", dataclasses.replace(api.settings, api_url=real.url))


@pytest.fixture(scope="module")
def staff(real: RealApi) -> Iterator[httpx.Client]:
    """An HTTP client logged in as the admin (bearer token)."""
    token = httpx.post(
        f"{real.url}/api/v1/auth/token",
        data={"username": ADMIN, "password": PASSWORD},
        timeout=30,
    )
    token.raise_for_status()
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    with httpx.Client(base_url=real.url, headers=headers, timeout=30) as client:
        yield client


def sender() -> str:
    """A new resident."""
    return f"web-loop-{uuid.uuid4().hex[:10]}"


async def say(
    domain: dict[str, Any],
    who: str,
    said: str,
    intent: str = "inform",
    channel: str = "webchat",
    **slots: Any,
) -> tuple[str, list[dict[str, Any]], dict[str, Any], list[dict[str, Any]]]:
    """One turn of action_converse: (text and buttons shown, messages, slots set, events)."""
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(text=said, intent=intent, slots=slots, sender_id=who, channel=channel)
    events = await ActionConverse().run(dispatcher, tracker, domain)
    shown = "\n".join(
        [m.get("text") or "" for m in dispatcher.messages]
        + [b["title"] for m in dispatcher.messages for b in m.get("buttons") or []]
    )
    return shown, dispatcher.messages, slot_events(events), events


async def test_notifications_off_and_on_are_stored(domain) -> None:
    who = sender()
    shown, _, _, _ = await say(domain, who, "不用通知我了", "deny")
    assert "不再" in shown and "恢复通知" in shown
    assert (await api.conversation_turn(who, "webchat", "你好"))["notify"] is False
    shown, _, _, _ = await say(domain, who, "恢复通知")
    assert "已恢复通知" in shown
    assert (await api.conversation_turn(who, "webchat", "你好"))["notify"] is True


async def test_a_person_in_or_outside_office_hours(domain, staff: httpx.Client) -> None:
    who = sender()
    shown, messages, _, _ = await say(domain, who, "转人工", "request_human")
    assert "我要信访" in [b["title"] for m in messages for b in m.get("buttons") or []]
    mode = (await api.conversation_turn(who, "webchat", "还要等多久"))["mode"]
    if "已为您转人工" in shown:
        assert mode == "waiting"
        waiting = staff.get("/api/v1/staff/conversations").json()["conversations"]
        assert any(c["mode"] == "waiting" for c in waiting)
    else:
        assert "不是人工服务时间" in shown and re.search(r"\d{1,2}:\d{2}", shown)
        assert mode == "bot"


async def test_a_clerk_takes_over_the_bot_is_silent_then_back(domain, staff: httpx.Client) -> None:
    who = sender()
    await say(domain, who, "你好", "greet")
    conversations = staff.get("/api/v1/staff/conversations").json()["conversations"]
    newest = max(conversations, key=lambda c: c["last_inbound_at"] or "")
    key = newest["key"]
    staff.post(f"/api/v1/staff/conversations/{key}/takeover").raise_for_status()

    slots = {"task": "petition", "requested_slot": "phone", "person_name": seal("王秀英")}
    shown, messages, _, events = await say(domain, who, "我的电话13912345678", **slots)
    assert not shown.strip() and events == []
    assert [m.get("custom") for m in messages] == [{"takeover": True}]
    detail = staff.get(f"/api/v1/staff/conversations/{key}").json()
    said = [m["text"] for m in detail["messages"] if m["from"] == "resident"]
    assert said and "13912345678" not in said[-1] and "5678" in said[-1]

    staff.post(f"/api/v1/staff/conversations/{key}/handback").raise_for_status()
    shown, _, _, _ = await say(domain, who, "你好", "greet")
    assert "房本助手" in shown


async def test_the_petition_carries_the_blockers_and_the_check_shows_the_published_answer(
    domain, staff: httpx.Client
) -> None:
    who = sender()
    _, _, found, _ = await say(domain, who, "观象山庄3号楼2单元501", "ask_certificate_status")
    assert set(found["explained_blockers"]) >= {"fire_acceptance", "civil_defense"}
    slots = {
        "task": "petition",
        "requested_slot": "consent",
        "person_name": seal("李秀梅"),
        "phone": seal("13912345678"),
        "address": "观象山庄3号楼2单元501",
        "description": "等了八年还没有房本",
        "home": found["home"],
        "explained_blockers": found["explained_blockers"],
    }
    shown, _, filed_slots, _ = await say(domain, who, "同意", "affirm", **slots)
    number = re.search(r"XF-\d{8}-\d{4}", shown).group(0)
    filed = filed_slots["filed"]

    petition = staff.get(f"/api/v1/staff/petitions/{number}").json()
    assert {b["code"] for b in petition["blockers"]} >= {"fire_acceptance", "civil_defense"}
    assert petition["channel"] == "webchat"
    assigned = staff.post(
        f"/api/v1/staff/petitions/{number}/assign",
        json={"departments": ["housing_bureau"], "version": petition["version"]},
    )
    assigned.raise_for_status()
    answered = staff.post(
        f"/api/v1/staff/petitions/{number}/answer",
        json={
            "answer": "内部：已约谈观象置业，消防整改材料12月20日前补齐。",
            "resident_text": "已约谈开发企业，要求12月20日前补齐消防整改材料。",
            "department": "housing_bureau",
            "version": assigned.json()["version"],
            "publish": True,
        },
    )
    answered.raise_for_status()

    check = "我的信访怎么样了"
    shown, messages, _, _ = await say(domain, who, check, "check_petition", filed=filed)
    assert number in shown and "住建局答复" in shown
    assert "已约谈开发企业，要求12月20日前补齐消防整改材料" in shown and "内部" not in shown
    assert re.search(r"\d{1,2}月\d{1,2}日", shown) and len(messages[0]["text"]) < 400

    # 办结, then the resident who filed it answers 不满意 with a reason: 复查 and its date.
    current = staff.get(f"/api/v1/staff/petitions/{number}").json()
    if "verify" in current["allowed_actions"]:
        current = staff.post(
            f"/api/v1/staff/petitions/{number}/transition",
            json={"action": "verify", "version": current["version"]},
        ).json()
    closed = staff.post(
        f"/api/v1/staff/petitions/{number}/close",
        json={"outcome": "开发企业已补齐材料，等待消防复验。", "version": current["version"]},
    )
    closed.raise_for_status()
    shown, _, _, _ = await say(domain, who, check, "check_petition", filed=filed)
    assert "已办结" in shown and "办理结果：开发企业已补齐材料" in shown

    reason = {"task": "feedback", "requested_slot": "reason", "petition_number": number}
    shown, _, _, _ = await say(domain, who, "还是没人来复验，等于没办", "complain", **reason)
    assert "复查" in shown and re.search(r"\d{1,2}月\d{1,2}日前", shown)
    reviewed = staff.get(f"/api/v1/staff/petitions/{number}").json()
    assert reviewed["status"] == "review" and reviewed["satisfaction"] == "unsatisfied"
    assert reviewed["satisfaction_source"] == "resident"
    assert "等于没办" in (reviewed["satisfaction_reason"] or "")
