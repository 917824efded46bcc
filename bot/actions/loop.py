"""The loop (docs/loop.md): the conversation's mode, a person (转人工), notifications on or off,
and the resident's own satisfaction after 办结.

Every turn first tells the api what the resident said (masked) and learns the conversation's
mode: a clerk who has taken over answers instead of the bot. The rest are commands a resident
may give at any point of a conversation; none of them traps the resident in a question.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from rasa_sdk import Tracker

from actions import text
from actions.clients import api
from actions.common import channel_of, short_date
from actions.sensitive import unseal
from actions.turnstate import TurnState
from privacy.redact import redact_value

logger = logging.getLogger(__name__)

MAX_TURN_TEXT = 1000
MAX_REASON = 500
# A bare name typed in answer to "your name?" is masked whole (as the tracker store does).
MAX_NAME_ANSWER = 20
# "算了" / "不说了" after "哪里不满意？": 不满意 is sent without a reason.
NO_REASON = re.compile(r"^(算了|不说了|不想说|没什么|没啥|不用了|就这样|就是不满意|没有了|没了)")
# After "哪里不满意？" these, when the NLU is this sure, are a new question, not the reason.
LEAVES_REASON = {
    "check_petition",
    "ask_certificate_status",
    "policy_faq",
    "ask_next_steps",
    "ask_materials",
    "ask_where_to_apply",
    "greet",
    "goodbye",
}
LEAVES_REASON_CONFIDENCE = 0.8
# Of those, the ones that leave even when not put as a question.
LEAVES_WITHOUT_QUESTION = {"greet", "goodbye"}
_ASKS = re.compile(r"哪|几|多久|多长|多少|进度")


def asks(message: str) -> bool:
    """A question ("办到哪一步了", "要多久"), not a statement of what is wrong."""
    return text.is_question(message) or bool(_ASKS.search(message))


# The buttons of utter_feedback_ask: a verdict even in the middle of a task.
BUTTON_VERDICTS = {label: code for code, label in text.SATISFACTION_LABELS.items()}


def masked_text(tracker: Tracker) -> str:
    """The resident's message with ID numbers, phones and any name they gave masked."""
    latest = tracker.latest_message or {}
    typed = str(latest.get("text") or "").strip()
    names: set[str] = set()
    for entity in latest.get("entities") or []:
        if entity.get("entity") == "person_name" and entity.get("value"):
            names.add(str(entity["value"]).strip())
    known = unseal(tracker.get_slot("person_name"))
    if known:
        names.add(known)
    if tracker.get_slot("requested_slot") == "person_name" and len(typed) <= MAX_NAME_ANSWER:
        names.add(typed)  # the answer to "your name?" is the name
    return str(redact_value(typed, names))[:MAX_TURN_TEXT]


async def conversation_state(tracker: Tracker, said: str) -> dict[str, Any]:
    """POST /conversations/turn; when the api cannot answer, the bot carries on as `bot`."""
    try:
        state = await api.conversation_turn(tracker.sender_id, channel_of(tracker), said)
    except api.ApiUnavailable as exc:
        logger.warning("conversation turn not recorded: api unavailable (%s)", exc)
        return {"mode": "bot"}
    except api.ApiError as exc:
        logger.warning("conversation turn not recorded: HTTP %s %s", exc.status, exc.code)
        return {"mode": "bot"}
    if not isinstance(state, dict) or state.get("mode") not in ("bot", "waiting", "staff"):
        logger.warning("conversation turn: unexpected answer, carrying on as bot")
        return {"mode": "bot"}
    return state


class LoopFlow(TurnState):
    """Mixin of the turn: 转人工, 不用通知我了 / 恢复通知, 满意 / 基本满意 / 不满意."""

    state: dict[str, Any]
    said: str
    feedback_done: bool

    async def loop_command(self) -> bool:
        """A command of the loop, answered; False when the message is for the rest of the turn."""
        task = self.get("task")
        if task == "feedback":
            if await self.feedback_reason_given():
                return True
            task = None
        notify = text.notify_command(self.message)
        if notify is not None:
            await self.set_notify(notify)
            if task:
                self.reask()
            return True
        number = self.state.get("feedback_for")
        if number:
            # Inside a task "不行" / "可以" answer its question; only a tapped verdict counts there.
            verdict = (
                text.satisfaction_of(self.message)
                if not task
                else BUTTON_VERDICTS.get(text.normalize(self.message))
            )
            if verdict:
                await self.feedback_given(str(number), verdict)
                if task and self.get("task") == task:
                    self.reask()
                return True
        if self.wants_person():
            if task in ("lookup", "lookup_id"):
                self.end_task()
                task = None
            await self.handoff(offer_petition=task != "petition")
            if task:
                self.reask()
            return True
        return False

    def wants_person(self) -> bool:
        """转人工 / 人工客服 / 找工作人员, or the NLU's request_human without petition words."""
        if text.wants_person(self.message):
            return True
        return (
            self.intent == "request_human"
            and self.understood
            and not text.wants_petition(self.message)
        )

    # -- a person ------------------------------------------------------------------------------

    async def handoff(self, offer_petition: bool = True) -> None:
        """POST /conversations/handoff: in office hours the queue and the wait, else when."""
        try:
            answer = await api.handoff(self.sender_id, channel_of(self.tracker))
        except (api.ApiUnavailable, api.ApiError) as exc:
            logger.warning("handoff failed: %s", type(exc).__name__)
            self.reply.say("utter_handoff_unavailable")
            self.set("offered_human", True)
            return
        if answer.get("office_hours"):
            position = _count(answer.get("position"))
            minutes = _count(answer.get("estimated_wait_minutes"))
            if position and minutes:
                self.reply.say("utter_handoff_queued", position=position, minutes=minutes)
            elif position:
                self.reply.say("utter_handoff_queued_no_wait", position=position)
            else:
                self.reply.say("utter_handoff_next")
            if offer_petition:
                # Only the button files: "好的" while waiting means "I'll wait", not "file it".
                self.reply.say("utter_handoff_petition_too")
            return
        hours = str(answer.get("hours_text") or "").strip().rstrip("。")
        next_open = str(answer.get("next_open") or "").strip()
        if next_open:
            self.reply.say("utter_handoff_closed", hours=hours, next_open=next_open)
        else:
            self.reply.say("utter_handoff_closed_no_next", hours=hours)
        if offer_petition:
            self.reply.say("utter_handoff_petition_now")
            self.set("offered_human", True)  # "好的" now files the petition

    # -- notifications ---------------------------------------------------------------------------

    async def set_notify(self, notify: bool) -> None:
        """POST /conversations/notify and a short confirmation with the way back."""
        try:
            answer = await api.set_notify(self.sender_id, notify)
        except (api.ApiUnavailable, api.ApiError) as exc:
            logger.warning("notify setting not saved: %s", type(exc).__name__)
            self.reply.say("utter_notify_failed", kind="error")
            return
        now = bool(answer.get("notify", notify))
        self.reply.say("utter_notify_on" if now else "utter_notify_off")

    # -- satisfaction ----------------------------------------------------------------------------

    async def feedback_given(self, number: str, verdict: str) -> None:
        """满意 / 基本满意 sent at once; 不满意 with its reason, asked once when not given."""
        if verdict == "unsatisfied":
            reason = text.feedback_reason(self.message)
            if not reason:
                self.set("task", "feedback")
                self.set("requested_slot", "reason")
                self.set("petition_number", number)
                self.set("feedback_asked", number)
                self.feedback_done = True
                self.reply.say("utter_feedback_why")
                return
            await self.send_feedback(number, verdict, self.said[:MAX_REASON])
            return
        await self.send_feedback(number, verdict, None)

    async def feedback_reason_given(self) -> bool:
        """The answer to "哪里不满意？": the reason, sent; False when it is a new question
        (不满意 is then sent without a reason and the message handled as usual)."""
        number = self.get("petition_number")
        self.end_task()
        self.set("petition_number", None)
        if not number:
            return False
        message = self.message
        leaves = (
            text.notify_command(message) is not None
            or text.wants_person(message)
            or bool(text.find_petition_number(message))
            or (
                self.understood
                and self.intent in LEAVES_REASON
                and self.confidence >= LEAVES_REASON_CONFIDENCE
                # "房本还是没拿到" reads like a status question but, said now, is the reason.
                and (self.intent in LEAVES_WITHOUT_QUESTION or asks(message))
            )
        )
        if leaves:
            await self.send_feedback(str(number), "unsatisfied", None)
            return False
        reason = None if NO_REASON.search(message) else self.said[:MAX_REASON]
        await self.send_feedback(str(number), "unsatisfied", reason)
        return True

    async def send_feedback(self, number: str, verdict: str, reason: str | None) -> None:
        """POST /petitions/{number}/feedback; thanks, or the review and its date."""
        self.feedback_done = True
        self.set("feedback_asked", number)
        try:
            answer = await api.petition_feedback(self.sender_id, number, verdict, reason)
        except api.ApiUnavailable:
            self.reply.say("utter_feedback_failed", kind="error")
            return
        except api.ApiError as error:
            self.reply.add(error.message)
            return
        if verdict == "satisfied":
            self.reply.say("utter_feedback_thanks")
        elif verdict == "basically_satisfied":
            self.reply.say("utter_feedback_thanks_basic")
        else:
            due = short_date(answer.get("review_due"))
            label = answer.get("status_label") or "复查中"
            if due:
                self.reply.say(
                    "utter_feedback_review", number=number, status_label=label, review_due=due
                )
            else:
                self.reply.say("utter_feedback_review_no_date", number=number)

    def ask_feedback(self) -> None:
        """Once per conversation, outside a task: 满意 / 基本满意 / 不满意 for a closed petition."""
        number = self.state.get("feedback_for")
        if not number or self.feedback_done or self.get("task"):
            return
        if self.get("feedback_asked") == number:
            return
        self.reply.say("utter_feedback_ask", number=number)
        self.set("feedback_asked", number)


def _count(value: Any) -> int | None:
    """A position or a wait in minutes as a positive integer, else None."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None
