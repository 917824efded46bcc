"""What the bot tells the maintainers' NLU inbox at the end of a turn (docs/maintainers.md).

Only when a reason applies: the turn was answered with the fallback, the NLU predicted
`out_of_scope`, its confidence was below NLU_INBOX_CONFIDENCE, the resident said the bot got it
wrong ("不是这个意思" / "没看懂" / "答非所问": the message before is reported), or the turn
handed the resident to a person (the messages before 转人工). Everything sent is masked (ID
numbers, phones, the names the conversation revealed) with the tracker store's own masking.
The reports go out after the reply is built, with a short timeout; a failure is logged without
any text and never changes the reply. On the normal path nothing is sent at all.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, Protocol

from rasa_sdk import Tracker

from actions.clients import api
from actions.common import channel_of
from actions.config import settings
from actions.replies import Reply
from actions.sensitive import unseal
from privacy.redact import mask_name, redact_events, redact_value

logger = logging.getLogger(__name__)

# The resident says the last answer missed the point: the message before it was misunderstood.
COMPLAINT = re.compile(
    r"不是这个意思|不是这意思|不是那个意思|没看懂|看不懂|答非所问|你没明白|没明白我|你不明白|"
    r"你没懂|没听懂|听不懂|理解错了|你理解错|不是我问的|我问的不是|我不是问这个|我没问这个|"
    r"牛头不对马嘴|文不对题|驴唇不对马嘴"
)
MAX_CONTEXT = 8
# On 转人工: this many of the resident's messages before it.
HANDOFF_MESSAGES = 3
MAX_TEXT = 1000
FALLBACK_INTENT = "nlu_fallback"


class ObservedTurn(Protocol):
    """What this module reads of actions.converse.Turn."""

    tracker: Tracker
    reply: Reply
    said: str
    message: str
    intent: str
    handed_off: bool

    def get(self, name: str) -> Any:
        """A slot's value as of now in this turn."""


def prediction(parse: dict[str, Any]) -> tuple[str | None, float | None]:
    """The NLU's guess: its intent (the runner-up of a fallback, `policy_faq/<topic>` for a
    policy question) and that intent's confidence."""
    intent = parse.get("intent") or {}
    name, confidence = intent.get("name"), intent.get("confidence")
    if name == FALLBACK_INTENT:
        ranking = [r for r in parse.get("intent_ranking") or [] if r.get("name") != FALLBACK_INTENT]
        if ranking:
            name, confidence = ranking[0].get("name"), ranking[0].get("confidence")
    if name == "policy_faq":
        selector = (parse.get("response_selector") or {}).get("policy_faq") or {}
        key = (selector.get("response") or {}).get("intent_response_key") or ""
        if str(key).startswith("policy_faq/"):
            name = str(key)
    return (str(name) if name else None), (float(confidence) if confidence is not None else None)


def _names(tracker: Tracker) -> set[str]:
    """Names the conversation revealed that the tracker's masking may not know: the sealed
    name slot and the entities of this message."""
    names = set()
    known = unseal(tracker.get_slot("person_name"))
    if known:
        names.add(known.strip())
    for entity in (tracker.latest_message or {}).get("entities") or []:
        if entity.get("entity") == "person_name" and entity.get("value"):
            names.add(str(entity["value"]).strip())
    return {n for n in names if len(n) >= 2}


def _history(tracker: Tracker, names: set[str]) -> list[dict[str, Any]]:
    """The conversation's messages, oldest first, masked: {from, text, parse?}."""
    events = [
        dict(e)
        for e in tracker.events or []
        if isinstance(e, dict) and e.get("event") in ("user", "bot", "slot")
    ]
    out: list[dict[str, Any]] = []
    for event in redact_events(events):
        kind = event.get("event")
        text = str(redact_value(str(event.get("text") or ""), names)).strip()
        if kind == "user" and text:
            parse = redact_value(dict(event.get("parse_data") or {}), names)
            out.append({"from": "resident", "text": text[:MAX_TEXT], "parse": parse})
        elif kind == "bot" and text:
            out.append({"from": "bot", "text": text[:MAX_TEXT]})
    return out


def _entities(parse: dict[str, Any], names: set[str]) -> list[dict[str, Any]]:
    """The NLU's entities with masked values (the masks keep lengths, so spans stay valid)."""
    out = []
    for entity in parse.get("entities") or []:
        start, end = entity.get("start"), entity.get("end")
        if not isinstance(start, int) or not isinstance(end, int):
            continue
        value = str(entity.get("value") or "")
        if entity.get("entity") == "person_name":
            value = mask_name(value)
        out.append(
            {
                "entity": str(entity.get("entity")),
                "start": start,
                "end": end,
                "value": str(redact_value(value, names))[:MAX_TEXT],
            }
        )
    return out[:20]


def _model_id(tracker: Tracker) -> str | None:
    """The model that read the message (Rasa adds it to the user event's metadata)."""
    for event in reversed(tracker.events or []):
        if isinstance(event, dict) and event.get("event") == "user":
            value = (event.get("metadata") or {}).get("model_id")
            return str(value)[:64] if value else None
    return None


def _window(history: list[dict[str, Any]], reply: str) -> list[dict[str, str]]:
    """The last turns up to this one and this turn's reply, as the api stores them."""
    turns = [{"from": h["from"], "text": h["text"]} for h in history]
    if reply:
        turns.append({"from": "bot", "text": reply[:MAX_TEXT]})
    return turns[-MAX_CONTEXT:]


def observations(turn: ObservedTurn) -> list[dict[str, Any]]:
    """The reports this turn calls for (empty on the normal path)."""
    tracker = turn.tracker
    latest = tracker.latest_message or {}
    typed = str(latest.get("text") or "").strip()
    if not typed or typed.startswith("/"):
        return []  # nothing said, or a button's payload (not the NLU's reading)
    intent, confidence = prediction(latest)
    fallback = turn.reply.has("fallback")
    in_form = bool(tracker.get_slot("requested_slot"))
    reasons: list[str] = []
    if fallback:
        reasons.append("fallback")
    elif turn.intent == "out_of_scope" or intent == "out_of_scope":
        reasons.append("out_of_scope")
    elif confidence is not None and confidence < settings.nlu_inbox_confidence and not in_form:
        # The answer to a form's question is taken by the form, whatever the NLU thought.
        reasons.append("low_confidence")
    complaint = bool(COMPLAINT.search(turn.message))
    if not reasons and not complaint and not turn.handed_off:
        return []

    names = _names(tracker)
    history = _history(tracker, names)
    reply = "\n".join(b["text"] for b in turn.reply.tidy() if b.get("text"))
    context = _window(history, reply)
    common = {
        "channel": channel_of(tracker),
        "project_code": (turn.get("home") or {}).get("code"),
        "model_id": _model_id(tracker),
    }
    earlier = [h for h in history[:-1] if h["from"] == "resident"]
    found: list[dict[str, Any]] = []

    def add(entry: dict[str, Any], reason: str, text: str | None = None) -> None:
        said = (text if text is not None else entry["text"])[:MAX_TEXT]
        if not said or any(f["text"] == said for f in found):
            return
        parse = entry.get("parse") or {}
        guess, sure = prediction(parse)
        spans = [e for e in _entities(parse, names) if e["end"] <= len(said)]
        found.append(
            {
                **common,
                "text": said,
                "predicted_intent": guess,
                "confidence": sure,
                "reason": reason,
                "entities": spans,
                "context": context,
            }
        )

    if complaint and earlier:
        add(earlier[-1], "misunderstood")
    if turn.handed_off:
        for entry in earlier[-HANDOFF_MESSAGES:][::-1]:
            if not entry["text"].startswith("/"):
                add(entry, "handoff")
    if reasons:
        add({"text": turn.said, "parse": latest}, reasons[0], text=turn.said)
    return [{k: v for k, v in item.items() if v is not None} for item in found]


async def report(turn: ObservedTurn) -> None:
    """Send this turn's reports, if any, within NLU_INBOX_TIMEOUT; never raises."""
    try:
        found = observations(turn)
    except Exception as exc:  # noqa: BLE001 - the inbox is a by-product of the turn
        logger.warning("nlu inbox: turn not examined (%s)", type(exc).__name__)
        return
    if not found:
        return
    sender = turn.tracker.sender_id
    calls = [api.nlu_observation(sender, body) for body in found]
    try:
        results = await asyncio.wait_for(
            asyncio.gather(*calls, return_exceptions=True),
            timeout=settings.nlu_inbox_timeout + 0.5,
        )
    except asyncio.TimeoutError:
        logger.warning("nlu inbox: %d report(s) not sent: timeout", len(found))
        return
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        # The exception's type only: its text might carry what the resident typed.
        logger.warning(
            "nlu inbox: %d of %d report(s) not sent (%s)",
            len(failed),
            len(found),
            type(failed[0]).__name__,
        )
