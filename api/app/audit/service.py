"""Writing and reading the insert-only audit trail (no function here updates or deletes)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditLog

ACTION_LABELS = {
    "petition.create": "受理信访",
    "petition_created": "受理信访",
    "petition.register": "登记来电/来访",
    "petition.objection": "登记公示异议",
    "petition.court_document": "登记法院文书",
    "petition.resettlement": "登记回迁确认书",
    "petition.meeting": "提交专题会议",
    "petition.meeting_decision": "登记会议决定",
    "petition.assign": "分派部门",
    "petition.transition": "变更状态",
    "petition.answer": "部门答复",
    "petition.note": "添加备注",
    "petition.close": "办结",
    "petition.approve_answer": "审核答复并发给信访人",
    "petition.feedback": "信访人评价",
    "petition.case_join": "并入并单",
    "case.create": "确认并单",
    "case.assign": "并单统一分派",
    "case.answer": "并单统一答复",
    "case.close": "并单全部销号",
    "conversation.takeover": "人工接管对话",
    "conversation.handback": "交还机器人",
    "conversation.message": "人工回复",
    "notification.retry": "重发群众通知",
    "blocker.add": "新增卡点",
    "blocker.resolve": "卡点已化解",
    "blocker.update": "修改卡点",
    "project.update": "修改项目",
    "ledger.import": "导入台账",
    "ledger_import": "导入台账",
    "user.create": "新建账号",
    "user.update": "修改账号",
}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def record(
    *,
    db: Session,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str | int,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditLog:
    """Add one audit row in the caller's transaction (flushed, committed by the caller)."""
    row = AuditLog(
        actor=actor[:64],
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id),
        before=_jsonable(before) if before is not None else None,
        after=_jsonable(after) if after is not None else None,
    )
    db.add(row)
    db.flush()
    return row


def list_for(*, db: Session, entity_type: str, entity_id: str | int) -> Sequence[AuditLog]:
    """The audit trail of one entity, oldest first."""
    stmt = (
        select(AuditLog)
        .where(AuditLog.entity_type == entity_type, AuditLog.entity_id == str(entity_id))
        .order_by(AuditLog.id)
    )
    return db.scalars(stmt).all()


def action_label(action: str) -> str:
    """The Chinese label of an audit action code."""
    return ACTION_LABELS.get(action, action)
