"""project_status, get_by_code and list_projects against projects made in the test database."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import event
from sqlalchemy.orm import Session

from app.policy.catalogue import get_catalogue
from app.status import service as status_service
from app.status.models import Blocker, Project, Unit
from app.status.schemas import ProjectStatusRead


def make_project(
    db: Session,
    code: str,
    *,
    name: str = "观象山庄",
    aliases: list[str] | None = None,
    initial_done: bool = False,
    blockers: list[tuple[str, str, str | None, str]] = (),  # type: ignore[assignment]
    units: dict[str, int] | None = None,
    expected: date | None = None,
) -> Project:
    """A project with blockers (code, note, department or None for default, status) and units."""
    cat = get_catalogue()
    project = Project(
        code=code,
        name=name,
        aliases=aliases or [],
        district="北城区",
        address="北城区观象路1号",
        developer="某某置业有限公司",
        unit_count=sum((units or {}).values()),
        initial_registration_done=initial_done,
        expected_resolution_date=expected,
    )
    for bcode, note, dep, status in blockers:
        project.blockers.append(
            Blocker(
                code=bcode,
                note=note,
                department=dep or cat.default_department(bcode).code,
                status=status,
                changed_at=datetime(2026, 3, 1, 8, 0, tzinfo=UTC),
            )
        )
    db.add(project)
    db.flush()
    n = 0
    for status, count in (units or {}).items():
        for _ in range(count):
            n += 1
            db.add(
                Unit(
                    project_id=project.id,
                    building=str(1 + n // 100),
                    unit="1",
                    room=str(100 + n % 100),
                    transfer_status=status,
                )
            )
    db.flush()
    return project


def test_status_of_a_blocked_project(db: Session) -> None:
    """Open blockers carry the catalogue's text and the local note; resolved ones are listed."""
    cat = get_catalogue()
    make_project(
        db,
        "T-001",
        blockers=[
            ("mortgage", "土地抵押给某银行", None, "open"),
            ("developer_tax_unpaid", "", "tax_bureau", "open"),
            ("fire_acceptance", "2025年已整改", None, "resolved"),
        ],
        units={"done": 3, "in_progress": 2, "not_started": 5},
        expected=date(2027, 6, 30),
    )
    project = status_service.get_by_code(db=db, code="T-001")
    assert project is not None
    status = status_service.project_status(db=db, project=project)
    ProjectStatusRead.model_validate(status)

    assert status["code"] == "T-001" and status["initial_registration"] == {
        "done": False,
        "label": "未完成",
    }
    assert status["transfer_registration"] == {
        "units_total": 10,
        "done": 3,
        "in_progress": 2,
        "not_started": 5,
        "rate": 0.3,
    }
    assert status["expected_resolution_date"] == "2027-06-30"
    opened = {b["code"]: b for b in status["open_blockers"]}
    assert set(opened) == {"mortgage", "developer_tax_unpaid"}
    mortgage = opened["mortgage"]
    assert mortgage["name"] == cat.blockers["mortgage"].name
    assert mortgage["explanation"] == cat.blockers["mortgage"].explanation
    assert mortgage["note"] == "土地抵押给某银行"
    assert mortgage["department"] == {
        "code": cat.default_department("mortgage").code,
        "name": cat.default_department("mortgage").name,
    }
    assert mortgage["buyer_at_fault"] is False
    assert [p["code"] for p in mortgage["policies"]] == list(cat.blockers["mortgage"].policies)
    assert mortgage["resident_next_steps"] == list(cat.blockers["mortgage"].resident_next_steps)
    assert mortgage["expected_date"] == "2027-06-30"
    assert mortgage["status"] == "open"
    assert opened["developer_tax_unpaid"]["department"]["name"] == "税务局"
    assert [b["code"] for b in status["resolved_blockers"]] == ["fire_acceptance"]
    resolved = status["resolved_blockers"][0]
    assert resolved["status"] == "resolved" and resolved["resolved_at"].startswith("2026-03-01")
    assert status["next_steps"]["situation"] == "initial_pending"
    assert status["next_steps"]["items"] == list(cat.guidance.next_steps["initial_pending"].items)


def test_status_of_a_finished_project(db: Session) -> None:
    """A project with 首次登记 done and no units yet: no rate, guidance to apply."""
    project = make_project(db, "T-002", initial_done=True)
    status = status_service.project_status(db=db, project=project)
    assert status["initial_registration"]["label"] == "已完成"
    assert status["transfer_registration"]["units_total"] == 0
    assert status["transfer_registration"]["rate"] is None
    assert status["open_blockers"] == [] and status["resolved_blockers"] == []
    assert status["next_steps"]["situation"] == "initial_done"


def test_buyer_tax_blocker_says_the_buyer_must_act(db: Session) -> None:
    """The one blocker that is the buyer's own business is marked so."""
    project = make_project(db, "T-003", blockers=[("buyer_tax_unpaid", "", None, "open")])
    (blocker,) = status_service.project_status(db=db, project=project)["open_blockers"]
    assert blocker["buyer_at_fault"] is True


def test_unknown_code_is_none(db: Session) -> None:
    """get_by_code answers None for a code nobody has."""
    assert status_service.get_by_code(db=db, code="NO-SUCH") is None


def test_status_uses_three_queries_whatever_the_unit_count(db: Session) -> None:
    """Project, its blockers, and one aggregate over units: no query per unit or blocker."""
    make_project(
        db,
        "T-004",
        blockers=[(c, "", None, "open") for c in ["mortgage", "court_seizure", "area_survey"]],
        units={"done": 150, "not_started": 150},
    )
    db.expire_all()
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    engine = db.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        project = status_service.get_by_code(db=db, code="T-004")
        assert project is not None
        status = status_service.project_status(db=db, project=project)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert status["transfer_registration"]["done"] == 150
    assert len(status["open_blockers"]) == 3
    assert len(statements) <= 3, statements


def test_list_projects_searches_name_alias_code_and_pages(db: Session) -> None:
    """Search by name, Chinese alias or code; pages are limited; open blockers are counted."""
    make_project(db, "S-001", name="观象山庄", aliases=["观象小区", "老纺织厂宿舍"])
    make_project(
        db,
        "S-002",
        name="金源小区",
        aliases=["金源花园"],
        blockers=[("mortgage", "", None, "open"), ("area_survey", "", None, "resolved")],
    )
    make_project(db, "S-003", name="金源小区三期", aliases=[])

    def codes(q: str | None, **kw: int) -> list[str]:
        page = status_service.list_projects(db=db, q=q, **kw)
        return [p["code"] for p in page["items"] if p["code"].startswith("S-")]

    assert codes("观象") == ["S-001"]
    assert codes("纺织厂") == ["S-001"]
    assert codes("金源") == ["S-002", "S-003"]
    assert codes("金源花园") == ["S-002"]
    assert codes("s-003") == ["S-003"]
    assert codes("100%") == []
    page = status_service.list_projects(db=db, q="金源", limit=1, offset=1)
    assert page["total"] == 2 and [p["code"] for p in page["items"]] == ["S-003"]
    assert status_service.list_projects(db=db, q=None, limit=500)["limit"] == 50
    (s2,) = status_service.list_projects(db=db, q="S-002")["items"]
    assert s2["open_blocker_count"] == 1 and s2["aliases"] == ["金源花园"]
