"""Petitions (信访): the petition questions, the read-back before consent, filing, and checks."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timezone
from typing import Any

from actions import text
from actions.clients import api
from actions.common import channel_of, short_date
from actions.sensitive import seal, unseal
from actions.status import home_label
from actions.turnstate import TurnState

PETITION_FIELDS = ("person_name", "phone", "address", "description")
FORGOT = re.compile(
    r"(忘|不记得|记不得|记不清|找不到|找不着|想不起|丢了|弄丢|没记|没有记|不知道|没了)"
)
PHONE_GONE = re.compile(r"(换了|换号|停机|不用了|注销|记不得|忘了|不记得|想不起)")
REFUSE_PHONE = re.compile(r"(不想|不愿|不留|不给|不方便|没有手机|没手机|为啥要|为什么要|干嘛要)")
EDIT = re.compile(r"(改一下|修改|改下|改改|写错|不对，?改|更改|重填|要改)")
# Which field the resident wants to change, from the words of the answer.
EDIT_FIELDS = (
    ("phone", re.compile(r"手机|电话|号码")),
    ("person_name", re.compile(r"姓名|名字|称呼")),
    ("address", re.compile(r"地址|房子|房屋|小区|楼|住址")),
    ("description", re.compile(r"情况|问题|描述|内容|反映|经过")),
)


# Intents a bare name is often mistaken for ("高雨" as out_of_scope): a valid name wins.
NAME_NOT_A_QUESTION = {"out_of_scope", "complain", "ask_certificate_status"}


MAX_TURNS = 80
MAX_TURN_CHARS = 1000
# A petition check a phone can take: each department answer cut to about 120 characters, the
# whole reply well under 400; at most three answers (the newest), the rest counted.
ANSWER_CHARS = 120
OUTCOME_CHARS = 120
NEXT_STEP_CHARS = 80
CHECK_CHARS = 380
MAX_ANSWERS = 3
MIN_ANSWER_CHARS = 40
_CLAUSE_END = "。；！？;!?，,"


def clip(said: str | None, limit: int) -> str:
    """A text cut to `limit` characters with "…", at a clause end when one is near the limit."""
    value = re.sub(r"\s+", " ", str(said or "")).strip()
    if len(value) <= limit:
        return value
    cut = value[: limit - 1]
    end = max(cut.rfind(ch) for ch in _CLAUSE_END)
    if end >= limit * 0.6:
        cut = cut[:end]
    return cut.rstrip(_CLAUSE_END + " ") + "…"


def conversation(tracker: Any, person_name: str | None) -> list[dict[str, str]]:
    """The conversation so far, for the staff who handle the petition: ID numbers and phones
    masked, the petitioner's name masked, at most the last 80 turns."""
    turns: list[dict[str, str]] = []
    for event in tracker.events or []:
        kind = event.get("event")
        said = str(event.get("text") or "").strip()
        if kind not in ("user", "bot") or not said:
            continue
        said = text.mask_numbers(said)
        if person_name:
            said = said.replace(person_name, text.mask_name(person_name))
        at = datetime.fromtimestamp(float(event.get("timestamp") or 0), tz=timezone.utc)
        turns.append(
            {
                "at": at.isoformat(),
                "from": "resident" if kind == "user" else "bot",
                "text": said[:MAX_TURN_CHARS],
            }
        )
    return turns[-MAX_TURNS:]


def idempotency_key(sender_id: str, body: dict[str, Any]) -> str:
    """Same sender and same contents → same key, so a retried turn files only once."""
    # The conversation grows with every retry; the petition is the same one.
    keys = [k for k in sorted(body) if k not in ("channel", "conversation")]
    parts = [sender_id] + [str(body.get(k) or "") for k in keys]
    return "bot-" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:48]


class PetitionFlow(TurnState):
    """Mixin of the turn: the petition questions, read-back, filing and petition checks."""

    # -- the petition ------------------------------------------------------------------------

    def start_petition(self) -> None:
        """Begin the petition questions (the home is not asked when a lookup found it)."""
        self.set("offered_human", False)
        self.set("task", "petition")
        for field in ("person_name", "phone", "description", "consent"):
            self.set(field, None)
        home = self.get("home") or {}
        self.set("address", home_label(home) if home.get("code") else None)
        self.next_petition_question(first=True)

    def next_petition_question(self, first: bool = False) -> None:
        """Ask for the first missing field, or read back what will be sent."""
        if not self.get("person_name"):
            self.ask(
                "person_name",
                "utter_ask_petition_name_first" if first else "utter_ask_petition_name",
            )
        elif not self.get("phone"):
            self.ask("phone", "utter_ask_phone")
        elif not self.get("address"):
            self.ask("address", "utter_ask_petition_address")
        elif not self.get("description"):
            self.ask("description", "utter_ask_description")
        else:
            self.read_back()

    def read_back(self) -> None:
        """What will be sent, with name and phone masked, and the consent buttons."""
        self.set("requested_slot", "consent")
        self.reply.say(
            "utter_petition_read_back",
            name=text.mask_name(unseal(self.get("person_name"))),
            phone=text.mask_phone(unseal(self.get("phone"))),
            home=self.get("address") or "",
            summary=text.summary(self.get("description")),
        )

    async def petition_answer(self, intent: str, interrupted: bool) -> bool:
        """Take the answer to the pending petition question; False when it is not one."""
        asked = self.get("requested_slot")
        message = text.normalize(self.message)
        if asked == "person_name":
            name = text.name_in_answer(message)
            if name and (not interrupted or intent in NAME_NOT_A_QUESTION):
                self.set("person_name", seal(name))
                self.take_unmistakable(message)
                self.next_petition_question()
                return True
            if interrupted:
                return False
            if self.take_unmistakable(message):
                # A phone or an address given first: kept, and the name asked again.
                self.reply.say("utter_ask_petition_name_again")
                return True
            self.reply.say("utter_invalid_person_name", kind="error")
            return True
        if asked == "phone":
            phone, had_digits = text.phone_answer(message)
            if phone:
                self.set("phone", seal(phone))
                self.next_petition_question()
                return True
            if had_digits:
                self.reply.say("utter_invalid_phone", kind="error")
                return True
            if REFUSE_PHONE.search(message):
                self.reply.say("utter_phone_why")
                return True
            if interrupted or text.is_question(message):
                return False
            self.reply.say("utter_invalid_phone", kind="error")
            return True
        if asked == "address":
            if interrupted or len(message) < 2:
                return False
            self.set("address", message[:200])
            self.next_petition_question()
            return True
        if asked == "description":
            # Whatever the resident types now is the description (numbers in it included).
            if len(message) < 2:
                return False
            typed = str((self.tracker.latest_message or {}).get("text") or message)
            self.set("description", text.mask_numbers(typed)[:2000])
            self.next_petition_question()
            return True
        if asked == "consent":
            return await self.consent_answer(intent, message)
        if asked == "edit_field":
            for field, words in EDIT_FIELDS:
                if words.search(message):
                    self.set(field, None)
                    self.next_petition_question()
                    return True
            self.reply.say("utter_ask_edit_field")
            return True
        return False

    def take_unmistakable(self, message: str) -> bool:
        """A phone number or a full address in an answer about something else is kept."""
        taken = False
        phone = text.find_phone(message)
        if phone and not self.get("phone"):
            self.set("phone", seal(phone))
            taken = True
        parts = text.address_parts(message)
        if not self.get("address") and parts.get("building") and text.project_words(message):
            rest = re.sub(r"^[^，,。\s]*[，,。\s]+", "", message)
            rest = re.sub(r"^(俺住|我住|住在|家在|我家在|俺家在|我家|俺家)", "", rest)
            self.set("address", rest[:200])
            taken = True
        return taken

    async def consent_answer(self, intent: str, message: str) -> bool:
        """同意 files the petition; 不同意 sends nothing; 改一下 asks which field."""
        if EDIT.search(message):
            self.set("requested_slot", "edit_field")
            self.reply.say("utter_ask_edit_field")
            return True
        if intent == "deny" or re.search(r"不同意|不行|不要|不可以|不提交|别提交", message):
            self.clear_petition()
            self.reply.say("utter_petition_no_consent")
            return True
        if intent == "affirm" or re.search(r"同意|可以|好的|行|是的|提交|没问题|对", message):
            await self.submit_petition()
            return True
        return False

    def clear_petition(self) -> None:
        """Forget the petition's fields (the sealed phone of a filed petition is kept apart)."""
        for field in ("person_name", "phone", "description", "consent"):
            self.set(field, None)
        self.end_task()

    async def submit_petition(self) -> None:
        """POST /api/v1/petitions with an idempotency key; answer with number and deadline."""
        phone = unseal(self.get("phone"))
        person_name = unseal(self.get("person_name"))
        if not phone or not person_name:
            self.clear_petition()
            self.reply.say("utter_petition_incomplete", kind="error")
            return
        body: dict[str, Any] = {
            "person_name": person_name,
            "phone": phone,
            "description": self.get("description") or "",
            "consent": True,
            "channel": channel_of(self.tracker),
        }
        home = self.get("home") or {}
        address = self.get("address")
        if home.get("code") and address == home_label(home):
            body["project_code"] = home["code"]
        body["address"] = address or home_label(home)
        blockers = list(self.get("explained_blockers") or [])
        if blockers:
            # What the bot explained, so that staff start from what the resident was told.
            body["blockers"] = blockers[:30]
        turns = conversation(self.tracker, person_name)
        if turns:
            body["conversation"] = turns
        key = idempotency_key(self.sender_id, body)
        try:
            created = await api.create_petition(self.sender_id, body, key)
        except api.ApiUnavailable:
            self.reply.say("utter_petition_api_down", kind="error")
            return
        except api.ApiError as error:
            self.reply.add(error.message)
            self.reply.say("utter_petition_fix", kind="error")
            self.set("requested_slot", "edit_field")
            return
        self.set("filed", {"number": created.get("number"), "phone": self.get("phone")})
        self.clear_petition()
        self.reply.say(
            "utter_petition_created",
            number=created.get("number", ""),
            status_label=created.get("status_label", ""),
            answer_due=short_date(created.get("answer_due")),
        )
        if created.get("provisional"):
            self.reply.say("utter_petition_due_provisional")

    # -- checking a petition -----------------------------------------------------------------

    async def start_check(self, number: str | None) -> None:
        """A petition check: at once for one filed here, else number (or phone+name) and phone."""
        filed = self.get("filed") or {}
        if number is None and filed.get("number"):
            await self.check(filed["number"], unseal(filed.get("phone")))
            return
        if number and filed.get("number") == number:
            await self.check(number, unseal(filed.get("phone")))
            return
        self.set("task", "check")
        if number:
            self.set("petition_number", number)
            phone = text.find_phone(self.message.replace(number, " "))
            if phone:
                await self.check(number, phone)
                return
            self.ask("phone", "utter_ask_check_phone")
        elif FORGOT.search(self.message):
            self.start_recover()
        else:
            self.ask("petition_number", "utter_ask_petition_number")

    def start_recover(self) -> None:
        """No number: find the resident's petitions by the phone and name given at intake."""
        self.set("task", "recover")
        self.ask("phone", "utter_ask_recover_phone")

    async def check_answer(self, interrupted: bool) -> bool:
        """Take the answer to the pending check question; False when it is not one."""
        asked = self.get("requested_slot")
        task = self.get("task")
        message = text.normalize(self.message)
        if asked == "petition_number":
            number = text.find_petition_number(message)
            if number:
                self.set("petition_number", number)
                phone = text.find_phone(message.replace(number, " "))
                if phone:
                    await self.check(number, phone)
                else:
                    self.ask("phone", "utter_ask_check_phone")
                return True
            if FORGOT.search(message):
                self.start_recover()
                return True
            if interrupted or not text.digits_of(message):
                self.end_task()
                return False
            self.reply.say("utter_invalid_petition_number", kind="error")
            return True
        if asked == "phone":
            phone, had_digits = text.phone_answer(message)
            if phone and task == "recover":
                name = text.name_beside_phone(message)
                if name:
                    await self.recover(phone, name)
                    return True
                self.set("phone", seal(phone))
                self.ask("person_name", "utter_ask_recover_name")
                return True
            if phone:
                await self.check(self.get("petition_number"), phone)
                return True
            if had_digits:
                self.reply.say("utter_invalid_phone", kind="error")
                return True
            if PHONE_GONE.search(message):
                self.end_task()
                self.reply.say("utter_recover_no_phone")
                self.offer_human()
                return True
            # Anything else leaves the check: the resident has moved on.
            self.end_task()
            return False
        if asked == "person_name" and task == "recover":
            name = text.name_from_text(message)
            if not name:
                if interrupted:
                    return False
                self.reply.say("utter_invalid_person_name", kind="error")
                return True
            await self.recover(unseal(self.get("phone")), name)
            return True
        return False

    async def check(self, number: str | None, phone: str | None) -> None:
        """POST /petitions/lookup by number and phone; the state, departments and dates."""
        self.set("petition_number", None)
        self.set("phone", None)
        self.end_task()
        if not number or not phone:
            self.reply.say("utter_petition_incomplete", kind="error")
            return
        try:
            found = await api.lookup_petition(self.sender_id, number, phone)
        except api.ApiUnavailable:
            self.reply.say("utter_api_down", kind="error")
            return
        except api.ApiError as error:
            self.reply.add(error.message)
            self.reply.say("utter_petition_check_retry", kind="error")
            return
        self.reply.add(self.petition_reply(found))

    def petition_reply(self, found: dict[str, Any], budget: int = CHECK_CHARS) -> str:
        """One petition as the resident reads it: state and departments, each department's
        approved answer, the outcome once closed, the next step and the dates that matter now
        (Asia/Shanghai days), within `budget` characters."""
        # `departments` is a list of Chinese names (PetitionStatusRead).
        departments = "、".join(str(d) for d in found.get("departments") or [] if d)
        head = self.reply.text(
            "utter_petition_status",
            number=found.get("number", ""),
            status_label=found.get("status_label", ""),
            departments=departments or self.reply.text("utter_petition_no_department"),
        )
        tail: list[str] = []
        if found.get("outcome"):
            tail.append(
                self.reply.text(
                    "utter_petition_outcome", outcome=clip(found["outcome"], OUTCOME_CHARS)
                )
            )
        if found.get("next_step"):
            tail.append(
                self.reply.text(
                    "utter_petition_next_step", next_step=clip(found["next_step"], NEXT_STEP_CHARS)
                )
            )
        tail.append(self.petition_dates(found))
        answers = [a for a in found.get("answers") or [] if a.get("text")]
        shown = answers[-MAX_ANSWERS:]
        lines = [head]
        if len(answers) > len(shown):
            tail.insert(
                0, self.reply.text("utter_petition_more_answers", count=len(answers) - len(shown))
            )
        if shown:
            room = budget - len(head) - sum(len(t) + 1 for t in tail if t)
            each = max(MIN_ANSWER_CHARS, min(ANSWER_CHARS, room // len(shown) - 16))
            for item in shown:
                lines.append(
                    self.reply.text(
                        "utter_petition_answer",
                        department=item.get("department_name") or item.get("department") or "",
                        at=short_date(item.get("at")),
                        text=clip(item.get("text"), each),
                    ).replace("（）", "")
                )
        lines += tail
        return "\n".join(line for line in lines if line)

    def petition_dates(self, found: dict[str, Any]) -> str:
        """The dates of the petition's present state: answer, closure, notice, review or close."""
        state = found.get("status")
        updated = short_date(found.get("updated_at"))
        if state == "closed" and found.get("closed_at"):
            return self.reply.text(
                "utter_petition_dates_closed", closed_at=short_date(found["closed_at"])
            )
        if state == "review" and found.get("review_due"):
            return self.reply.text(
                "utter_petition_dates_review",
                review_due=short_date(found["review_due"]),
                updated_at=updated,
            )
        if state == "public_notice" and found.get("notice_end"):
            return self.reply.text(
                "utter_petition_dates_notice",
                notice_end=short_date(found["notice_end"]),
                updated_at=updated,
            )
        if found.get("answers") and found.get("closure_due"):
            return self.reply.text(
                "utter_petition_dates_closure",
                closure_due=short_date(found["closure_due"]),
                updated_at=updated,
            )
        return self.reply.text(
            "utter_petition_dates_open",
            answer_due=short_date(found.get("answer_due")),
            updated_at=updated,
        )

    def petition_line(self, found: dict[str, Any]) -> str:
        """One petition of a list in one line."""
        return self.reply.text(
            "utter_petition_line",
            number=found.get("number", ""),
            status_label=found.get("status_label", ""),
            updated_at=short_date(found.get("updated_at")),
        )

    async def recover(self, phone: str | None, name: str) -> None:
        """POST /petitions/lookup by phone and name: the resident's petitions, newest first."""
        self.set("phone", None)
        self.end_task()
        if not phone:
            self.reply.say("utter_petition_incomplete", kind="error")
            return
        try:
            found = await api.find_petitions(self.sender_id, phone, name)
        except api.ApiUnavailable:
            self.reply.say("utter_api_down", kind="error")
            return
        except api.ApiError as error:
            if error.status == 404:
                self.reply.say("utter_recover_none")
                self.offer_human()
            else:
                self.reply.add(error.message)
            return
        petitions = found.get("petitions") or []
        if not petitions:
            self.reply.say("utter_recover_none")
            self.offer_human()
            return
        self.set("filed", {"number": petitions[0].get("number"), "phone": seal(phone)})
        # The newest in full, the others in a line each.
        others = [self.petition_line(p) for p in petitions[1:3]]
        header = self.reply.text("utter_recover_found", count=len(petitions))
        budget = CHECK_CHARS - len(header) - sum(len(line) + 1 for line in others)
        lines = [header, self.petition_reply(petitions[0], budget=budget), *others]
        self.reply.add("\n".join(lines))
