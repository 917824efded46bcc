"""Console screens for maintainers: the NLU inbox (filters, the conversation around each
message, annotation with spans marked by mouse), the export, the redacted conversation browser
and a conversation turned into a test case; and the petition page's 「标记给维护员」."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.console.common import attempt, html_errors, redirect, render
from app.core.database import DbSession
from app.core.errors import AppError
from app.nlu import export as nlu_export
from app.nlu import intents, service
from app.nlu.models import REASON_LABELS, STATUS_LABELS, NluInboxItem
from app.nlu.schemas import AnnotationIn, SpanIn
from app.staff import roles
from app.staff.auth import ConsoleUser, check_form_csrf
from app.staff.models import StaffUser

router = APIRouter(prefix="/console", include_in_schema=False)

SKIP_LABELS = {"training": "训练集已有", "held_out": "留出测试集已有", "duplicate": "重复"}


def segments(text: str, spans: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """The text cut into (piece, entity or None), so marked spans can be highlighted."""
    out: list[tuple[str, str | None]] = []
    position = 0
    for span in sorted(spans, key=lambda s: int(s.get("start") or 0)):
        start, end = int(span.get("start") or 0), int(span.get("end") or 0)
        if start < position or end > len(text) or start >= end:
            continue
        if start > position:
            out.append((text[position:start], None))
        out.append((text[start:end], str(span.get("entity"))))
        position = end
    if position < len(text):
        out.append((text[position:], None))
    return out


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _float(value: str | None) -> float | None:
    try:
        number = float(value) if value not in (None, "") else None
    except ValueError:
        return None
    return number if number is None or 0.0 <= number <= 1.0 else None


def _inbox_page(
    request: Request,
    db: DbSession,
    user: StaffUser,
    filters: dict[str, str],
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    status = filters.get("status") or "new"
    rows = service.list_items(
        db,
        intent=filters.get("intent") or None,
        max_confidence=_float(filters.get("max_confidence")),
        channel=filters.get("channel") or None,
        since=_date(filters.get("since")),
        until=_date(filters.get("until")),
        project=filters.get("project") or None,
        reason=filters.get("reason") if filters.get("reason") in REASON_LABELS else None,
        status=status if status in STATUS_LABELS else None,
        limit=100,
    )
    query = "&".join(f"{k}={quote(str(v))}" for k, v in filters.items() if v)
    return render(
        request,
        "nlu_inbox.html",
        user,
        status_code,
        error,
        rows=rows,
        filters={**filters, "status": status},
        query=query,
        segments=segments,
        predicted=service.predicted_intents(db),
        choices=[(i, intents.intent_label(i)) for i in intents.annotation_intents()],
        entity_choices=intents.ENTITY_LABELS,
        REASONS=REASON_LABELS,
        STATUSES=STATUS_LABELS,
        intent_label=intents.intent_label,
        may_annotate=roles.can(user, "nlu.annotate"),
    )


@router.get("/nlu", response_class=HTMLResponse)
@html_errors
def inbox(
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    intent: Annotated[str, Query(max_length=64)] = "",
    max_confidence: Annotated[str, Query(max_length=8)] = "",
    channel: Annotated[str, Query(max_length=16)] = "",
    since: Annotated[str, Query(max_length=10)] = "",
    until: Annotated[str, Query(max_length=10)] = "",
    project: Annotated[str, Query(max_length=32)] = "",
    reason: Annotated[str, Query(max_length=16)] = "",
    status: Annotated[str, Query(max_length=16)] = "new",
) -> HTMLResponse:
    """The inbox: filters, each message with its conversation and the annotation form."""
    roles.require(user, "nlu.read")
    filters = {
        "intent": intent,
        "max_confidence": max_confidence,
        "channel": channel,
        "since": since,
        "until": until,
        "project": project,
        "reason": reason,
        "status": status,
    }
    return _inbox_page(request, db, user, filters)


def _int(value: str) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isdigit() else None


@router.post("/nlu/{item_id}/annotate")
def annotate(
    item_id: int,
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    action: Annotated[str, Form(max_length=16)] = "annotate",
    intent: Annotated[str, Form(max_length=64)] = "",
    entity: Annotated[str, Form(max_length=32)] = "",
    start: Annotated[str, Form(max_length=6)] = "",
    end: Annotated[str, Form(max_length=6)] = "",
    keep: Annotated[list[str] | None, Form()] = None,
    confirm: Annotated[str, Form(max_length=8)] = "",
    back: Annotated[str, Form(max_length=500)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Save the intent and spans (the kept ones and a new one), mark out of scope, or delete."""
    check_form_csrf(request, csrf_token)
    roles.require(user, "nlu.annotate")
    target = "/console/nlu" + (f"?{back}" if back and "//" not in back else "")
    item = service.get(db, item_id)
    if action == "delete" and not confirm:
        return redirect(target + f"#item-{item_id}", "删除前请勾选“确认删除”。")
    spans: list[SpanIn] = []
    for raw in keep or []:
        name, _, offsets = raw.partition(":")
        a, _, b = offsets.partition("-")
        if _int(a) is not None and _int(b) is not None:
            spans.append(SpanIn(entity=name, start=int(a), end=int(b)))
    new_start, new_end = _int(start), _int(end)
    if entity and new_start is not None and new_end is not None:
        spans.append(SpanIn(entity=entity, start=new_start, end=new_end))
    elif entity and (start or end):
        return redirect(target + f"#item-{item_id}", "请用鼠标在消息里选中实体，或填写起止位置。")
    data = AnnotationIn(
        intent=intent or None,
        entities=spans,
        out_of_scope=action == "out_of_scope",
        delete=action == "delete",
    )
    error = attempt(db, lambda: service.annotate(db, item=item, data=data, user=user))
    if error:
        return redirect(target + f"#item-{item_id}", error)
    db.commit()
    done = {
        "delete": "已删除这条消息的文字（保留了操作记录）。",
        "out_of_scope": "已标为与房本无关。",
    }.get(action, "标注已保存。")
    return redirect(target + (f"#item-{item_id}" if action == "annotate" else ""), done)


@router.post("/nlu/export")
def export(
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Write the annotated examples to nlu_data/inbox/ and say what was written and skipped."""
    check_form_csrf(request, csrf_token)
    roles.require(user, "nlu.annotate")
    result: list[nlu_export.ExportResult] = []
    error = attempt(db, lambda: result.append(nlu_export.export(db, user=user)))
    if error:
        return redirect("/console/nlu?status=annotated", error)
    db.commit()
    done = result[0]
    if not done.files and not done.skipped:
        return redirect("/console/nlu?status=annotated", "没有待导出的标注。")
    parts = [f"已导出 {done.exported} 条"]
    if done.files:
        parts.append("写入 " + "、".join(f"{f['path']}（{f['examples']} 条）" for f in done.files))
    if done.skipped:
        counts: dict[str, int] = {}
        for skip in done.skipped:
            counts[skip["reason"]] = counts.get(skip["reason"], 0) + 1
        parts.append(
            "跳过 " + "、".join(f"{SKIP_LABELS.get(k, k)} {n} 条" for k, n in counts.items())
        )
    return redirect("/console/nlu?status=exported", "；".join(parts) + "。")


@router.get("/nlu/conversations", response_class=HTMLResponse)
@html_errors
def conversations(request: Request, db: DbSession, user: ConsoleUser) -> HTMLResponse:
    """The redacted conversation browser: recent conversations with inbox items."""
    roles.require(user, "nlu.read")
    return render(request, "nlu_conversations.html", user, groups=service.conversations(db))


@router.get("/nlu/conversations/{sender}", response_class=HTMLResponse)
@html_errors
def conversation(sender: str, request: Request, db: DbSession, user: ConsoleUser) -> HTMLResponse:
    """One conversation as the inbox holds it (masked), its items, and 生成测试用例."""
    roles.require(user, "nlu.read")
    items: list[NluInboxItem] = list(service.list_items(db, sender=sender[:32], limit=200))
    if not items:
        raise AppError(404, "not_found", "没有找到这段对话。")
    return render(
        request,
        "nlu_conversation.html",
        user,
        sender=sender,
        items=items,
        turns=service.merged_context(items),
        observed={i.text for i in items},
        REASONS=REASON_LABELS,
        STATUSES=STATUS_LABELS,
        intent_label=intents.intent_label,
    )


@router.get("/nlu/conversations/{key}/case.yml")
@html_errors
def case(key: str, request: Request, db: DbSession, user: ConsoleUser) -> Response:
    """Download the conversation as a test case (the staff API's nlu/conversations/{key}/case)."""
    roles.require(user, "nlu.read")
    if not key.isalnum() or len(key) > 32:
        raise AppError(404, "not_found", service.NOT_FOUND)
    return Response(
        service.case_yaml(db, key),
        media_type="application/x-yaml; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="inbox-{key}.yml"'},
    )


@router.post("/nlu/flag")
def flag(
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    petition: Annotated[str, Form(max_length=32)] = "",
    position: Annotated[int, Form(ge=0, le=10_000)] = 0,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """「标记给维护员」 on a resident's turn of the petition page's conversation."""
    check_form_csrf(request, csrf_token)
    roles.require(user, "nlu.flag")
    outcome: list[tuple[int, bool]] = []
    error = attempt(
        db,
        lambda: outcome.append(
            service.flag(db, user=user, petition_ref=petition, position=position)
        ),
    )
    target = f"/console/petitions/{quote(petition)}#conversation"
    if error:
        return redirect(target, error)
    db.commit()
    created = outcome[0][1]
    return redirect(target, "已标记给模型维护员。" if created else "这句话已经标记过了。")
