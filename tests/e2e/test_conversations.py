"""End to end: residents talk to the running bot over the REST channel.

api (temp SQLite, demo ledger) + action server + Rasa (trained model, in-memory tracker store),
all on free loopback ports. Assertions are on the bot's real replies and on the database.
"""

from __future__ import annotations

import re
import sqlite3
import uuid

import pytest
from e2e_stack import Stack, demo_unit, petition_form_answer, texts

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

PETITION_NUMBER = re.compile(r"XF-\d{8}-\d{4}")
PHONE = "13912345678"


def _sender(tag: str) -> str:
    return f"e2e-{tag}-{uuid.uuid4().hex[:8]}"


def _assert_guanxiang_status(reply: str) -> None:
    """The status of 观象山庄 3-2-501: project, 首次登记 not done, its two blockers."""
    assert "观象山庄" in reply, reply
    assert "首次登记" in reply, reply
    assert "消防" in reply, reply  # fire_acceptance
    assert "人防" in reply, reply  # civil_defense
    assert "没有查到" not in reply, reply


def test_status_by_address_after_the_question(stack: Stack) -> None:
    sender = _sender("addr1")
    first = texts(stack.say(sender, "我家房本为什么一直办不下来"))
    assert "地址" in first or "身份证" in first, first
    reply = texts(stack.say(sender, "观象山庄3号楼2单元501"))
    _assert_guanxiang_status(reply)


@pytest.mark.parametrize(
    "message",
    [
        "观象山庄三号楼二单元五零一的房本咋还没办下来",
        "观象山庄3-2-501 房产证啥时候能办",
    ],
)
def test_status_by_address_in_other_forms_in_the_first_message(stack: Stack, message: str) -> None:
    reply = texts(stack.say(_sender("addr2"), message))
    _assert_guanxiang_status(reply)


def test_status_by_id_number_then_name(stack: Stack) -> None:
    owner = demo_unit("QS001", "3", "2", "501")
    sender = _sender("id")
    first = texts(stack.say(sender, f"帮我查下房本，身份证号{owner['身份证号']}"))
    assert "姓名" in first, first
    assert owner["身份证号"] not in first  # never echoed
    reply = texts(stack.say(sender, owner["业主姓名"]))
    _assert_guanxiang_status(reply)
    assert owner["身份证号"] not in reply


def test_ambiguous_address_offers_buttons_then_answers_the_choice(stack: Stack) -> None:
    sender = _sender("amb")
    replies = stack.say(sender, "阳光花2号楼1单元301的房本怎么还没办")
    buttons = [b for r in replies for b in (r.get("buttons") or [])]
    titles = " ".join(str(b.get("title")) for b in buttons)
    assert "阳光花园" in titles and "阳光花苑" in titles, texts(replies)
    assert "都不是" in titles, texts(replies)
    for button in buttons:  # taps arrive as typed text: plain payloads, never "/intent"
        assert not str(button.get("payload", "")).lstrip().startswith("/"), button
    choice = next(b for b in buttons if "阳光花园" in str(b.get("title")))
    reply = texts(stack.say(sender, str(choice["payload"])))
    assert "阳光花园" in reply, reply
    assert "土地出让金" in reply, reply  # QS002's blocker: land_premium_unpaid


def _answer_petition_form(stack: Stack, sender: str, first_reply: str) -> str:
    """Answer whatever the petition form asks until the bot gives a petition number."""
    answers_given: list[str] = []
    reply = first_reply
    for _ in range(10):
        if PETITION_NUMBER.search(reply):
            return reply
        try:
            answer = petition_form_answer(
                reply,
                name="刘桂芳",
                phone=PHONE,
                story="交房五年了房本一直办不下来，开发商说消防验收没过，我们也不知道找谁",
            )
        except AssertionError as exc:
            raise AssertionError(f"after {answers_given}: {exc}") from None
        answers_given.append(answer)
        reply = texts(stack.say(sender, answer))
    raise AssertionError(f"no petition number after {answers_given}: {reply}")


def test_complaint_becomes_a_petition_stored_in_the_database_then_checked(stack: Stack) -> None:
    sender = _sender("petition")
    vent = texts(stack.say(sender, "气死了 交房都五年了房本还办不下来 天天推来推去没人管"))
    assert any(w in vent for w in ("理解", "着急", "抱歉", "辛苦")), vent  # empathy
    assert any(w in vent for w in ("工作人员", "人工", "信访", "反映")), vent  # offer of a person
    ask = texts(stack.say(sender, "我要找人反映，登记信访"))
    reply = _answer_petition_form(stack, sender, ask)
    number = PETITION_NUMBER.search(reply).group(0)
    assert any(w in reply for w in ("工作日", "答复", "前")), reply  # the answer deadline

    with sqlite3.connect(stack.database) as db:
        row = db.execute(
            "SELECT person_name, phone, description, consent, channel, status, address"
            " FROM petition WHERE number = ?",
            (number,),
        ).fetchone()
    assert row is not None, number
    person_name, phone, description, consent, channel, status, address = row
    assert person_name == "刘桂芳"
    assert phone == PHONE
    assert "消防" in description
    assert consent == 1 and status == "accepted"
    assert channel == "bot"  # the REST channel; the web chat records "webchat"

    # Staff see the conversation that led to it, masked (issue 11's petition conversation).
    with sqlite3.connect(stack.database) as db:
        turns = db.execute(
            "SELECT m.sender, m.text FROM petition_messages m JOIN petition p"
            " ON p.id = m.petition_id WHERE p.number = ? ORDER BY m.position",
            (number,),
        ).fetchall()
    assert turns[0] == ("resident", "气死了 交房都五年了房本还办不下来 天天推来推去没人管")
    assert {sender for sender, _ in turns} == {"resident", "bot"}
    shown = "\n".join(t for _, t in turns)
    assert PHONE not in shown and "刘桂芳" not in shown and "刘**" in shown

    # A new conversation asks about the petition with its number and phone.
    check = _sender("check")
    prompt = texts(stack.say(check, "我之前反映的信访件现在办到哪一步了"))
    assert "编号" in prompt or "XF" in prompt, prompt
    prompt = texts(stack.say(check, number))
    assert "手机" in prompt or "电话" in prompt, prompt
    result = texts(stack.say(check, PHONE))
    assert number in result, result
    assert "已受理" in result, result


def test_logs_hold_no_full_id_or_phone(stack: Stack) -> None:
    owner = demo_unit("QS001", "3", "2", "501")
    sender = _sender("logs")
    stack.say(sender, f"身份证{owner['身份证号']} 电话{PHONE}")
    stack.say(sender, owner["业主姓名"])
    for name in ("rasa", "actions", "api"):
        log = stack.log(name)
        assert owner["身份证号"] not in log, name
        assert PHONE not in log, name
