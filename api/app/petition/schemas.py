"""Request and response bodies of the public petition endpoints."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from app.core.workdays import SHANGHAI
from app.petition.staff_schemas import PetitionDetail
from app.status.address import to_simplified

PHONE_RE = re.compile(r"1[3-9]\d{9}")
NUMBER_RE = re.compile(r"XF-\d{8}-\d{4}")
Channel = Literal["wechat", "webchat", "bot", "phone", "visit", "console"]
MAX_TURNS = 80
MAX_TURN_CHARS = 1000
# Control characters a turn may not carry; a newline is kept (multi-line bot replies).
_TURN_CONTROL_RE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


def normalize_phone(raw: str) -> str:
    """Full-width digits, spaces, dashes and a +86 prefix removed; raises ValueError in Chinese."""
    value = unicodedata.normalize("NFKC", raw or "")
    value = re.sub(r"[\s\-()（）]", "", value)
    if value.startswith("+86"):
        value = value[3:]
    elif value.startswith("0086"):
        value = value[4:]
    if not PHONE_RE.fullmatch(value):
        raise ValueError("手机号应为11位数字，以1开头，请核对后重新输入")
    return value


class ConversationTurn(BaseModel):
    """One turn of the chat that led to the petition: `{at, from, text}`."""

    model_config = ConfigDict(extra="forbid")

    at: datetime = Field(description="ISO datetime; without an offset it is taken as UTC")
    sender: str = Field(alias="from", description='"resident" or "bot"')
    text: str

    @field_validator("at", mode="before")
    @classmethod
    def _at(cls, value: object) -> object:
        if not isinstance(value, str | datetime):
            raise ValueError("对话时间应为 ISO 格式的日期时间")
        return value

    @field_validator("at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)

    @field_validator("sender", mode="before")
    @classmethod
    def _sender(cls, value: object) -> str:
        if value not in ("resident", "bot"):
            raise ValueError("对话的发言方只能是 resident（居民）或 bot（机器人）")
        return str(value)

    @field_validator("text", mode="before")
    @classmethod
    def _text(cls, value: object) -> str:
        if not isinstance(value, str):
            raise ValueError("对话内容应为文字")
        value = value.replace("\r\n", "\n").strip()
        if not value:
            raise ValueError("对话内容不能为空")
        if len(value) > MAX_TURN_CHARS:
            raise ValueError(f"每条对话最多 {MAX_TURN_CHARS} 个字")
        if _TURN_CONTROL_RE.search(value):
            raise ValueError("对话内容里有不可见的控制字符，请去掉后重新提交")
        return value


class PetitionCreate(BaseModel):
    """What a resident (or the bot for them) submits."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    person_name: str = Field(min_length=1, max_length=32)
    phone: str = Field(max_length=20)
    address: str | None = Field(default=None, max_length=200)
    project_code: str | None = Field(default=None, max_length=32)
    description: str = Field(min_length=1, max_length=2000)
    consent: bool
    channel: Channel
    conversation: list[ConversationTurn] | None = Field(
        default=None, description=f"the chat so far, at most {MAX_TURNS} turns, oldest first"
    )
    blockers: list[str] | None = Field(
        default=None,
        max_length=30,
        description="blocker codes the bot explained to the resident (unknown codes are ignored)",
    )

    @field_validator("conversation", mode="before")
    @classmethod
    def _turns(cls, value: object) -> object:
        if isinstance(value, list) and len(value) > MAX_TURNS:
            raise ValueError(f"对话记录最多 {MAX_TURNS} 条")
        return value

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        return normalize_phone(value)

    @field_validator("person_name")
    @classmethod
    def _name(cls, value: str) -> str:
        if any(ch.isdigit() for ch in value):
            raise ValueError("姓名里不应有数字，请填写您的真实姓名")
        return value

    @model_validator(mode="after")
    def _home_and_consent(self) -> PetitionCreate:
        if not (self.address or self.project_code):
            raise ValueError("请告诉我们您的房屋地址或项目编号")
        if not self.consent:
            raise ValueError("需要您同意把信息转给相关部门，我们才能受理信访")
        return self


class PetitionCreated(BaseModel):
    """The acknowledgement: number, state and the date departments must answer by."""

    number: str
    status: str
    status_label: str
    answer_due: date
    provisional: bool


def normalize_person_name(raw: str) -> str:
    """A name as typed → the form two spellings of it are compared in: full-width to ASCII,
    spaces dropped, one middle dot ('阿依古丽·买买提'), Traditional characters simplified."""
    value = unicodedata.normalize("NFKC", raw or "")
    value = re.sub(r"\s+", "", value)
    value = re.sub(r"[·・•‧∙.．]", "·", value)
    return to_simplified(value)


class PetitionLookup(BaseModel):
    """A resident asks about a petition: `{petition_number, phone}` (the number and the phone
    given at intake) or, when the number is lost, `{phone, person_name}`."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {"petition_number": "XF-20261123-0007", "phone": "13912345678"},
                {"phone": "13912345678", "person_name": "李桂芳"},
            ]
        },
    )

    petition_number: str | None = Field(default=None, max_length=32)
    phone: str = Field(max_length=20)
    person_name: str | None = Field(default=None, min_length=1, max_length=32)

    @field_validator("petition_number")
    @classmethod
    def _number(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = unicodedata.normalize("NFKC", value).upper().replace("—", "-").replace(" ", "")
        if not NUMBER_RE.fullmatch(value):
            raise ValueError("信访编号格式应为 XF-年月日-四位序号，例如 XF-20261123-0007")
        return value

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        return normalize_phone(value)

    @model_validator(mode="after")
    def _one_way(self) -> PetitionLookup:
        if self.petition_number is not None and self.person_name is not None:
            raise ValueError("请只用一种方式查询：信访编号加手机号，或者手机号加姓名")
        if self.petition_number is None and self.person_name is None:
            raise ValueError("请提供信访编号；忘了编号的，请提供登记时的姓名")
        return self


def in_shanghai(moment: datetime) -> datetime:
    """The moment in Asia/Shanghai time (+08:00); a naive value is UTC (SQLite hands those)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(SHANGHAI)


ShanghaiTime = Annotated[datetime, AfterValidator(in_shanghai)]


class AnswerRead(BaseModel):
    """A department's answer as the resident may see it (approved by staff)."""

    department: str
    department_name: str
    text: str
    at: ShanghaiTime = Field(description="when it was approved, Asia/Shanghai (+08:00)")


class PetitionStatusRead(BaseModel):
    """What a resident may see of a petition."""

    number: str
    status: str
    status_label: str
    departments: list[str]
    updated_at: ShanghaiTime = Field(description="last change, in Asia/Shanghai time (+08:00)")
    answer_due: date
    answers: list[AnswerRead] = Field(default_factory=list)
    outcome: str | None = Field(default=None, description="once closed")
    closed_at: ShanghaiTime | None = None
    closure_due: date | None = None
    notice_end: date | None = Field(default=None, description="earliest end of the 公示")
    review_due: date | None = None
    next_step: str = Field(description="what happens next, in plain Chinese")


class FeedbackBody(BaseModel):
    """The resident's own answer after 办结."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    satisfaction: Literal["satisfied", "basically_satisfied", "unsatisfied"]
    reason: str | None = Field(default=None, max_length=500)


class FeedbackRead(BaseModel):
    """Where the petition stands after the resident's answer."""

    number: str
    status: str
    status_label: str
    review_due: date | None


class PetitionLookupList(BaseModel):
    """The petitions of a phone and name, newest first (`{phone, person_name}` lookups)."""

    petitions: list[PetitionStatusRead]


class ConversationTurnRead(BaseModel):
    """A stored turn as staff read it; `from` is "resident", "bot" or "staff"."""

    at: Annotated[datetime, AfterValidator(in_shanghai)] = Field(
        description="in Asia/Shanghai time (+08:00)"
    )
    sender: Literal["resident", "bot", "staff"] = Field(serialization_alias="from")
    text: str


class StaffPetitionDetail(PetitionDetail):
    """Everything staff see about one petition, with the conversation that led to it."""

    conversation: list[ConversationTurnRead]
    conversation_key: str | None = Field(
        default=None, description="key of the resident's live conversation (take over, write)"
    )
