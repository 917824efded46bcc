"""The counts the maintainers' quality page is built from (both backends): every bot turn is
counted on the resident's contact; asking for a person is remembered in and out of office hours;
a takeover is remembered. No text is kept for these."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from staff.staffkit import make_user

from app.notify import service as notify

SENDER = "web-" + "q" * 32
# A Wednesday: 10:00 and 22:00 in Shanghai.
OPEN = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
CLOSED = datetime(2026, 12, 2, 14, 0, tzinfo=UTC)


@pytest.fixture
def at(monkeypatch):
    def set_clock(moment: datetime) -> None:
        monkeypatch.setattr(notify, "clock", lambda: moment)

    return set_clock


def test_turns_are_counted(db, at):
    at(OPEN)
    for text in ("你好", "观象山庄3号楼", "谢谢"):
        notify.turn(db, sender_id=SENDER, channel="webchat", text=text)
    contact = notify.get_contact(db, SENDER)
    assert contact is not None and contact.turns == 3
    assert contact.handoff_at is None and contact.staff_at is None


@pytest.mark.parametrize("moment", [OPEN, CLOSED], ids=["office-hours", "after-hours"])
def test_asking_for_a_person_is_remembered_in_and_out_of_hours(db, at, moment):
    at(moment)
    notify.turn(db, sender_id=SENDER, channel="webchat", text="转人工")
    answer = notify.handoff(db, sender_id=SENDER, channel="webchat")
    assert answer["office_hours"] is (moment == OPEN)
    contact = notify.get_contact(db, SENDER)
    assert contact is not None and contact.handoff_at is not None
    first = contact.handoff_at
    notify.handoff(db, sender_id=SENDER, channel="webchat")
    assert contact.handoff_at == first  # the first time counts


def test_a_takeover_is_remembered(db, at):
    at(OPEN)
    clerk = make_user(db, "clerk")
    notify.turn(db, sender_id=SENDER, channel="webchat", text="有人吗")
    notify.take_over(db, sender_id=SENDER, user=clerk)
    contact = notify.get_contact(db, SENDER)
    assert contact is not None and contact.staff_at is not None
