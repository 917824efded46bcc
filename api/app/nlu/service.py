"""The NLU inbox: storing what the bot reports (masked again), listing, annotating, staff flags,
the redacted conversation browser and a conversation turned into a test case."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.core.config import settings
from app.core.database import utcnow
from app.core.errors import AppError
from app.core.security import mask_name, mask_personal, pseudonym
from app.core.workdays import SHANGHAI
from app.nlu import intents
from app.nlu.models import REASON_LABELS, NluInboxItem
from app.nlu.schemas import AnnotationIn, ObservationIn
from app.staff.models import StaffUser
from app.status.models import Project

NOT_FOUND = "没有找到这条消息。"
# The same message of the same conversation reported again within this window is one item.
REPEAT_WINDOW = timedelta(hours=1)
MAX_CONTEXT_TURNS = 8
DELETED_TEXT = "（已删除）"
ENTITY_TYPE = "nlu_inbox_item"


def actor(user: StaffUser) -> str:
    """How the audit trail names a member of staff."""
    return f"staff:{user.username}"


# -- masking --------------------------------------------------------------------------------


def _mask_spans(text: str, spans: Sequence[dict[str, Any]]) -> str:
    """Mask the name spans the NLU found (same length, so every other span stays valid)."""
    for span in spans:
        start, end = int(span.get("start") or 0), int(span.get("end") or 0)
        if span.get("entity") == "person_name" and 0 <= start < end <= len(text):
            name = text[start:end]
            if "*" not in name:
                text = text[:start] + mask_name(name) + text[end:]
    return text


def mask_turns(turns: Sequence[dict[str, Any]], names: Sequence[str] = ()) -> list[dict[str, str]]:
    """`[{from, text}]` with ID numbers, phones and the given names masked, at most 8 turns."""
    out: list[dict[str, str]] = []
    for turn in list(turns)[-MAX_CONTEXT_TURNS:]:
        text = mask_personal(str(turn.get("text") or ""))[:2000]
        for name in names:
            if name and len(name) >= 2:
                text = text.replace(name, mask_name(name))
        who = str(turn.get("from") or "resident")
        out.append({"from": who if who in ("resident", "bot", "staff") else "bot", "text": text})
    return out


# -- what the bot reports -------------------------------------------------------------------


def observe(db: Session, *, sender_id: str, data: ObservationIn) -> NluInboxItem | None:
    """Store one reported message masked again; None when the api's threshold does not keep
    it (a `low_confidence` report at or above NLU_INBOX_CONFIDENCE)."""
    if data.reason == "low_confidence" and (
        data.confidence is None or data.confidence >= settings.nlu_inbox_confidence
    ):
        return None
    raw_entities = [e.model_dump() for e in data.entities]
    raw = data.text.strip()
    # The names the NLU found are masked wherever the conversation repeats them.
    names = [
        raw[e["start"] : e["end"]]
        for e in raw_entities
        if e["entity"] == "person_name" and 0 <= e["start"] < e["end"] <= len(raw)
    ]
    names += [str(e["value"]) for e in raw_entities if e["entity"] == "person_name" and e["value"]]
    names = [n for n in names if "*" not in n]
    text = _mask_spans(mask_personal(raw), raw_entities)
    entities = []
    for entity in raw_entities:
        start, end = entity["start"], entity["end"]
        if not 0 <= start < end <= len(text):
            continue
        value = entity.get("value")
        value = mask_personal(str(value)) if value is not None else text[start:end]
        if entity["entity"] == "person_name":
            value = text[start:end]
        entities.append({"entity": entity["entity"], "start": start, "end": end, "value": value})
    sender = pseudonym(sender_id)
    repeated = db.scalar(
        select(NluInboxItem)
        .where(
            NluInboxItem.sender == sender,
            NluInboxItem.text == text,
            NluInboxItem.status != "deleted",
            NluInboxItem.created_at >= utcnow() - REPEAT_WINDOW,
        )
        .limit(1)
    )
    if repeated is not None:
        return repeated
    item = NluInboxItem(
        text=text,
        predicted_intent=data.predicted_intent,
        confidence=data.confidence,
        reason=data.reason,
        channel=data.channel,
        project_code=data.project_code,
        sender=sender,
        context=mask_turns([t.model_dump(by_alias=True) for t in data.context], names),
        entities=entities,
        model_id=data.model_id,
        status="new",
    )
    db.add(item)
    db.flush()
    return item


# -- the inbox ------------------------------------------------------------------------------


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=SHANGHAI)


def list_items(
    db: Session,
    *,
    intent: str | None = None,
    max_confidence: float | None = None,
    channel: str | None = None,
    since: date | None = None,
    until: date | None = None,
    project: str | None = None,
    reason: str | None = None,
    status: str | None = None,
    sender: str | None = None,
    limit: int = 100,
) -> Sequence[NluInboxItem]:
    """Inbox items by the filters, newest first; deleted ones only when asked for by status.

    `since` and `until` are calendar days in Asia/Shanghai, both included."""
    stmt = select(NluInboxItem)
    if status:
        stmt = stmt.where(NluInboxItem.status == status)
    else:
        stmt = stmt.where(NluInboxItem.status != "deleted")
    if intent:
        stmt = stmt.where(NluInboxItem.predicted_intent == intent)
    if max_confidence is not None:
        stmt = stmt.where(NluInboxItem.confidence <= max_confidence)
    if channel:
        stmt = stmt.where(NluInboxItem.channel == channel)
    if since:
        stmt = stmt.where(NluInboxItem.created_at >= _day_start(since))
    if until:
        stmt = stmt.where(NluInboxItem.created_at < _day_start(until + timedelta(days=1)))
    if project:
        stmt = stmt.where(NluInboxItem.project_code == project)
    if reason:
        stmt = stmt.where(NluInboxItem.reason == reason)
    if sender:
        stmt = stmt.where(NluInboxItem.sender == sender)
    stmt = stmt.order_by(NluInboxItem.created_at.desc(), NluInboxItem.id.desc()).limit(limit)
    return db.scalars(stmt).all()


def predicted_intents(db: Session) -> list[str]:
    """The intents the NLU predicted for items in the inbox (for the filter's choices)."""
    rows = db.scalars(
        select(NluInboxItem.predicted_intent)
        .where(NluInboxItem.predicted_intent.is_not(None))
        .distinct()
    ).all()
    return sorted(str(r) for r in rows if r)


def get(db: Session, item_id: int) -> NluInboxItem:
    """One item, or a Chinese 404."""
    item = db.get(NluInboxItem, item_id)
    if item is None:
        raise AppError(404, "not_found", NOT_FOUND)
    return item


def _spans(item: NluInboxItem, data: AnnotationIn) -> list[dict[str, Any]]:
    spans: list[dict[str, Any]] = []
    for span in data.entities or []:
        if span.entity not in intents.ENTITIES:
            raise AppError(
                422,
                "bad_entity",
                f"没有这种实体：{span.entity}。可用：{'、'.join(intents.ENTITIES)}。",
            )
        if not 0 <= span.start < span.end <= len(item.text):
            raise AppError(
                422,
                "bad_span",
                f"实体的位置 {span.start}–{span.end} 不在这条消息里（共 {len(item.text)} 个字）。",
            )
        if "*" in item.text[span.start : span.end]:
            # A masked number or name would teach the model nothing true (and the regexes of
            # nlu_data/ refuse it); phones and ID numbers are found by the patterns anyway.
            raise AppError(
                422, "masked_span", "这段文字已脱敏（含 *），不能标成实体，请只标没有遮盖的部分。"
            )
        value = span.value or item.text[span.start : span.end]
        spans.append({"entity": span.entity, "start": span.start, "end": span.end, "value": value})
    spans.sort(key=lambda s: (s["start"], s["end"]))
    for before, after in zip(spans, spans[1:], strict=False):
        if after["start"] < before["end"]:
            raise AppError(422, "overlapping_spans", "标出的实体互相重叠了，请重新选择。")
    return spans


def annotate(db: Session, *, item: NluInboxItem, data: AnnotationIn, user: StaffUser) -> None:
    """Correct the intent and entities, mark out of scope, or delete the text (audited; the
    audit row of a deletion holds no text)."""
    if item.status == "deleted":
        raise AppError(409, "deleted", "这条消息已删除。")
    if item.status == "exported" and not data.delete:
        raise AppError(
            409, "exported", f"这条消息已导出到 {item.exported_to}，请在该文件里修改后提交。"
        )
    before: dict[str, Any] = {"status": item.status, "intent": item.intent}
    after: dict[str, Any]
    if data.delete:
        _delete(db, item)
        action, after = "nlu.delete", {"status": "deleted"}
    elif data.out_of_scope:
        item.status, item.intent, item.annotated_entities = "out_of_scope", "out_of_scope", []
        action, after = "nlu.annotate", {"status": item.status, "intent": item.intent}
    else:
        if not data.intent:
            raise AppError(422, "intent_required", "请选择这条消息的意图。")
        if not intents.is_annotation_intent(data.intent):
            raise AppError(
                422,
                "bad_intent",
                f"没有这个意图：{data.intent}。政策问题请选具体的“policy_faq/话题”。",
            )
        item.intent = data.intent
        item.annotated_entities = _spans(item, data)
        item.status = "out_of_scope" if data.intent == "out_of_scope" else "annotated"
        action = "nlu.annotate"
        after = {
            "status": item.status,
            "intent": item.intent,
            # Offsets and entity names only: the values are pieces of the resident's text.
            "entities": [
                {"entity": s["entity"], "start": s["start"], "end": s["end"]}
                for s in item.annotated_entities
            ],
        }
    item.annotated_by = user.username
    item.annotated_at = utcnow()
    item.export_skip = None
    db.flush()
    audit.record(
        db=db,
        actor=actor(user),
        action=action,
        entity_type=ENTITY_TYPE,
        entity_id=item.id,
        before=before,
        after=after,
    )


def _delete(db: Session, item: NluInboxItem) -> None:
    """Remove the text everywhere the inbox holds it: the item and the contexts of the same
    conversation's other items."""
    text = item.text
    item.text = ""
    item.context = []
    item.entities = []
    item.annotated_entities = []
    item.intent = None
    item.status = "deleted"
    if not text or not item.sender:
        return
    others = db.scalars(
        select(NluInboxItem).where(NluInboxItem.sender == item.sender, NluInboxItem.id != item.id)
    ).all()
    for other in others:
        if any(turn.get("text") == text for turn in other.context or []):
            other.context = [
                {**turn, "text": DELETED_TEXT} if turn.get("text") == text else turn
                for turn in other.context
            ]


# -- staff flags ------------------------------------------------------------------------------


def flag(db: Session, *, user: StaffUser, petition_ref: str, position: int) -> tuple[int, bool]:
    """A resident's turn of a petition's conversation into the inbox (`staff_flag`); the same
    turn flagged again answers the existing item. (id, created)."""
    from app.petition import staff_service as petitions

    petition = petitions.get_for(db=db, user=user, ref=petition_ref)
    turns = petitions.conversation_of(db, petition)
    if position >= len(turns):
        raise AppError(422, "bad_position", "这件信访的对话里没有这一轮。")
    turn = turns[position]
    if turn.get("sender") != "resident":
        raise AppError(422, "not_resident", "只能标记居民说的话。")
    existing = db.scalar(
        select(NluInboxItem).where(
            NluInboxItem.petition_number == petition.number,
            NluInboxItem.position == position,
            NluInboxItem.reason == "staff_flag",
        )
    )
    if existing is not None:
        return existing.id, False
    names = [petition.person_name] if petition.person_name else []
    window = turns[max(0, position - 5) : position + 2]
    context = mask_turns([{"from": t.get("sender"), "text": t.get("text")} for t in window], names)
    text = mask_turns([{"from": "resident", "text": turn.get("text")}], names)[0]["text"]
    project = (
        db.scalar(select(Project.code).where(Project.id == petition.project_id))
        if petition.project_id
        else None
    )
    item = NluInboxItem(
        text=text[:1000],
        predicted_intent=None,
        confidence=None,
        reason="staff_flag",
        channel=str(petition.channel or "bot")[:16],
        project_code=project,
        sender=pseudonym(petition.sender_id) if petition.sender_id else None,
        context=context,
        entities=[],
        status="new",
        petition_number=petition.number,
        position=position,
    )
    db.add(item)
    db.flush()
    audit.record(
        db=db,
        actor=actor(user),
        action="nlu.flag",
        entity_type=ENTITY_TYPE,
        entity_id=item.id,
        after={"reason": "staff_flag", "position": position},
    )
    return item.id, True


# -- the redacted conversation browser ------------------------------------------------------


@dataclass
class ConversationGroup:
    """The inbox items of one conversation (a sender pseudonym)."""

    sender: str
    channel: str
    items: int
    last_at: datetime


def conversations(db: Session, limit: int = 50) -> list[ConversationGroup]:
    """Conversations with items in the inbox, the most recent first."""
    rows = db.execute(
        select(
            NluInboxItem.sender,
            func.max(NluInboxItem.channel),
            func.count(NluInboxItem.id),
            func.max(NluInboxItem.created_at),
        )
        .where(NluInboxItem.sender.is_not(None), NluInboxItem.status != "deleted")
        .group_by(NluInboxItem.sender)
        .order_by(func.max(NluInboxItem.created_at).desc())
        .limit(limit)
    ).all()
    return [ConversationGroup(str(s), str(c), int(n), at) for s, c, n, at in rows]


def merged_context(items: Sequence[NluInboxItem]) -> list[dict[str, str]]:
    """The contexts of a conversation's items, oldest first, overlaps joined; `…` where the
    inbox has no record between two of them."""
    merged: list[dict[str, str]] = []
    for item in sorted(items, key=lambda i: (i.created_at, i.id)):
        turns = [{"from": str(t.get("from")), "text": str(t.get("text"))} for t in item.context]
        if not turns:
            continue
        overlap = 0
        for k in range(min(len(merged), len(turns)), 0, -1):
            if merged[-k:] == turns[:k]:
                overlap = k
                break
        if merged and not overlap and turns[0] not in merged:
            merged.append({"from": "gap", "text": "…"})
        merged.extend(turns[overlap:])
    return merged


def _conversation_items(db: Session, key: str) -> list[NluInboxItem]:
    """`key` is an item id (its conversation) or a sender pseudonym (16 hex characters)."""
    if key.isdigit() and len(key) < 16:
        item = get(db, int(key))
        if item.status == "deleted":
            raise AppError(404, "not_found", NOT_FOUND)
        return [item]
    items = list(list_items(db, sender=key, limit=200))
    if not items:
        raise AppError(404, "not_found", "没有找到这段对话。")
    return items


def case_yaml(db: Session, key: str) -> str:
    """A conversation case for tests/conversations/cases/ (masked): the resident's turns with
    placeholder expectations for the maintainer to fill in."""
    items = _conversation_items(db, key)
    turns = merged_context(items) if len(items) > 1 else list(items[0].context or [])
    if not any(t.get("from") == "resident" for t in turns):
        turns = [{"from": "resident", "text": items[0].text}]
    observed = {i.text for i in items}
    case_turns: list[dict[str, Any]] = []
    for n, turn in enumerate(turns):
        if turn.get("from") != "resident" or not turn.get("text"):
            continue
        if turn["text"] == DELETED_TEXT:
            continue
        expect: dict[str, Any] = {"contains_any": ["待填写：期望回答里的词"]}
        reply = next(
            (t["text"] for t in turns[n + 1 :] if t.get("from") == "bot" and t.get("text")), None
        )
        if turn["text"] in observed and reply:
            first = reply.split("\n")[0].split("。")[0].strip()
            if first:
                # What the bot answered then; the maintainer decides whether it must not recur.
                expect["not_contains"] = [first]
        case_turns.append({"say": turn["text"], "expect": expect})
    first_item = items[0]
    ident = f"inbox_{first_item.id}" if key.isdigit() else f"inbox_{key}"
    about = f"{REASON_LABELS.get(first_item.reason, first_item.reason)}：{first_item.text[:40]}"
    case = {"conversations": [{"id": ident, "about": about, "turns": case_turns}]}
    header = (
        "# 由模型维护收件箱生成（已脱敏）。请把每一轮的“待填写”改成期望的回答用词，\n"
        "# 检查 not_contains（当时机器人的回答），再放进 tests/conversations/cases/。\n"
    )
    return header + yaml.safe_dump(case, allow_unicode=True, sort_keys=False, width=1000)
