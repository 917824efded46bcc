"""One action answers every turn: the resident's message, what the bot asked, what it knows.

Rasa's rules send each intent to `action_converse`; the state lives in slots (so any Rasa
replica behind the lock store can take the next turn). The turn first takes the answer to the
pending question (`requested_slot`), answers a remark or question in between and asks again,
and otherwise acts on the message. Whatever fails, the resident gets a reply and the next
message works.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from traceback import extract_tb
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import faq, guidance, observe, status, text
from actions.clients import api
from actions.lookup import LookupFlow
from actions.loop import LoopFlow, conversation_state, masked_text
from actions.petition import PetitionFlow
from actions.replies import Reply
from actions.sensitive import seal

logger = logging.getLogger(__name__)

# Slots the turn reads and writes (all declared in bot/domain/*.yml).
STATE_SLOTS = (
    "task",
    "requested_slot",
    "home",
    "parts",
    "candidates",
    "address",
    "id_number",
    "person_name",
    "phone",
    "description",
    "consent",
    "petition_number",
    "filed",
    "lookup_failures",
    "misunderstood",
    "offered_human",
    "last_topic",
    "explained_blockers",
    "feedback_asked",
)
TASK_SLOTS = ("task", "requested_slot", "id_number", "person_name", "phone", "description")
CANCEL = re.compile(
    r"算了|取消|不办了|不查了|不弄了|不登记了|不要了|退出|不填了|先不弄|停下|不问了"
)
WHEN = re.compile(r"多久|什么时候|啥时候|几时|多长时间|哪天|多少天|几天|几个月|要等|还要等")
WHY = re.compile(r"为什么|为啥|咋回事|怎么回事|原因|详细|具体|卡在|卡哪|什么问题|咋还|怎么还")
WHO = re.compile(r"谁负责|谁管|归谁|哪个部门|哪个单位|哪家单位|找谁|找哪|谁来管|谁办")
CONTACT = re.compile(
    r"电话|号码多少|去哪|哪儿|联系方式|几点|上班|下班|开门|周末|周六|周日|在哪|哪里办|怎么走|地址在"
)
WHAT_IS = re.compile(r"是啥|是什么|什么意思|啥意思|啥叫|什么叫|指的是|是干啥")
# Words every blocker name shares; a term matches on the rest ("面积实测", "环评", "人防").
_GENERIC = re.compile(r"未完成|未通过|未缴清|未落实|未办理|不一致|或|及|的|问题|手续|缺少")
# Messages this short that carry one of the words above are follow-ups about the home.
FOLLOW_UP_CHARS = 24
# Intents after which a project name typed alone ("翠湖苑", "俺是金都大厦的") is looked up.
PROBE_INTENTS = {"inform", "complain", "ask_certificate_status", "nlu_fallback", "out_of_scope"}
# Button payloads of utter_status_more (bot/domain/status.yml) → what they ask for.
COMMANDS = {
    "详细原因": "details",
    "我该做什么": "next_steps",
    "要带什么材料": "materials",
    "去哪里办": "where_to_apply",
    "找工作人员": "human",
    "我要信访": "petition",
}
GUIDANCE_TOPIC = {
    "ask_next_steps": "next_steps",
    "ask_materials": "materials",
    "ask_where_to_apply": "where_to_apply",
}
# Intents that are a remark or question in the middle of a task, not an answer to it.
INTERRUPTIONS = {
    "policy_faq",
    "ask_next_steps",
    "ask_materials",
    "ask_where_to_apply",
    "bot_challenge",
    "complain",
    "check_petition",
    "ask_certificate_status",
    "request_human",
    "out_of_scope",
    "greet",
    "thank",
    "goodbye",
}
# The pipeline's FallbackClassifier already turns low confidence into nlu_fallback; this bar
# only keeps a weak guess from interrupting a form.
CONFIDENT = 0.4
# A "no" this short mid-task means stop ("不用了", "不要了"); a longer one is a remark.
SHORT_DENY_CHARS = 4
# A fallback whose runner-up is a policy question the FAQ selector is sure of is answered.
FAQ_SECOND_CHANCE = (0.25, 0.6)
# Right after a policy answer, a short follow-up ("那配套费呢") the selector is this sure of.
FAQ_FOLLOW_UP = (12, 0.75)
# Venting or a fallback whose FAQ topic the selector is this sure of also gets that answer.
FAQ_SURE = 0.75
SMALL_TALK = {"thank", "goodbye", "greet", "affirm"}
FAQ_SURE_INTENT = 0.15


class Turn(LoopFlow, LookupFlow, PetitionFlow):
    """The state of one conversation turn and the reply being built."""

    def __init__(
        self,
        tracker: Tracker,
        domain: dict[str, Any],
        state: dict[str, Any] | None = None,
        said: str = "",
    ) -> None:
        """Read the message, its understanding, the slots and the conversation's state (the
        api's answer to the turn: mode, feedback_for); `said` is the message masked."""
        self.tracker = tracker
        self.domain = domain
        self.state = dict(state or {"mode": "bot"})
        self.said = said
        self.feedback_done = False
        self.handed_off = False
        self.sender_id = tracker.sender_id
        self.reply = Reply(domain, seed=len(tracker.events))
        latest = tracker.latest_message or {}
        self.message = text.normalize(latest.get("text") or "")
        intent = latest.get("intent") or {}
        self.intent = str(intent.get("name") or "nlu_fallback")
        self.confidence = float(intent.get("confidence") or 0.0)
        if text.is_gibberish(self.message):
            self.intent, self.confidence = "nlu_fallback", 0.0
        elif self.intent == "nlu_fallback":
            self._second_chance(latest)
        self.entities: dict[str, str] = {}
        for entity in latest.get("entities") or []:
            name, value = entity.get("entity"), entity.get("value")
            if name and value and name not in self.entities:
                self.entities[str(name)] = str(value)
        self.slots = {name: tracker.get_slot(name) for name in STATE_SLOTS}
        self.changed: dict[str, Any] = {}
        if self.slots.get("last_topic"):
            self.set("last_topic", None)  # set again below only if this turn answers a policy

    def _second_chance(self, latest: dict[str, Any]) -> None:
        """A fallback with a clear reading after all: small talk that mixes two kinds, a clear
        lead for a status question, or a policy question whose topic the selector is sure of."""
        ranking = [r for r in latest.get("intent_ranking") or [] if r.get("name") != "nlu_fallback"]
        if not ranking:
            return
        names = [str(r.get("name")) for r in ranking[:2]]
        top = float(ranking[0].get("confidence") or 0.0)
        runner_up = float(ranking[1].get("confidence") or 0.0) if len(ranking) > 1 else 0.0
        selector = (latest.get("response_selector") or {}).get("policy_faq") or {}
        topic_sure = float((selector.get("response") or {}).get("confidence") or 0.0)
        after_faq = bool(self.tracker.get_slot("last_topic"))
        if top >= 0.25 and set(names) <= SMALL_TALK:
            # "好的谢谢 再见": thanks and goodbye at once is still small talk.
            self.intent = names[0]
        elif names[0] == "ask_certificate_status" and top >= 0.3 and top - runner_up >= 0.1:
            self.intent = names[0]
        elif after_faq and len(self.message) <= FAQ_FOLLOW_UP[0] and topic_sure >= FAQ_FOLLOW_UP[1]:
            self.intent = "policy_faq"
        elif names[0] == "policy_faq" and top >= FAQ_SECOND_CHANCE[0]:
            if topic_sure >= FAQ_SECOND_CHANCE[1]:
                self.intent = "policy_faq"
        if self.intent != "nlu_fallback":
            self.confidence = max(CONFIDENT, topic_sure if self.intent == "policy_faq" else 0.0)

    # -- state -------------------------------------------------------------------------------

    def get(self, name: str) -> Any:
        """A slot's value as of now in this turn."""
        return self.slots.get(name)

    def set(self, name: str, value: Any) -> None:
        """Set a slot (sent to Rasa at the end of the turn)."""
        self.slots[name] = value
        self.changed[name] = value

    def ask(self, slot: str, response: str, task: str | None = None) -> None:
        """Ask a question and remember what was asked."""
        if task:
            self.set("task", task)
        self.set("requested_slot", slot)
        self.reply.say(response)

    def end_task(self) -> None:
        """No task and no pending question any more."""
        self.set("task", None)
        self.set("requested_slot", None)

    def offer_human(self) -> None:
        """Offer a person (buttons in the response) and remember that the offer stands."""
        self.reply.say("utter_offer_human")
        self.set("offered_human", True)

    def explained(self, blockers: list[dict[str, Any]] | list[str]) -> None:
        """Remember the blocker codes this conversation explained (sent with a petition)."""
        known = list(self.get("explained_blockers") or [])
        for blocker in blockers:
            code = blocker.get("code") if isinstance(blocker, dict) else blocker
            if code and code not in known:
                known.append(str(code))
        if known != list(self.get("explained_blockers") or []):
            self.set("explained_blockers", known[-30:])

    def events(self) -> list[EventType]:
        """The slot changes of this turn."""
        return [SlotSet(name, value) for name, value in self.changed.items()]

    # -- the turn ----------------------------------------------------------------------------

    @property
    def understood(self) -> bool:
        """The NLU is confident about the intent."""
        return self.intent != "nlu_fallback" and self.confidence >= CONFIDENT

    @property
    def interrupted(self) -> bool:
        """The message is a remark or question rather than an answer to the pending question."""
        return self.understood and self.intent in INTERRUPTIONS

    async def handle(self) -> None:
        """Answer the message."""
        if not self.message:
            self.reply.say("utter_not_understood", kind="fallback")
            return
        if await self.loop_command():
            return
        task = self.get("task")
        if task and self.wants_to_stop():
            self.cancel()
            return
        asked = self.get("requested_slot")
        if task and await self.continue_task():
            if (self.get("task"), self.get("requested_slot")) != (task, asked):
                self.set("misunderstood", 0.0)  # the turn moved the task on
            return
        await self.fresh()

    def wants_to_stop(self) -> bool:
        """ "算了" / "不查了" / a bare "不用了" leaves the task; "我不想留手机号" does not."""
        if self.get("requested_slot") == "consent":
            return False  # 不同意 is the answer to the consent question, handled there
        if CANCEL.search(self.message):
            return True
        short = len(self.message) <= SHORT_DENY_CHARS
        return short and self.intent == "deny" and self.understood

    def cancel(self) -> None:
        """Leave the task; nothing is sent."""
        for name in TASK_SLOTS:
            self.set(name, None)
        self.set("parts", None)
        self.reply.say("utter_cancelled")

    async def continue_task(self) -> bool:
        """The answer to the pending question; a remark in between is answered, then asked again."""
        task = self.get("task")
        asked = self.get("requested_slot")
        if task == "petition":
            if await self.petition_answer(self.intent, self.interrupted):
                return True
        elif task in ("check", "recover"):
            if await self.check_answer(self.interrupted):
                return True
        elif task == "lookup_id" and asked == "person_name":
            if not self.interrupted and await self.owner_name_given():
                return True
        elif task == "lookup":
            if self.candidate_choice():
                return False
            if asked in ("address", "project") and not self.interrupted:
                if text.find_id_number(self.message):
                    return False
                if asked == "project" and text.project_words(self.message):
                    parts = dict(self.get("parts") or {})
                    parts.update(text.address_parts(self.message))
                    query = f"{text.project_words(self.message)}{text.unit_text(parts)}"
                    await self.run_lookup(query, parts, new_project=True)
                    return True
                if text.looks_like_address(self.message) or self.intent == "inform":
                    await self.lookup_address({**self.entities, "address": self.message})
                    return True
        if not self.get("task"):
            return False  # the answer attempt left the task: handle the message afresh
        # Not an answer: a remark or question in between (answered, then the question again),
        # or something that switches task only when the resident asks for it explicitly.
        if task in ("petition", "check", "recover") and self.intent in (
            "check_petition",
            "ask_certificate_status",
            "request_human",
        ):
            self.reply.say("utter_finish_first")
            self.reask()
            return True
        if task in ("lookup", "lookup_id") and self.intent in ("request_human", "check_petition"):
            self.end_task()
            return False
        if self.interrupted or self.understood:
            await self.answer_intent(in_task=True)
            if self.get("task"):
                self.reask()
            return True
        count = int(self.get("misunderstood") or 0) + 1
        self.set("misunderstood", float(count))
        if count >= 2 and task != "petition":
            # Twice not understood while looking up or checking: no loop, the offer of a person.
            self.end_task()
            self.fallback()
            return True
        self.reply.say("utter_not_understood_in_task", kind="fallback")
        self.reask()
        if count >= 2:
            self.reply.say("utter_form_stuck")
        return True

    async def handoff(self, offer_petition: bool = True) -> None:
        """转人工 (LoopFlow.handoff), remembered: the maintainers' inbox hears of it."""
        self.handed_off = True
        await super().handoff(offer_petition)

    def reask(self) -> None:
        """Ask the pending question again (short form)."""
        asked = self.get("requested_slot")
        task = self.get("task")
        if asked == "consent":
            self.reply.say("utter_ask_consent_again")
        elif task == "feedback":
            self.reply.say("utter_feedback_why")
        elif asked == "edit_field":
            self.reply.say("utter_ask_edit_field")
        elif task == "petition" and asked == "person_name":
            self.reply.say("utter_ask_petition_name")
        elif asked == "phone" and task in ("check", "recover"):
            self.reply.say(
                "utter_ask_check_phone" if task == "check" else "utter_ask_recover_phone"
            )
        elif asked in ("phone", "description", "petition_number"):
            self.reply.say(f"utter_ask_{asked}")
        elif asked == "address" and task == "petition":
            self.reply.say("utter_ask_petition_address")
        elif asked == "person_name":
            self.reply.say(
                "utter_ask_owner_name" if task == "lookup_id" else "utter_ask_recover_name"
            )
        elif asked == "project":
            self.reply.say("utter_ask_project_for_parts")
        elif asked == "address":
            self.reply.say("utter_ask_address_short")

    async def fresh(self) -> None:
        """A message outside any task (or one that leaves the lookup)."""
        number = text.find_petition_number(self.message)
        if number:
            self.end_task()
            await self.start_check(number)
            return
        id_number = text.find_id_number(self.message)
        if id_number:
            self.end_task()
            await self.id_given(id_number, self.entities)
            return
        length = text.id_length_problem(self.message)
        if not length and "身份证" in self.message and not text.find_phone(self.message):
            length = text.digit_run_length(self.message)
        if length and length >= 4:
            self.reply.say("utter_id_length", kind="error", length=length)
            return
        choice = self.candidate_choice()
        if choice:
            await self.pick_candidate(choice)
            return
        command = COMMANDS.get(self.message.strip())
        if command:
            await self.command(command)
            return
        if await self.follow_up():
            return
        if self.is_fragment():
            await self.lookup_address(self.entities)
            return
        if (
            self.get("filed")
            and re.search(r"信访|编号|答复|进度", self.message)
            and self.intent != "request_human"
        ):
            await self.start_check(None)
            return
        await self.answer_intent(in_task=False)

    def is_fragment(self) -> bool:
        """Building, unit or room alone ("八零二", "不对，是501") while a home is assembled."""
        parts = text.address_parts(self.message)
        if not parts or text.project_words(self.message):
            return False
        if parts.get("building") or parts.get("unit"):
            return True  # "A座", "5号楼": an address, the estate asked for when not yet known
        return bool((self.get("home") or {}).get("code") or self.get("parts"))

    async def follow_up(self) -> bool:
        """Short questions about the home in context: 找谁, 为啥, 多久, 电话多少, 环评是啥."""
        if len(self.message) > FOLLOW_UP_CHARS or self.intent in (
            "request_human",
            "check_petition",
        ):
            return False
        if WHAT_IS.search(self.message) and await self.explain_term():
            return True
        asks = WHO.search(self.message) or CONTACT.search(self.message)
        asks = asks or WHEN.search(self.message) or WHY.search(self.message)
        if not asks:
            return False
        names_home = text.address_parts(self.message) or len(text.project_words(self.message)) >= 4
        if names_home and await self.lookup_named_home():
            return True
        if self.understood and self.intent == "policy_faq":
            topic = faq.faq_topic(self.tracker)
            if topic and topic != "processing_time":
                return False
        home = self.get("home") or {}
        known = bool(home.get("code"))
        if WHO.search(self.message) and known:
            await self.who()
        elif CONTACT.search(self.message):
            await self.guidance("where_to_apply")
        elif WHEN.search(self.message) and known:
            await self.when()
        elif WHY.search(self.message) and known:
            await self.details()
        else:
            return False
        self.set("misunderstood", 0.0)
        return True

    async def lookup_named_home(self) -> bool:
        """A question naming a home ("观象山庄3-2-501为什么…"): the first answer for that home."""
        try:
            result = await api.lookup(self.sender_id, address=self.message[:120])
        except (api.ApiUnavailable, api.ApiError):
            return False
        if result.get("match") not in ("unit", "project", "ambiguous"):
            return False
        found = (result.get("project") or {}).get("code")
        home = self.get("home") or {}
        if result.get("match") == "project" and found == home.get("code"):
            return False  # the same estate again: a follow-up about it
        self.set("address", self.message[:120])
        await self.answer_lookup(
            result, text.address_parts(self.message), new_project=True, quiet=False
        )
        return True

    async def explain_term(self) -> bool:
        """'面积实测是啥': the catalogue's plain explanation of the blocker the term names."""
        try:
            blockers = (await api.catalogue(self.sender_id)).get("blockers") or []
        except (api.ApiUnavailable, api.ApiError):
            return False
        best, score = None, 1
        for blocker in blockers:
            name = _GENERIC.sub(" ", str(blocker.get("name") or ""))
            for word in re.split(r"[\s/（）()、，]+", name):
                for size in range(len(word), 1, -1):
                    if size > score and any(
                        word[i : i + size] in self.message for i in range(len(word) - size + 1)
                    ):
                        best, score = blocker, size
                        break
        if not best:
            return False
        self.reply.say("utter_term", name=best.get("name"), text=best.get("explanation"))
        self.explained([best])
        return True

    async def probe(self, accept_ambiguous: bool = True) -> bool:
        """A project's name typed without an address mark: looked up, answered when found."""
        words = text.project_words(self.message)
        if len(words) < 2 or not text.has_chinese(words):
            return False
        try:
            result = await api.lookup(self.sender_id, address=self.message[:120])
        except (api.ApiUnavailable, api.ApiError):
            return False
        wanted = ("unit", "project", "ambiguous") if accept_ambiguous else ("unit", "project")
        if result.get("match") not in wanted:
            return False
        if self.intent == "complain" and self.understood:
            self.reply.say("utter_complain_empathy")
        self.set("address", self.message[:120])
        await self.answer_lookup(
            result, text.address_parts(self.message), new_project=True, quiet=False
        )
        return True

    async def command(self, command: str) -> None:
        """A tapped follow-up button."""
        if command == "human":
            await self.handoff()
        elif command == "petition":
            self.start_petition()
        elif command == "details":
            await self.details()
        else:
            await self.guidance(command)

    async def answer_intent(self, in_task: bool) -> None:
        """Act on the intent of a message (inside a task: answer it without leaving the task)."""
        intent = self.intent if self.understood else "nlu_fallback"
        if intent != "nlu_fallback":
            self.set("misunderstood", 0.0)
        home = self.get("home") or {}
        if not in_task and intent in ("inform", "ask_certificate_status", "complain"):
            if self.is_address(self.entities):
                if intent == "complain":
                    self.reply.say("utter_complain_empathy")
                await self.lookup_address(self.entities)
                return
        if not in_task and intent in PROBE_INTENTS and await self.probe():
            return
        if intent == "greet":
            self.reply.say("utter_greet")
        elif intent == "goodbye":
            self.reply.say("utter_goodbye")
        elif intent == "thank":
            self.reply.say("utter_thank")
        elif intent == "bot_challenge":
            self.reply.say("utter_iamabot")
        elif intent == "affirm":
            if self.get("offered_human") and not in_task:
                self.start_petition()
            elif not in_task:
                self.reply.say("utter_how_can_help")
        elif intent == "deny":
            if self.get("offered_human"):
                self.set("offered_human", False)
                self.reply.say("utter_decline_human")
            elif self.get("candidates"):
                self.set("candidates", None)
                self.reply.say("utter_none_of_candidates")
                self.ask("address", "utter_ask_address_short", task="lookup")
            elif not in_task:
                self.reply.say("utter_how_can_help")
        elif intent == "ask_certificate_status":
            if home.get("code"):
                if WHEN.search(self.message):
                    await self.when()
                elif WHO.search(self.message):
                    await self.who()
                else:
                    await self.details()
            elif not in_task:
                if self.entities.get("person_name"):
                    # "我叫赵宝桂，想查查房本": kept (sealed) for a lookup by ID number.
                    self.set("person_name", seal(text.normalize(self.entities["person_name"])))
                self.ask("address", "utter_ask_address", task="lookup")
        elif intent in GUIDANCE_TOPIC:
            if intent == "ask_next_steps" and home.get("code") and WHO.search(self.message):
                await self.who()
            else:
                await self.guidance(GUIDANCE_TOPIC[intent])
        elif intent == "policy_faq":
            topic = faq.faq_topic(self.tracker)
            if topic == "processing_time" and home.get("code") and WHEN.search(self.message):
                await self.when()
            elif topic:
                await self.faq(topic)
                if not in_task and len(text.project_words(self.message)) >= 6:
                    # "我是金都大厦的 房本被查封了还能办吗": the home too, when it is unmistakable.
                    await self.probe(accept_ambiguous=False)
            else:
                self.reply.say("utter_not_understood", kind="fallback")
        elif intent == "complain":
            self.reply.say("utter_complain_empathy")
            topic = self.sure_topic()
            if topic and not in_task:
                await self.faq(topic)
            elif not in_task and self.get("offered_human"):
                # Venting again: no second explanation, the standing offer said shortly.
                self.reply.say("utter_offer_human_again")
            elif not in_task:
                self.reply.say(
                    "utter_complain_explain" if not home.get("code") else "utter_complain_known"
                )
                self.offer_human()
        elif intent == "request_human":
            if not in_task:
                self.start_petition()
        elif intent == "check_petition":
            if not in_task:
                await self.start_check(None)
        elif intent == "out_of_scope":
            if not text.has_chinese(self.message):
                self.reply.say("utter_non_chinese")
            else:
                self.reply.say("utter_out_of_scope")
            if not in_task:
                self.reply.say("utter_menu")
        elif intent == "inform":
            if in_task:
                return
            if text.find_phone(self.message):
                self.reply.say("utter_phone_without_task")
            else:
                self.fallback()
        else:
            topic = None if in_task else self.sure_topic()
            if topic:
                await self.faq(topic)
            else:
                self.fallback(in_task=in_task)
        if self.get("candidates") and not in_task and intent not in ("deny", "inform"):
            self.reply.say("utter_candidates_again")
            self.reply.buttons(self.candidate_buttons(self.get("candidates")))

    async def faq(self, topic: str) -> None:
        """A policy answer from the catalogue; remembered for a short follow-up ("那维修基金呢")."""
        await faq.answer(self.reply, self.sender_id, topic, self.domain)
        self.set("last_topic", topic)

    def sure_topic(self) -> str | None:
        """The FAQ topic the selector is sure of, whatever the intent."""
        latest = self.tracker.latest_message or {}
        selector = (latest.get("response_selector") or {}).get("policy_faq") or {}
        response = selector.get("response") or {}
        if float(response.get("confidence") or 0.0) < FAQ_SURE:
            return None
        ranking = {
            r.get("name"): float(r.get("confidence") or 0)
            for r in latest.get("intent_ranking") or []
        }
        if ranking.get("policy_faq", 0.0) < FAQ_SURE_INTENT:
            return None  # the selector always picks some topic; the intent must lean that way too
        return faq.faq_topic(self.tracker)

    def fallback(self, in_task: bool = False) -> None:
        """Not understood: the menu; twice in a row: buttons and the offer of a person."""
        count = int(self.get("misunderstood") or 0) + 1
        self.set("misunderstood", float(count))
        if in_task:
            self.reply.say("utter_not_understood_in_task", kind="fallback")
            return
        if count >= 2:
            self.reply.say("utter_still_not_understood", kind="fallback")
            self.reply.say("utter_offer_human_after_misunderstanding")
            self.set("offered_human", True)
            self.set("misunderstood", 0.0)
        else:
            self.reply.say("utter_not_understood", kind="fallback")
            self.reply.say("utter_menu")

    # -- answers about the home --------------------------------------------------------------

    async def fresh_status(self) -> dict[str, Any] | None:
        """The found project's status from the api (None, with an apology, when it is down)."""
        home = self.get("home") or {}
        try:
            return dict(await api.project_status(self.sender_id, home["code"]))
        except (api.ApiUnavailable, api.ApiError):
            self.reply.say("utter_api_down", kind="error")
            return None

    async def details(self) -> None:
        """详细原因 for the found home; without one, ask for the address."""
        home = self.get("home") or {}
        if not home.get("code"):
            self.ask("address", "utter_ask_address", task="lookup")
            return
        current = await self.fresh_status()
        if current is not None:
            status.details(self.reply, current, home)
            self.explained(list(current.get("open_blockers") or []))

    async def when(self) -> None:
        """多久 / 什么时候 for the found home."""
        current = await self.fresh_status()
        if current is not None:
            status.when_answer(self.reply, current, self.get("home") or {})

    async def who(self) -> None:
        """谁负责 / 电话 for the found home."""
        current = await self.fresh_status()
        if current is not None:
            status.who_answer(self.reply, current, self.get("home") or {})
            self.explained(list(current.get("open_blockers") or []))

    async def guidance(self, topic: str) -> None:
        """What to do now / what to bring / where to apply, for the home's situation."""
        home = self.get("home") or None
        blockers: list[dict[str, Any]] = []
        try:
            catalogue = await api.guidance(self.sender_id)
            if home and home.get("code") and topic == "next_steps":
                current = await api.project_status(self.sender_id, home["code"])
                blockers = list(current.get("open_blockers") or [])
                home = {**home, "blockers": len(blockers)}
                home["initial_done"] = bool((current.get("initial_registration") or {}).get("done"))
                self.set("home", home)
        except (api.ApiUnavailable, api.ApiError):
            self.reply.say("utter_api_down_guidance", kind="error")
            return
        guidance.answer(self.reply, catalogue, topic, home, blockers)


def _clear_task() -> list[EventType]:
    return [SlotSet(name, None) for name in TASK_SLOTS]


class ActionConverse(Action):
    """Answer the resident's message (every rule of bot/data/rules points here)."""

    def name(self) -> str:
        """Action name."""
        return "action_converse"

    async def run(  # type: ignore[override]  # rasa-sdk's DomainDict TypedDict; we read it as a dict
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        """Build the turn's reply; on any failure apologise and leave the task.

        First the api hears the turn: when a clerk has taken the conversation over the bot says
        nothing (a `{"takeover": true}` message tells the channel the silence is meant) and
        changes nothing.
        """
        said = masked_text(tracker)
        state = await conversation_state(tracker, said)
        if state.get("mode") == "staff":
            dispatcher.utter_message(json_message={"takeover": True})
            return []
        turn = Turn(tracker, domain, state, said)
        try:
            await turn.handle()
            turn.ask_feedback()
        except Exception as exc:  # noqa: BLE001 - the resident always gets an answer
            # Type only: an exception's text or traceback may carry what the resident typed.
            where = " < ".join(
                f"{Path(f.filename).name}:{f.lineno}"
                for f in reversed(extract_tb(exc.__traceback__))
            )
            logger.error("action_converse failed: %s at %s", type(exc).__name__, where)
            reply = Reply(domain)
            reply.say("utter_error_generic")
            reply.send(dispatcher)
            return _clear_task()
        if turn.reply.empty:
            turn.reply.say("utter_how_can_help")
        turn.reply.send(dispatcher)
        # Misunderstood, out of scope, unsure or handed to a person: the maintainers' inbox.
        await observe.report(turn)
        return turn.events()
