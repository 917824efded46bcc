"""Projects and their certificate status: what blocks 首次登记, how far 转移登记 has got."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import String, cast, func, or_, select
from sqlalchemy.orm import Session, selectinload

from app.core.workdays import today_shanghai
from app.policy.catalogue import Catalogue, get_catalogue
from app.status.models import BLOCKER_OPEN, BLOCKER_RESOLVED, Blocker, Project, Unit

log = logging.getLogger("app.status")

# Ledger words for the two states (the 首次登记 column uses the same words).
INITIAL_LABELS = {True: "已完成", False: "未完成"}
BLOCKER_LABELS = {BLOCKER_OPEN: "待解决", BLOCKER_RESOLVED: "已解决"}
MAX_PAGE = 50


def _iso_date(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _iso_datetime(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite hands back naive values; they are stored as UTC.
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat()


def get_by_code(*, db: Session, code: str) -> Project | None:
    """The project with this code (its blockers loaded), or None."""
    stmt = (
        select(Project).where(Project.code == code.strip()).options(selectinload(Project.blockers))
    )
    return db.scalars(stmt).first()


def transfer_counts(*, db: Session, project_id: int) -> dict[str, int]:
    """Units per transfer status of one project, in one aggregate query."""
    rows = db.execute(
        select(Unit.transfer_status, func.count())
        .where(Unit.project_id == project_id)
        .group_by(Unit.transfer_status)
    ).all()
    counts = {"done": 0, "in_progress": 0, "not_started": 0}
    for status, n in rows:
        counts[status] = counts.get(status, 0) + int(n)
    return counts


def next_steps(situation: str, *, catalogue: Catalogue | None = None) -> dict[str, Any]:
    """The catalogue's next-steps guidance for a situation (e.g. `initial_pending`)."""
    cat = catalogue or get_catalogue()
    section = cat.guidance.next_steps[situation]
    return {
        "situation": situation,
        "title": section.title,
        "items": list(section.items),
        "note": section.note,
    }


def _department(cat: Catalogue, blocker: Blocker) -> dict[str, str]:
    dep = cat.departments.get(blocker.department or "")
    if dep is None and blocker.code in cat.blockers:
        dep = cat.default_department(blocker.code)
    if dep is None:
        return {"code": blocker.department or "", "name": blocker.department or ""}
    return {"code": dep.code, "name": dep.name}


def _departments(cat: Catalogue, blocker: Blocker) -> list[dict[str, str]]:
    """The responsible department first, then the catalogue's other ones for the blocker."""
    found = [_department(cat, blocker)]
    if blocker.code in cat.blockers:
        for dep in cat.blocker_departments(blocker.code):
            if all(dep.code != d["code"] for d in found):
                found.append({"code": dep.code, "name": dep.name})
    return found


def _open_blocker(cat: Catalogue, blocker: Blocker, expected: date | None) -> dict[str, Any]:
    entry = cat.blockers.get(blocker.code)
    if entry is None:
        # Only possible if the catalogue lost a code after import; show the code, never crash.
        log.warning("blocker code %s is not in the catalogue", blocker.code)
    return {
        "code": blocker.code,
        "name": entry.name if entry else blocker.code,
        "status": BLOCKER_OPEN,
        "status_label": BLOCKER_LABELS[BLOCKER_OPEN],
        "explanation": entry.explanation if entry else "",
        "note": blocker.note or "",
        "department": _department(cat, blocker),
        "departments": _departments(cat, blocker),
        "buyer_at_fault": entry.buyer_at_fault if entry else False,
        "policies": [
            {"code": p.code, "name": p.name, "summary": p.summary}
            for p in (cat.policies_of(entry.policies) if entry else [])
        ],
        "resident_next_steps": list(entry.resident_next_steps) if entry else [],
        "time_limit": entry.time_limit if entry else "",
        "time_limit_working_days": entry.time_limit_working_days if entry else None,
        "expected_date": _iso_date(expected),
        "since": _iso_datetime(blocker.changed_at),
    }


def _resolved_blocker(cat: Catalogue, blocker: Blocker) -> dict[str, Any]:
    entry = cat.blockers.get(blocker.code)
    return {
        "code": blocker.code,
        "name": entry.name if entry else blocker.code,
        "status": BLOCKER_RESOLVED,
        "status_label": BLOCKER_LABELS[BLOCKER_RESOLVED],
        "note": blocker.note or "",
        "department": _department(cat, blocker),
        "resolved_at": _iso_datetime(blocker.changed_at),
    }


def project_status(
    *,
    db: Session,
    project: Project,
    catalogue: Catalogue | None = None,
    today: date | None = None,
) -> dict[str, Any]:
    """A project's certificate status, JSON-ready (shape: schemas.ProjectStatusRead).

    `expected_date_passed`: the 预计化解日期 is before today while blockers are still open (the
    date slipped; residents are told so instead of being shown a past date as a promise)."""
    cat = catalogue or get_catalogue()
    counts = transfer_counts(db=db, project_id=project.id)
    total = sum(counts.values())
    done = bool(project.initial_registration_done)
    open_blockers = [b for b in project.blockers if b.status == BLOCKER_OPEN]
    resolved = [b for b in project.blockers if b.status == BLOCKER_RESOLVED]
    expected = project.expected_resolution_date
    today = today or today_shanghai()
    passed = bool(open_blockers) and expected is not None and expected < today
    return {
        "code": project.code,
        "name": project.name,
        "aliases": list(project.aliases or []),
        "district": project.district or "",
        "address": project.address or "",
        "developer": project.developer or "",
        "unit_count": project.unit_count or 0,
        "initial_registration": {"done": done, "label": INITIAL_LABELS[done]},
        "transfer_registration": {
            "units_total": total,
            "done": counts["done"],
            "in_progress": counts["in_progress"],
            "not_started": counts["not_started"],
            "rate": round(counts["done"] / total, 4) if total else None,
        },
        "expected_resolution_date": _iso_date(expected),
        "expected_date_passed": passed,
        "open_blockers": [_open_blocker(cat, b, expected) for b in open_blockers],
        "resolved_blockers": [_resolved_blocker(cat, b) for b in resolved],
        "next_steps": next_steps("initial_done" if done else "initial_pending", catalogue=cat),
    }


def _like_terms(q: str) -> list[str]:
    """The search text as typed and as JSON escapes (aliases are stored as JSON text)."""
    escaped = json.dumps(q)[1:-1]
    return [q] if escaped == q else [q, escaped]


def list_projects(
    *, db: Session, q: str | None, limit: int = 20, offset: int = 0
) -> dict[str, Any]:
    """Projects whose code, name, alias or district contains `q`, paged (limit ≤ 50)."""
    limit = max(1, min(limit, MAX_PAGE))
    offset = max(0, offset)
    conditions = []
    text = (q or "").strip()
    if text:
        alias_text = cast(Project.aliases, String)
        conditions.append(
            or_(
                Project.code.icontains(text, autoescape=True),
                Project.name.icontains(text, autoescape=True),
                Project.district.icontains(text, autoescape=True),
                *(alias_text.icontains(t, autoescape=True) for t in _like_terms(text)),
            )
        )
    total = db.scalar(select(func.count()).select_from(Project).where(*conditions)) or 0
    open_count = (
        select(func.count())
        .where(Blocker.project_id == Project.id, Blocker.status == BLOCKER_OPEN)
        .correlate(Project)
        .scalar_subquery()
    )
    rows = db.execute(
        select(Project, open_count)
        .where(*conditions)
        .order_by(Project.code)
        .limit(limit)
        .offset(offset)
    ).all()
    items = [
        {
            "code": p.code,
            "name": p.name,
            "aliases": list(p.aliases or []),
            "district": p.district or "",
            "address": p.address or "",
            "developer": p.developer or "",
            "unit_count": p.unit_count or 0,
            "initial_registration_done": bool(p.initial_registration_done),
            "open_blocker_count": int(n or 0),
        }
        for p, n in rows
    ]
    return {"items": items, "total": int(total), "limit": limit, "offset": offset}
