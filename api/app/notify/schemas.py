"""Request and response shapes of the conversation endpoints (docs/loop.md) and staff views."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from app.core.workdays import SHANGHAI


def _shanghai(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(SHANGHAI).isoformat()


# A moment in Asia/Shanghai time (+08:00); a naive value is UTC (SQLite hands those).
ShanghaiTime = Annotated[datetime, PlainSerializer(_shanghai, return_type=str | None)]
TurnChannel = Literal["webchat", "wechat", "bot"]


class TurnIn(BaseModel):
    """The resident's message (already masked by the bot)."""

    model_config = ConfigDict(extra="forbid")
    channel: TurnChannel = "bot"
    text: str = Field(default="", max_length=4000)


class TurnOut(BaseModel):
    """Who answers this turn: the bot, the bot while waiting for a person, or a clerk."""

    mode: Literal["bot", "waiting", "staff"]
    staff_name: str | None
    notify: bool
    feedback_for: str | None


class NotifyIn(BaseModel):
    """不用通知我了 (false) / 恢复通知 (true)."""

    model_config = ConfigDict(extra="forbid")
    notify: bool


class NotifyOut(BaseModel):
    """The resident's choice as stored."""

    notify: bool


class HandoffIn(BaseModel):
    """The resident asked for a person."""

    model_config = ConfigDict(extra="forbid")
    channel: TurnChannel = "bot"


class HandoffOut(BaseModel):
    """In office hours the place in the queue and the wait; outside them when to come back."""

    office_hours: bool
    position: int | None
    estimated_wait_minutes: int | None
    next_open: str | None
    hours_text: str


class ContactIn(BaseModel):
    """How the WeChat channel reaches this resident (the openid, stored encrypted)."""

    model_config = ConfigDict(extra="forbid")
    channel: Literal["wechat"]
    openid: str = Field(min_length=1, max_length=128)


class NotificationRead(BaseModel):
    """A notification as staff see it (the conversation key, never the sender id)."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    petition_id: int | None
    petition_number: str | None = None
    conversation: str | None = None
    channel: str | None
    kind: str
    text: str
    status: str
    attempts: int
    next_attempt_at: ShanghaiTime | None
    claimed_at: ShanghaiTime | None
    delivered_at: ShanghaiTime | None
    via: str | None
    last_error: str | None
    created_at: ShanghaiTime


class NotificationList(BaseModel):
    """Notifications, newest first."""

    notifications: list[NotificationRead]


class ConversationSummary(BaseModel):
    """One live conversation in the staff list."""

    key: str
    channel: str
    mode: Literal["bot", "waiting", "staff"]
    staff_username: str | None
    waiting_since: ShanghaiTime | None
    last_inbound_at: ShanghaiTime | None
    notify: bool


class ConversationList(BaseModel):
    """Waiting first, then taken over, then recently active."""

    conversations: list[ConversationSummary]


class ConversationMessageRead(BaseModel):
    """One message of the live conversation (masked)."""

    at: ShanghaiTime
    sender: Literal["resident", "bot", "staff"] = Field(serialization_alias="from")
    text: str
    staff_username: str | None


class ConversationDetail(ConversationSummary):
    """A conversation with its messages, oldest first."""

    messages: list[ConversationMessageRead]


class StaffMessageIn(BaseModel):
    """What the clerk writes to the resident."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=1000)
