"""Roles and what each may do: the one table every staff endpoint and console page checks."""

from __future__ import annotations

from app.core.errors import AppError
from app.staff.models import ROLE_LABELS, StaffUser

ROLES = tuple(ROLE_LABELS)

PERMISSIONS: dict[str, frozenset[str]] = {
    # Read every petition (officers read only those assigned to their department).
    "petition.read_all": frozenset({"clerk", "supervisor", "admin"}),
    "petition.assign": frozenset({"clerk", "supervisor", "admin"}),
    "petition.transition": frozenset({"clerk", "supervisor", "admin"}),
    # 督办: raising an overdue case is the supervisor's call.
    "petition.supervise": frozenset({"supervisor", "admin"}),
    "petition.close": frozenset({"clerk", "supervisor", "admin"}),
    # Officers answer for their own department; the others may record a paper answer.
    "petition.answer": frozenset({"officer", "clerk", "supervisor", "admin"}),
    # Approve what residents see of a department's answer (an officer publishes only their own).
    "petition.approve": frozenset({"clerk", "supervisor", "admin"}),
    # Take over a resident's live conversation and write to them.
    "conversation.takeover": frozenset({"clerk", "supervisor", "admin"}),
    "notification.read": frozenset({"clerk", "supervisor", "admin"}),
    "notification.retry": frozenset({"clerk", "supervisor", "admin"}),
    "petition.note": frozenset({"officer", "clerk", "supervisor", "admin"}),
    # Full phone number: those who call residents back.
    "petition.phone": frozenset({"clerk", "supervisor", "admin"}),
    "project.read": frozenset({"officer", "clerk", "supervisor", "admin"}),
    "project.edit": frozenset({"clerk", "supervisor", "admin"}),
    "ledger.import": frozenset({"clerk", "admin"}),
    "dashboard.read": frozenset({"clerk", "supervisor", "admin"}),
    "users.manage": frozenset({"admin"}),
    # Maintainers see what the bot misunderstood (masked) and ship models; nothing of petitions.
    "nlu.read": frozenset({"maintainer", "admin"}),
    "nlu.annotate": frozenset({"maintainer", "admin"}),
    "nlu.flag": frozenset({"clerk", "supervisor", "admin"}),
    "models.read": frozenset({"maintainer", "admin"}),
    "models.train": frozenset({"maintainer", "admin"}),
    "models.promote": frozenset({"maintainer", "admin"}),
    # Promote a candidate the checks refused, with a written reason.
    "models.override": frozenset({"admin"}),
}


def can(user: StaffUser, permission: str) -> bool:
    """True when the user's role has the permission."""
    return user.role in PERMISSIONS[permission]


def require(user: StaffUser, permission: str) -> None:
    """Raise a Chinese 403 unless the user's role has the permission."""
    if not can(user, permission):
        raise AppError(403, "forbidden", "您的角色没有这项权限。")
