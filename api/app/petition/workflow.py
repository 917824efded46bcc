"""The petition state machine, in one place: which move is legal from which state, for whom.

It follows the published procedure: 信访接待 (accepted) → 分工处理 (assigned to departments,
each answers within the first-answer limit) → 核实、约谈 (verifying) → 公告 (public_notice, at
least 15 working days) → 落实解决 (closed), plus 督办 (supervised, overdue cases raised to a
supervisor), 转办 (transferred, e.g. property disputes to the court) and 复查 (review: a closed
petition the resident answered 不满意 about, reassigned, answered and closed again).
"""

from __future__ import annotations

from dataclasses import dataclass

from app.core.errors import AppError
from app.petition.models import OPEN_STATES, STATUS_LABELS

FINAL_STATES = frozenset({"closed"})

SATISFACTION_LABELS = {
    "satisfied": "满意",
    "basically_satisfied": "基本满意",
    "unsatisfied": "不满意",
    "unreached": "未联系上",
}
# Answers that count as 息诉罢访 (the resident accepts the outcome).
CONTENT = frozenset({"satisfied", "basically_satisfied"})


@dataclass(frozen=True)
class Action:
    """A move staff can make; `permission` names the role table entry that allows it."""

    code: str
    label: str
    permission: str
    target: str
    sources: frozenset[str]


ACTIONS: dict[str, Action] = {
    a.code: a
    for a in (
        Action(
            "assign",
            "分派部门",
            "petition.assign",
            "assigned",
            frozenset({"accepted", "assigned", "verifying", "supervised", "review"}),
        ),
        Action(
            "verify",
            "开始核实",
            "petition.transition",
            "verifying",
            frozenset({"assigned", "supervised"}),
        ),
        Action(
            "start_notice",
            "开始公示",
            "petition.transition",
            "public_notice",
            frozenset({"verifying", "supervised"}),
        ),
        Action(
            "close",
            "办结",
            "petition.close",
            "closed",
            frozenset({"verifying", "public_notice", "supervised", "transferred", "review"}),
        ),
        Action(
            "supervise",
            "督办",
            "petition.supervise",
            "supervised",
            frozenset({"accepted", "assigned", "verifying", "public_notice"}),
        ),
        Action(
            "transfer",
            "转办",
            "petition.transition",
            "transferred",
            frozenset(
                {"accepted", "assigned", "verifying", "public_notice", "supervised", "review"}
            ),
        ),
    )
}

STATES = tuple(STATUS_LABELS)


def target_of(state: str, action: str) -> str:
    """The state a legal move leads to; a Chinese 409 for an illegal one."""
    move = ACTIONS.get(action)
    if move is None:
        raise AppError(422, "unknown_action", "没有这种操作。")
    if state not in move.sources:
        label = STATUS_LABELS.get(state, state)
        allowed = "、".join(a.label for a in ACTIONS.values() if state in a.sources)
        hint = f"当前可以：{allowed}。" if allowed else "这件信访已经办结，不能再变更。"
        raise AppError(
            409,
            "illegal_transition",
            f"“{label}”状态的信访不能“{move.label}”。{hint}",
            {"status": state, "action": action},
        )
    if state == "review" and action == "assign":
        return "review"  # more departments during a review: still 复查中
    return move.target


def is_legal(state: str, action: str) -> bool:
    """True when the move is legal from this state (roles not considered)."""
    move = ACTIONS.get(action)
    return move is not None and state in move.sources


def actions_from(state: str) -> list[Action]:
    """The moves legal from a state, in procedure order."""
    return [a for a in ACTIONS.values() if state in a.sources]


def is_open(state: str) -> bool:
    """True while the case still needs work (not closed, not handed to another body)."""
    return state in OPEN_STATES
