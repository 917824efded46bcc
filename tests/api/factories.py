"""factory_boy factories for api tests: the builders of staff/staffkit.py in one declarative place.

Bind them to the test's session first (`bind(db)`, or the `factories` fixture of a test module);
they flush, never commit, so the test's outer transaction still rolls everything back.

    project = ProjectFactory(name="测试嘉园", blockers=[("fire_acceptance", "housing_bureau")])
    petition = PetitionFactory(project=project, status="assigned", departments=["housing_bureau"])
"""

from __future__ import annotations

from datetime import date
from typing import Any

import factory
from factory.alchemy import SQLAlchemyModelFactory
from sqlalchemy.orm import Session
from staff import staffkit

from app.core.workdays import calendar
from app.petition import staff_service
from app.petition.models import Petition, PetitionAssignment, PetitionNotice
from app.staff.models import StaffUser
from app.status.models import Blocker, Project

INTAKE = date(2026, 11, 2)


def _next() -> int:
    # One counter with staffkit, so numbers and codes never collide when both are used.
    return next(staffkit._seq)


class _Base(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_persistence = "flush"


class StaffUserFactory(_Base):
    """An account with the test password (staffkit.PASSWORD)."""

    class Meta:
        model = StaffUser

    role = "clerk"
    username = factory.LazyAttribute(lambda o: f"{o.role}_{_next()}")
    display_name = factory.LazyAttribute(lambda o: "测试" + o.role)
    password_hash = factory.LazyFunction(staffkit._password_hash)
    department = factory.LazyAttribute(lambda o: "housing_bureau" if o.role == "officer" else None)
    active = True


class ProjectFactory(_Base):
    """A project; `blockers` are (code, department) pairs, open."""

    class Meta:
        model = Project

    code = factory.LazyFunction(lambda: f"P{_next():04d}")
    name = "观象山庄"
    aliases = factory.LazyFunction(list)
    district = "市北区"
    address = "测试路1号"
    developer = "测试置业"
    unit_count = 4
    initial_registration_done = False

    @factory.post_generation
    def blockers(self: Project, create: bool, extracted: Any, **_: Any) -> None:
        pairs = extracted if extracted is not None else [("fire_acceptance", "housing_bureau")]
        self.blockers = [Blocker(code=c, department=d, note="", status="open") for c, d in pairs]
        if create:
            _session().flush()


class PetitionFactory(_Base):
    """A petition put directly in `status`: assignments for every state past 已受理 (answered
    with `answered=True`), a notice in 公示中; `blockers` are the codes the bot explained."""

    class Meta:
        model = Petition

    class Params:
        project = None

    number = factory.LazyAttribute(lambda o: f"XF-{o.intake_date:%Y%m%d}-{_next():04d}")
    status = "accepted"
    person_name = "张三"
    phone = "13812345678"
    project_id = factory.LazyAttribute(lambda o: o.project.id if o.project else None)
    address = "观象山庄3号楼2单元501"
    description = "交房八年了还没有房本。"
    consent = True
    channel = "web"
    intake_date = INTAKE
    answer_due = factory.LazyAttribute(lambda o: calendar().add_working_days(o.intake_date, 5)[0])
    blockers = factory.LazyFunction(lambda: ["fire_acceptance"])

    @factory.post_generation
    def departments(self: Petition, create: bool, extracted: Any, **_: Any) -> None:
        codes = list(extracted or ([] if self.status == "accepted" else ["housing_bureau"]))
        due, _ = calendar().add_working_days(self.intake_date, 5)
        for code in codes:
            self.assignments.append(PetitionAssignment(department=code, answer_due=due))
        if not create:
            return
        db = _session()
        db.flush()
        staff_service.refresh_due(db=db, petition=self)  # as if inserted with them (staffkit)
        if self.status == "public_notice":
            end, _ = calendar().add_working_days(self.intake_date, 15)
            db.add(
                PetitionNotice(petition_id=self.id, started_on=self.intake_date, earliest_end=end)
            )
            db.flush()

    @factory.post_generation
    def answered(self: Petition, create: bool, extracted: Any, **_: Any) -> None:
        if extracted:
            for assignment in self.assignments:
                assignment.answer = "已书面答复。"
            if create:
                _session().flush()


FACTORIES: tuple[type[_Base], ...] = (StaffUserFactory, ProjectFactory, PetitionFactory)


def bind(db: Session) -> None:
    """Make every factory write through this session."""
    for f in FACTORIES:
        f._meta.sqlalchemy_session = db


def _session() -> Session:
    session = PetitionFactory._meta.sqlalchemy_session
    assert session is not None, "call factories.bind(db) first"
    return session
