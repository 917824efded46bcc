"""Twins of the action tests against the REAL api (uvicorn, temp SQLite, demo ledger loaded)."""

from __future__ import annotations

import csv
import dataclasses
import re
from collections.abc import Iterator

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.clients import api
from actions.converse import ActionConverse
from actions.sensitive import seal

from .conftest import API_DIR, make_tracker, running_api, slot_events

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]


def demo_units(project: str) -> list[dict[str, str]]:
    """Rows of the demo ledger's units sheet for one project."""
    path = API_DIR / "app" / "ledger" / "demo_data" / "units.csv"
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return [row for row in csv.DictReader(handle) if row["项目编号"] == project]


@pytest.fixture(scope="module")
def api_url() -> Iterator[str]:
    """The api on a free loopback port with a fresh SQLite database and the demo ledger."""
    with running_api() as running:
        yield running.url


@pytest.fixture(autouse=True)
def _point_at_real_api(api_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "settings", dataclasses.replace(api.settings, api_url=api_url))


async def say(
    domain: dict,
    text: str,
    intent: str = "inform",
    response_key: str | None = None,
    **slots: object,
) -> tuple[str, list[dict], dict]:
    """One turn of action_converse against the real api: (shown text, messages, slots set)."""
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(text=text, intent=intent, slots=slots, response_key=response_key)
    events = await ActionConverse().run(dispatcher, tracker, domain)
    shown = "\n".join(
        [m.get("text") or "" for m in dispatcher.messages]
        + [b["title"] for m in dispatcher.messages for b in m.get("buttons") or []]
    )
    return shown, dispatcher.messages, slot_events(events)


@pytest.mark.parametrize(
    "address", ["观象山庄3号楼2单元501", "观象山庄三号楼二单元五零一", "观象山庄3-2-501"]
)
async def test_lookup_by_address_forms(domain, address: str) -> None:
    shown, _, slots = await say(domain, address, "ask_certificate_status")
    assert slots["home"]["code"] == "QS001" and slots["home"]["unit_found"] is True
    assert "观象山庄3号楼2单元501" in shown and "首次登记未完成" in shown
    assert "消防" in shown and "人防" in shown  # both open blockers of the demo project
    assert "2027年6月30日" in shown and "现在还不能申请转移登记" in shown


async def test_lookup_by_id_number_and_name_in_one_message(domain) -> None:
    row = demo_units("QS001")[0]
    shown, _, slots = await say(domain, f"{row['业主姓名']} {row['身份证号']}")
    assert slots["home"]["code"] == "QS001"
    assert f"{row['幢号']}号楼" in shown
    assert row["身份证号"] not in shown and row["业主姓名"] not in shown


async def test_ambiguous_address_offers_candidates_with_codes(domain) -> None:
    _, messages, slots = await say(domain, "阳光1号楼1单元101")
    buttons = [b for m in messages for b in m.get("buttons") or []]
    assert {c["code"] for c in slots["candidates"]} >= {"QS002", "QS003"}
    assert any(b["payload"].endswith("（QS002）") for b in buttons)
    assert buttons[-1]["title"] == "都不是"


async def test_unknown_project_is_not_found(domain) -> None:
    shown, _, slots = await say(domain, "不存在家园9号楼9单元909")
    assert "没有查到" in shown and slots.get("home") is None


async def test_next_steps_for_the_found_project(domain) -> None:
    home = {"code": "QS001", "name": "观象山庄", "initial_done": False, "blockers": 2}
    shown, _, _ = await say(domain, "我现在该做什么", "ask_next_steps", home=home)
    assert "首次登记还没办完" in shown and "现在还不能申请转移登记" in shown


async def test_faq_answer_from_the_catalogue(domain) -> None:
    shown, _, _ = await say(
        domain, "开发商跑了怎么办", "policy_faq", "policy_faq/developer_uncooperative"
    )
    assert "公告" in shown and "15个工作日" in shown


async def test_school_enrolment_answer_from_the_catalogue(domain) -> None:
    shown, _, _ = await say(
        domain, "没房本孩子能上学吗", "policy_faq", "policy_faq/school_enrolment"
    )
    assert "教育局" in shown


async def test_petition_filed_once_checked_at_once_and_found_without_the_number(domain) -> None:
    slots = {
        "task": "petition",
        "requested_slot": "consent",
        "person_name": seal("李秀梅"),
        "phone": seal("13912345678"),
        "address": "观象山庄3号楼2单元501",
        "description": "等了八年还没有房本",
    }
    numbers = []
    for _ in range(2):  # the same turn retried: one petition
        shown, _, set_slots = await say(domain, "同意", "affirm", **dict(slots))
        numbers.append(re.search(r"XF-\d{8}-\d{4}", shown).group(0))
    assert numbers[0] == numbers[1]
    filed = set_slots["filed"]
    assert filed["number"] == numbers[0] and filed["phone"].startswith("enc:")

    shown, _, _ = await say(domain, "我的信访怎么样了", "check_petition", filed=filed)
    assert numbers[0] in shown and "已受理" in shown and "答复期限" in shown

    recover = {"task": "recover", "requested_slot": "person_name", "phone": seal("13912345678")}
    shown, _, _ = await say(domain, "李秀梅", **recover)
    assert numbers[0] in shown

    wrong = {"task": "recover", "requested_slot": "person_name", "phone": seal("13800000000")}
    shown, _, _ = await say(domain, "李秀梅", **wrong)
    assert numbers[0] not in shown and "没有查到" in shown
