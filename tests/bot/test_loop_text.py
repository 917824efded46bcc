"""The parsing behind the loop: satisfaction verdicts, notification commands, asking for a person,
and dates in Asia/Shanghai days."""

from __future__ import annotations

from datetime import date

import pytest

from actions import text as textmod
from actions.common import short_date


def test_dates_are_shanghai_days_with_the_year_only_when_another() -> None:
    today = date(2026, 12, 2)
    assert short_date("2026-12-03", today) == "12月3日"
    assert short_date("2026-12-02T16:30:00+00:00", today) == "12月3日"
    assert short_date("2026-12-03T00:30:00+08:00", today) == "12月3日"
    assert short_date("2027-01-05", today) == "2027年1月5日"
    assert short_date("", today) == "" and short_date("not a date", today) == ""


@pytest.mark.parametrize(
    ("said", "verdict"),
    [
        ("满意", "satisfied"),
        ("非常满意", "satisfied"),
        ("基本满意", "basically_satisfied"),
        ("还行", "basically_satisfied"),
        ("一般般吧", "basically_satisfied"),
        ("不满意", "unsatisfied"),
        ("不太满意", "unsatisfied"),
        ("不行，没解决", "unsatisfied"),
        ("不满意，部门答复说了等于没说，等了半年还是老样子", "unsatisfied"),
        ("我家观象山庄3号楼的房本还是办不下来太差了", None),
        ("你好", None),
    ],
)
def test_satisfaction_as_residents_say_it(said: str, verdict: str | None) -> None:
    assert textmod.satisfaction_of(said) == verdict


@pytest.mark.parametrize(
    ("said", "reason"),
    [
        ("不满意", False),
        ("不行，没解决", False),
        ("很不满意！", False),
        ("不满意这个处理结果", False),
        ("不满意，答复是敷衍", True),
        ("不太满意，等了半年还是老样子", True),
    ],
)
def test_a_reason_beside_the_verdict(said: str, reason: bool) -> None:
    assert bool(textmod.feedback_reason(said)) is reason


@pytest.mark.parametrize(
    ("said", "notify"),
    [
        ("不用通知我了", False),
        ("别给我发消息了", False),
        ("取消通知", False),
        ("以后不要再通知我", False),
        ("恢复通知", True),
        ("还是通知我吧", True),
        ("开发商通知去签字 俺去不去", None),
        ("等通知就行了吗", None),
    ],
)
def test_notification_commands(said: str, notify: bool | None) -> None:
    assert textmod.notify_command(said) is notify


@pytest.mark.parametrize(
    ("said", "person"),
    [
        ("转人工", True),
        ("人工客服", True),
        ("人工", True),
        ("找人工", True),
        ("我要转人工 投诉开发商", False),  # a petition word: the form
        ("你是人工智能吗", False),
        ("回答我的是人工吗", False),
    ],
)
def test_asking_for_a_person(said: str, person: bool) -> None:
    assert textmod.wants_person(said) is person
