"""Small helpers shared by the actions: slot resets, dates, the offer of a person."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher


def first(data: dict[str, Any] | None, *keys: str, default: Any = None) -> Any:
    """The first of the keys present (not None) in a mapping."""
    for key in keys:
        if data and data.get(key) is not None:
            return data[key]
    return default


def chinese_date(value: Any) -> str:
    """'2026-11-30' (or a datetime string) → '2026年11月30日'; other text unchanged."""
    if not value:
        return ""
    raw = str(value)[:10]
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        return str(value)
    return f"{day.year}年{day.month}月{day.day}日"


SHANGHAI = ZoneInfo("Asia/Shanghai")


def shanghai_day(value: Any) -> date | None:
    """The Asia/Shanghai calendar day of an ISO date or datetime ('…T16:30:00+00:00' → next day)."""
    if not value:
        return None
    raw = str(value).strip()
    try:
        if len(raw) <= 10:
            return date.fromisoformat(raw)
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(SHANGHAI)
    return moment.date()


def short_date(value: Any, today: date | None = None) -> str:
    """'2026-12-03' or '…T09:00:00+08:00' → '12月3日' (with the year when not this year)."""
    day = shanghai_day(value)
    if day is None:
        return ""
    this_year = (today or datetime.now(SHANGHAI).date()).year
    prefix = "" if day.year == this_year else f"{day.year}年"
    return f"{prefix}{day.month}月{day.day}日"


def offer_human(dispatcher: CollectingDispatcher, response: str = "utter_offer_human") -> EventType:
    """Offer a person (buttons in the response) and remember that the offer stands."""
    dispatcher.utter_message(response=response)
    return SlotSet("offered_human", True)


def channel_of(tracker: Tracker) -> str:
    """The petition channel for the conversation's input channel."""
    # The web chat declares input_channel "webchat" on Rasa's REST channel (api/app/chat).
    channel = tracker.get_latest_input_channel()
    return channel if channel in ("wechat", "webchat") else "bot"


def split_lines(text: str, limit: int = 160) -> list[str]:
    """Split a long answer into phone-sized messages at line breaks."""
    messages: list[str] = []
    current = ""
    for line in (text or "").splitlines():
        line = line.strip()
        if not line:
            continue
        if current and len(current) + len(line) + 1 > limit:
            messages.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current:
        messages.append(current)
    return messages
