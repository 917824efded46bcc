"""What residents are told when their petition moves: short, plain Chinese — what changed, what
happens next, and when. Each text goes to the outbox in the same transaction as the change."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from app.notify import service as notify
from app.petition.models import Petition
from app.policy.departments import department_name

MAX_ANSWER_CHARS = 200
MAX_OUTCOME_CHARS = 120
SATISFACTION_QUESTION = "您对办理结果满意吗？请回复：满意、基本满意 或 不满意。"


def day(value: date | None) -> str:
    """A date the way residents write it: 12月9日."""
    return f"{value.month}月{value.day}日" if value else ""


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, with an ellipsis when cut."""
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _departments(codes: list[str]) -> str:
    return "、".join(department_name(c) for c in codes)


def assigned(petition: Petition, codes: list[str], due: date) -> str:
    """Departments were given the petition."""
    return (
        f"您的信访 {petition.number} 已交给{_departments(codes)}办理，"
        f"部门将在{day(due)}前书面答复。有进展我们会再告诉您。"
    )


def moved(petition: Petition, action: str, *, notice_end: date | None = None) -> str | None:
    """A state move other than assign/close; None when the resident need not be told."""
    n = petition.number
    if action == "verify":
        return f"您的信访 {n} 各部门已答复，现在进入核实阶段，工作人员可能会打电话和您核对情况。"
    if action == "start_notice":
        return (
            f"您的信访 {n} 的处理结果开始公示，{day(notice_end)}公示期满后办结。"
            "公示期间有不同意见，可以在这里留言。"
        )
    if action == "supervise":
        return f"您的信访 {n} 已列入督办，由督办负责人跟进，尽快给您答复。"
    if action == "transfer":
        return f"您的信访 {n} 需要由其他机关处理，已转交办理，工作人员会电话告诉您去向。"
    return None


def answered(petition: Petition, department: str, resident_text: str) -> str:
    """A department's approved answer."""
    return (
        f"{department_name(department)}答复了您的信访 {petition.number}："
        f"{clip(resident_text, MAX_ANSWER_CHARS)}"
    )


def closed(petition: Petition) -> str:
    """The petition was closed; the resident is asked how satisfied they are."""
    outcome = clip(petition.outcome or "", MAX_OUTCOME_CHARS)
    return f"您的信访 {petition.number} 已办结。办理结果：{outcome}\n{SATISFACTION_QUESTION}"


def reopened(petition: Petition) -> str:
    """The resident was not satisfied: the petition is reviewed."""
    return (
        f"您的信访 {petition.number} 已进入复查（复查中），将在{day(petition.review_due)}前"
        "给您复查结果。"
    )


def next_step(petition: Petition, notice_end: date | None = None) -> str:
    """What happens next, for the resident's status check."""
    status = petition.status
    if status == "accepted":
        return f"正在分派承办部门，{day(petition.answer_due)}前会有书面答复。"
    if status in ("assigned", "supervised"):
        pending = [a for a in petition.assignments if a.answer is None]
        lead = "督办负责人正在跟进。" if status == "supervised" else ""
        if pending:
            names = _departments([a.department for a in pending])
            due = min(a.answer_due for a in pending)
            return f"{lead}等{names}书面答复，最晚{day(due)}。"
        return f"{lead}部门已答复，正在安排核实。"
    if status == "verifying":
        return "工作人员正在核实情况，可能会打电话和您核对。"
    if status == "public_notice":
        return (
            f"处理结果公示中，{day(notice_end)}期满后办结。" if notice_end else "处理结果公示中。"
        )
    if status == "transferred":
        return "已转交其他机关办理，工作人员会电话告诉您去向。"
    if status == "review":
        return f"复查中，{day(petition.review_due)}前给您复查结果。"
    if petition.satisfaction_source is None or petition.satisfaction == "unreached":
        return "已办结。您可以回复：满意、基本满意 或 不满意；不满意的会安排复查。"
    return "已办结。"


def tell(db: Session, petition: Petition, kind: str, text: str | None) -> None:
    """Put the text in the outbox, in the caller's transaction (sent after it commits)."""
    if text:
        notify.add_notification(db, petition=petition, kind=kind, text=text)
