"""Collective cases (并单): suggest, confirm, assign once, answer once — each member still closed
on its own.

A case gathers open petitions of one project about one blocker. Its assignment and its answer
go through the ordinary petition functions for every member (staff_service.assign and
staff_service.answer with publish), so each petition keeps its deadlines, its audit rows and its
own message to its resident. Closing (销号) stays per petition; the case closes itself once no
member is open any more.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from app.audit import service as audit
from app.core.database import utcnow
from app.core.errors import AppError
from app.core.workdays import today_shanghai
from app.petition import staff_service, workflow
from app.petition.case_models import PetitionCase, PetitionCaseDayCounter, PetitionCaseMember
from app.petition.models import OPEN_STATES, STATUS_LABELS, Petition, PetitionAssignment
from app.policy.departments import blocker_default_department, blocker_names, departments
from app.staff import roles
from app.staff.models import StaffUser
from app.status.models import BLOCKER_OPEN, Blocker, Project

CASE_NOT_FOUND = "没有找到这个并单，请核对编号。"
MIN_MEMBERS = 2
MAX_SUGGESTIONS = 100
ANSWERABLE = frozenset({"assigned", "verifying", "supervised", "review"})


# ---------------------------------------------------------------- suggestions


@dataclass(frozen=True)
class Candidate:
    """A petition as the suggestions see it (a few columns, not the whole row)."""

    id: int
    number: str
    status: str
    project_id: int
    blockers: list[str] | None

    @property
    def status_label(self) -> str:
        """The Chinese label of the state."""
        return STATUS_LABELS.get(self.status, self.status)


@dataclass
class Suggestion:
    """Open petitions of one project sharing one blocker, not in a case yet."""

    project: Project
    blocker: str
    blocker_name: str
    petitions: list[Candidate]

    @property
    def key(self) -> str:
        """A stable key for the console's forms."""
        return f"{self.project.code}:{self.blocker}"


def _open_blockers(db: Session, project_ids: Sequence[int]) -> dict[int, list[Blocker]]:
    found: dict[int, list[Blocker]] = defaultdict(list)
    if not project_ids:
        return found
    stmt = select(Blocker).where(
        Blocker.project_id.in_(project_ids), Blocker.status == BLOCKER_OPEN
    )
    for blocker in db.scalars(stmt.order_by(Blocker.id)):
        found[blocker.project_id].append(blocker)
    return found


def effective_blockers(
    petition: Petition | Candidate, open_blockers: Sequence[Blocker]
) -> list[str]:
    """The blocker codes a petition is about: those the bot explained, or, when it explained
    none, the project's only open blocker (none when the project has several)."""
    if petition.blockers:
        return list(dict.fromkeys(str(c) for c in petition.blockers))
    if len(open_blockers) == 1:
        return [open_blockers[0].code]
    return []


def _in_open_case() -> Any:
    return exists().where(PetitionCaseMember.open_key == Petition.id)


def suggestions(
    *, db: Session, user: StaffUser, project_id: int | None = None, limit: int = MAX_SUGGESTIONS
) -> list[Suggestion]:
    """Groups of at least two open petitions of the same project and blocker, not yet in a
    case, biggest first (at most `limit`). A petition about two blockers may appear in two
    groups; whichever the clerk confirms first takes it."""
    roles.require(user, "petition.assign")
    stmt = (
        select(
            Petition.id, Petition.number, Petition.status, Petition.project_id, Petition.blockers
        )
        .where(
            Petition.status.in_(OPEN_STATES),
            Petition.project_id.is_not(None),
            ~_in_open_case(),
        )
        .order_by(Petition.id)
    )
    if project_id is not None:
        stmt = stmt.where(Petition.project_id == project_id)
    petitions = [
        Candidate(pid, number, status, project or 0, explained)
        for pid, number, status, project, explained in db.execute(stmt).all()
    ]
    project_ids = sorted({p.project_id for p in petitions})
    blockers = _open_blockers(db, project_ids)
    groups: dict[tuple[int, str], list[Candidate]] = defaultdict(list)
    for petition in petitions:
        for code in effective_blockers(petition, blockers.get(petition.project_id, [])):
            groups[(petition.project_id, code)].append(petition)
    wanted = {k: v for k, v in groups.items() if len(v) >= MIN_MEMBERS}
    if not wanted:
        return []
    projects = {
        p.id: p for p in db.scalars(select(Project).where(Project.id.in_({k[0] for k in wanted})))
    }
    names = blocker_names()
    out = [
        Suggestion(projects[pid], code, names.get(code, code), members)
        for (pid, code), members in wanted.items()
        if pid in projects
    ]
    out.sort(key=lambda s: (-len(s.petitions), s.project.code, s.blocker))
    return out[:limit]


# ---------------------------------------------------------------- creating


def _next_number(db: Session, day: date) -> str:
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(PetitionCaseDayCounter)
        .values(day=day, last=1)
        .on_conflict_do_update(
            index_elements=[PetitionCaseDayCounter.day],
            set_={"last": PetitionCaseDayCounter.last + 1},
        )
        .returning(PetitionCaseDayCounter.last)
    )
    seq = int(db.execute(stmt).scalar_one())
    return f"BD-{day:%Y%m%d}-{seq:04d}"


def _actor(user: StaffUser) -> str:
    return staff_service.actor_of(user)


def create_case(
    *,
    db: Session,
    user: StaffUser,
    refs: Sequence[str | int],
    blocker: str,
    title: str | None = None,
    today: date | None = None,
) -> PetitionCase:
    """Confirm a case from petition ids or numbers (the clerk may have dropped some of a
    suggestion's members). All must be open, of one project, about `blocker`, in no open case."""
    roles.require(user, "petition.assign")
    blocker = (blocker or "").strip()
    if not blocker:
        raise AppError(422, "blocker_required", "请选择并单针对的卡点。")
    wanted = list(dict.fromkeys(str(r).strip() for r in refs if str(r).strip()))
    if len(wanted) < MIN_MEMBERS:
        raise AppError(422, "too_few_petitions", "并单至少需要两件信访。")
    petitions = [staff_service.get_for(db=db, user=user, ref=r) for r in wanted]
    petitions = list({p.id: p for p in petitions}.values())
    if len(petitions) < MIN_MEMBERS:
        raise AppError(422, "too_few_petitions", "并单至少需要两件信访。")
    project_ids = {p.project_id for p in petitions}
    if None in project_ids:
        missing = "、".join(p.number for p in petitions if p.project_id is None)
        raise AppError(422, "no_project", f"这些信访还没有关联项目，不能并单：{missing}。")
    if len(project_ids) > 1:
        raise AppError(422, "projects_differ", "只能把同一个项目的信访并为一单。")
    project_id = petitions[0].project_id
    assert project_id is not None
    project = db.get(Project, project_id)
    if project is None:
        raise AppError(404, "project_not_found", "没有找到这个项目。")
    closed = [p.number for p in petitions if not workflow.is_open(p.status)]
    if closed:
        raise AppError(
            409, "petition_not_open", "已办结或已转办的信访不能并单：" + "、".join(closed) + "。"
        )
    open_blockers = _open_blockers(db, [project_id]).get(project_id, [])
    project_codes = {b.code for b in open_blockers}
    off_topic = [
        p.number
        for p in petitions
        if blocker not in effective_blockers(p, open_blockers)
        and not (not p.blockers and blocker in project_codes)
    ]
    if off_topic:
        name = blocker_names().get(blocker, blocker)
        raise AppError(
            422,
            "blocker_differs",
            f"这些信访反映的不是“{name}”卡点，不能并入：" + "、".join(off_topic) + "。",
        )
    taken = _taken(db, [p.id for p in petitions])
    if taken:
        raise AppError(409, "already_in_case", "这些信访已在其他并单中：" + "、".join(taken) + "。")
    today = today or today_shanghai()
    name = blocker_names().get(blocker, blocker)
    case = PetitionCase(
        number=_next_number(db, today),
        project_id=project_id,
        blocker=blocker,
        title=((title or "").strip() or f"{project.name}·{name}")[:128],
        status="open",
        created_by=user.username,
    )
    case.members = [PetitionCaseMember(petition_id=p.id, open_key=p.id) for p in petitions]
    db.add(case)
    try:
        db.flush()
    except IntegrityError as exc:  # another clerk put one of them in a case a moment ago
        raise AppError(
            409, "already_in_case", "其中有信访刚被其他人并入别的并单，请刷新后重试。"
        ) from exc
    numbers = [p.number for p in petitions]
    audit.record(
        db=db,
        actor=_actor(user),
        action="case.create",
        entity_type="petition_case",
        entity_id=case.number,
        after={"project": project.code, "code": blocker, "petitions": numbers},
    )
    for petition in petitions:
        audit.record(
            db=db,
            actor=_actor(user),
            action="petition.case_join",
            entity_type="petition",
            entity_id=petition.number,
            after={"case": case.number, "code": blocker},
        )
    return case


def _taken(db: Session, petition_ids: Sequence[int]) -> list[str]:
    stmt = (
        select(Petition.number)
        .join(PetitionCaseMember, PetitionCaseMember.open_key == Petition.id)
        .where(Petition.id.in_(petition_ids))
        .order_by(Petition.number)
    )
    return list(db.scalars(stmt))


# ---------------------------------------------------------------- reading


def _case_visibility(user: StaffUser) -> Any:
    """Officers see a case when one of its petitions is assigned to their department."""
    if roles.can(user, "petition.read_all"):
        return None
    if user.role != "officer":
        raise AppError(403, "forbidden", "您的角色没有这项权限。")
    return exists().where(
        PetitionCaseMember.case_id == PetitionCase.id,
        PetitionAssignment.petition_id == PetitionCaseMember.petition_id,
        PetitionAssignment.department == (user.department or ""),
    )


def get_case(*, db: Session, user: StaffUser, ref: str | int) -> PetitionCase:
    """A case by id or number that the user may see (404 otherwise); closes it first when no
    member is open any more."""
    text = str(ref).strip()
    column = PetitionCase.id if text.isdigit() else PetitionCase.number
    value: Any = int(text) if text.isdigit() else text.upper()
    stmt = select(PetitionCase).where(column == value).options(selectinload(PetitionCase.members))
    condition = _case_visibility(user)
    if condition is not None:
        stmt = stmt.where(condition)
    case = db.scalar(stmt)
    if case is None:
        raise AppError(404, "case_not_found", CASE_NOT_FOUND)
    sync_status(db=db, case=case)
    return case


def case_of(*, db: Session, petition_id: int) -> PetitionCase | None:
    """The case a petition is in: its open one, else the latest it was in."""
    stmt = (
        select(PetitionCase)
        .join(PetitionCaseMember, PetitionCaseMember.case_id == PetitionCase.id)
        .where(PetitionCaseMember.petition_id == petition_id)
        .order_by(PetitionCaseMember.open_key.is_(None), PetitionCase.id.desc())
        .limit(1)
    )
    return db.scalar(stmt)


def members(*, db: Session, user: StaffUser, case: PetitionCase) -> list[Petition]:
    """The case's petitions the user may see, in the order they joined."""
    ids = [m.petition_id for m in case.members]
    if not ids:
        return []
    stmt = select(Petition).where(Petition.id.in_(ids)).options(selectinload(Petition.assignments))
    condition = staff_service._visibility(user)
    if condition is not None:
        stmt = stmt.where(condition)
    found = {p.id: p for p in db.scalars(stmt)}
    return [found[i] for i in ids if i in found]


def sync_status(*, db: Session, case: PetitionCase) -> bool:
    """Close an open case whose members are all closed or transferred (audited); True if it
    closed now. Members reopened for review later may then join a new case."""
    if case.status != "open":
        return False
    ids = [m.petition_id for m in case.members]
    still_open = db.scalar(
        select(func.count())
        .select_from(Petition)
        .where(Petition.id.in_(ids), Petition.status.in_(OPEN_STATES))
    )
    if still_open:
        return False
    case.status = "closed"
    case.closed_at = utcnow()
    for member in case.members:
        member.open_key = None
    db.flush()
    audit.record(
        db=db,
        actor="system:cases",
        action="case.close",
        entity_type="petition_case",
        entity_id=case.number,
        before={"status": "open"},
        after={"status": "closed"},
    )
    return True


@dataclass
class CaseRow:
    """One line of the case list."""

    case: PetitionCase
    project: Project | None
    total: int
    open: int


def list_cases(
    *,
    db: Session,
    user: StaffUser,
    project_id: int | None = None,
    status: str | None = None,
    limit: int = 200,
) -> list[CaseRow]:
    """Cases the user may see, open first, newest first; open ones with no open member are
    closed on the way."""
    stmt = select(PetitionCase).options(selectinload(PetitionCase.members))
    condition = _case_visibility(user)
    if condition is not None:
        stmt = stmt.where(condition)
    if project_id is not None:
        stmt = stmt.where(PetitionCase.project_id == project_id)
    cases = list(db.scalars(stmt.order_by(PetitionCase.id.desc()).limit(limit)))
    ids = [m.petition_id for c in cases for m in c.members]
    states = (
        dict(db.execute(select(Petition.id, Petition.status).where(Petition.id.in_(ids))).all())
        if ids
        else {}
    )
    projects = {
        p.id: p
        for p in db.scalars(select(Project).where(Project.id.in_({c.project_id for c in cases})))
    }
    rows = []
    for case in cases:
        opened = sum(1 for m in case.members if states.get(m.petition_id) in OPEN_STATES)
        if case.status == "open" and opened == 0:
            sync_status(db=db, case=case)
        rows.append(CaseRow(case, projects.get(case.project_id), len(case.members), opened))
    if status:
        rows = [r for r in rows if r.case.status == status]
    rows.sort(key=lambda r: r.case.status != "open")
    return rows


def suggested_departments(*, db: Session, case: PetitionCase) -> list[str]:
    """The department owning the case's blocker in the ledger, else the catalogue default."""
    row = db.scalar(
        select(Blocker).where(Blocker.project_id == case.project_id, Blocker.code == case.blocker)
    )
    code = row.department if row is not None else blocker_default_department(case.blocker)
    return [code] if code and code in departments() else []


# ---------------------------------------------------------------- acting on every member


@dataclass
class CaseOutcome:
    """What a case-wide action did: the petitions it reached, those it skipped and why."""

    done: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _require_open(case: PetitionCase) -> None:
    if case.status != "open":
        raise AppError(409, "case_closed", "这个并单的信访已全部销号，不能再操作。")


def assign_case(
    *,
    db: Session,
    user: StaffUser,
    case: PetitionCase,
    departments_: Sequence[str],
    today: date | None = None,
) -> CaseOutcome:
    """Send every open member to the departments (each petition through the ordinary assign:
    its deadline, audit row and resident message). Members where assigning cannot work are
    skipped with the reason."""
    roles.require(user, "petition.assign")
    _require_open(case)
    known = departments()
    codes = list(dict.fromkeys(c.strip() for c in departments_ if c and c.strip()))
    if not codes:
        raise AppError(422, "departments_required", "请至少选择一个承办部门。")
    unknown = [c for c in codes if c not in known]
    if unknown:
        raise AppError(422, "unknown_department", "部门目录里没有：" + "、".join(unknown))
    result = CaseOutcome()
    for petition in members(db=db, user=user, case=case):
        if not workflow.is_legal(petition.status, "assign"):
            result.skipped.append((petition.number, f"{petition.status_label}，不能分派"))
            continue
        already = {a.department for a in petition.assignments}
        if all(c in already for c in codes):
            result.skipped.append((petition.number, "所选部门都已分派过"))
            continue
        staff_service.assign(
            db=db,
            user=user,
            petition=petition,
            departments_=[c for c in codes if c not in already],
            version=petition.version,
            today=today,
        )
        result.done.append(petition.number)
    if not result.done:
        raise AppError(409, "nothing_to_assign", "没有可以分派的信访：" + _reasons(result) + "。")
    audit.record(
        db=db,
        actor=_actor(user),
        action="case.assign",
        entity_type="petition_case",
        entity_id=case.number,
        after={"departments": codes, "petitions": result.done} | _skipped(result),
    )
    return result


def _skipped(result: CaseOutcome) -> dict[str, Any]:
    if not result.skipped:
        return {}
    return {"skipped": [f"{n}（{why}）" for n, why in result.skipped]}


def _reasons(result: CaseOutcome) -> str:
    return "；".join(f"{n} {why}" for n, why in result.skipped) or "没有成员"


def answer_case(
    *,
    db: Session,
    user: StaffUser,
    case: PetitionCase,
    text: str,
    department: str | None = None,
    resident_text: str | None = None,
) -> CaseOutcome:
    """One department answer for the whole case, recorded on every member assigned to that
    department and published at once: each resident gets their own message. Officers answer
    only for their department; members already answered by it are skipped."""
    roles.require(user, "petition.answer")
    _require_open(case)
    if user.role == "officer":
        if department and department != user.department:
            raise AppError(403, "forbidden", "只能答复本部门承办的信访。")
        department = user.department
    if not department:
        raise AppError(422, "department_required", "请选择答复的部门。")
    text = (text or "").strip()
    if not text:
        raise AppError(422, "answer_required", "答复内容不能为空。")
    result = CaseOutcome()
    for petition in members(db=db, user=user, case=case):
        assignment = next((a for a in petition.assignments if a.department == department), None)
        if assignment is None:
            result.skipped.append((petition.number, "没有分派给该部门"))
        elif petition.status not in ANSWERABLE:
            result.skipped.append((petition.number, f"{petition.status_label}，不能录入答复"))
        elif assignment.answer is not None:
            result.skipped.append((petition.number, "该部门已答复过"))
        else:
            staff_service.answer(
                db=db,
                user=user,
                petition=petition,
                text=text,
                version=petition.version,
                department=department,
                publish=True,
                resident_text=resident_text,
            )
            result.done.append(petition.number)
    if not result.done:
        raise AppError(409, "nothing_to_answer", "没有可以答复的信访：" + _reasons(result) + "。")
    case.answer_department = department
    case.answer_text = text
    case.answered_at = utcnow()
    db.flush()
    audit.record(
        db=db,
        actor=_actor(user),
        action="case.answer",
        entity_type="petition_case",
        entity_id=case.number,
        after={"department": department, "answer": text, "petitions": result.done}
        | _skipped(result),
    )
    return result


def audit_trail(*, db: Session, case: PetitionCase) -> Sequence[Any]:
    """The case's own audit rows, oldest first."""
    return audit.list_for(db=db, entity_type="petition_case", entity_id=case.number)


def project_petition_counts(*, db: Session, user: StaffUser, project_id: int) -> dict[str, int]:
    """Petitions of a project the user may see, by state."""
    stmt = (
        select(Petition.status, func.count())
        .where(Petition.project_id == project_id)
        .group_by(Petition.status)
    )
    condition = staff_service._visibility(user)
    if condition is not None:
        stmt = stmt.where(condition)
    return {status: int(n) for status, n in db.execute(stmt).all()}
