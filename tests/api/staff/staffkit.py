"""Builders for staff tests: accounts, tokens, projects and petitions in any workflow state."""

from __future__ import annotations

import functools
import itertools
from datetime import date, timedelta

from sqlalchemy.orm import Session

from app.core.workdays import calendar
from app.dashboard.tally import refresh_unit_tally
from app.petition.models import Petition, PetitionAssignment, PetitionNotice
from app.staff import service as staff_service
from app.staff.models import StaffUser
from app.status.models import Blocker, Project, Unit

PASSWORD = "correct-horse-battery"
_seq = itertools.count(1)


def make_user(
    db: Session, role: str, department: str | None = None, username: str | None = None
) -> StaffUser:
    """An account with the test password."""
    if role == "officer" and department is None:
        department = "housing_bureau"
    # A precomputed argon2 hash: hashing once per test would dominate the run time.
    user = StaffUser(
        username=username or f"{role}_{next(_seq)}",
        display_name="测试" + role,
        password_hash=_password_hash(),
        role=role,
        department=department if role == "officer" else None,
        active=True,
    )
    db.add(user)
    db.flush()
    return user


@functools.cache
def _password_hash() -> str:
    return staff_service.hash_password(PASSWORD)


def bearer(db: Session, user: StaffUser) -> dict[str, str]:
    """Authorization header with a fresh bearer token for the user."""
    token, _ = staff_service.create_session(db=db, user=user, kind="bearer")
    return {"Authorization": f"Bearer {token}"}


def make_project(
    db: Session,
    code: str | None = None,
    *,
    name: str = "观象山庄",
    district: str = "市北区",
    unit_count: int = 4,
    initial_done: bool = False,
    blockers: tuple[tuple[str, str], ...] = (("fire_acceptance", "housing_bureau"),),
    transfers: tuple[str, ...] = (),
) -> Project:
    """A project with blockers (code, department) and units with the given transfer states."""
    project = Project(
        code=code or f"P{next(_seq):04d}",
        name=name,
        aliases=[],
        district=district,
        address="测试路1号",
        developer="测试置业",
        unit_count=unit_count,
        initial_registration_done=initial_done,
    )
    project.blockers = [Blocker(code=c, department=d, note="", status="open") for c, d in blockers]
    db.add(project)
    db.flush()
    for i, status in enumerate(transfers):
        db.add(
            Unit(
                project_id=project.id,
                building="1",
                unit="1",
                room=str(101 + i),
                transfer_status=status,
            )
        )
    db.flush()
    # Units come from the ledger import, which keeps the dashboard's totals; so does this kit.
    refresh_unit_tally(db, [project.id])
    return project


def make_petition(
    db: Session,
    *,
    status: str = "accepted",
    intake: date = date(2026, 11, 2),
    departments: tuple[str, ...] = (),
    answered: bool = False,
    project: Project | None = None,
    phone: str = "13812345678",
    closure_due: date | None = None,
    assigned_on: date | None = None,
) -> Petition:
    """A petition put directly in `status` (with assignments and a notice when the state needs)."""
    if status != "accepted" and not departments:
        departments = ("housing_bureau",)
    answer_due, _ = calendar().add_working_days(intake, 5)
    n = next(_seq)
    petition = Petition(
        number=f"XF-{intake:%Y%m%d}-{n:04d}",
        status=status,
        person_name="张三",
        phone=phone,
        project_id=project.id if project else None,
        address="观象山庄3号楼2单元501",
        description="交房八年了还没有房本。",
        consent=True,
        channel="web",
        intake_date=intake,
        answer_due=answer_due,
        closure_due=closure_due,
    )
    for dept in departments:
        due, _ = calendar().add_working_days(assigned_on or intake, 5)
        petition.assignments.append(
            PetitionAssignment(
                department=dept, answer_due=due, answer="已书面答复。" if answered else None
            )
        )
    db.add(petition)
    db.flush()
    if status == "public_notice":
        start = intake
        db.add(
            PetitionNotice(
                petition_id=petition.id,
                started_on=start,
                earliest_end=calendar().add_working_days(start, 15)[0],
            )
        )
        db.flush()
    return petition


def days_after(day: date, n: int) -> date:
    """Calendar days after a date."""
    return day + timedelta(days=n)


def do_move(db: Session, user: StaffUser, petition: Petition, action: str, today: date):
    """Make one workflow move as a staff member would, with the input each move needs: 分派 to
    税务局, 办结 with an outcome and 满意 by phone, 转办 with its reason."""
    from app.petition import staff_service as petitions

    if action == "assign":
        return petitions.assign(
            db=db,
            user=user,
            petition=petition,
            departments_=["tax_bureau"],
            version=petition.version,
            today=today,
        )
    if action == "close":
        return petitions.close(
            db=db,
            user=user,
            petition=petition,
            outcome="已完成首次登记，群众已领证。",
            satisfaction="satisfied",
            version=petition.version,
            today=today,
        )
    return petitions.transition(
        db=db,
        user=user,
        petition=petition,
        action=action,
        version=petition.version,
        note="移送法院处理产权纠纷" if action == "transfer" else "",
        today=today,
    )
