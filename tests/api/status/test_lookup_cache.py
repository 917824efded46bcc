"""Lookups answered from the per-token caches (issue 15): the same answers as without them, the
same JSON as the response model gives, and every committed change seen by the next lookup.

These tests commit for real (the caches only serve committed ledgers; a connection holding
uncommitted ledger writes reads without them, which the other status tests exercise).
"""

from __future__ import annotations

import csv
import itertools
import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import settings
from app.ledger.demo import demo_paths
from app.ledger.service import import_ledger
from app.status import ledger_version, matching
from app.status.lookup_schemas import LookupRead
from app.status.models import Project, Unit
from tests.api.staff.staffkit import bearer, make_user

URL = "/api/v1/lookup"
GX = "QS001"  # 观象山庄 in the demo ledger
HOME = "观象山庄3号楼2单元501"
_senders = itertools.count()


def _ask(client: TestClient, body: dict[str, str]) -> Any:
    """One lookup as the action server sends it, each from a resident of its own (the rate
    limit per sender stays out of the way)."""
    headers = {
        "Authorization": f"Service {settings.service_token}",
        "X-Sender-Id": f"cache-test-{next(_senders)}",
    }
    return client.post(URL, json=body, headers=headers)


def _token(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return ledger_version.read(conn)


def _addresses() -> list[dict[str, str]]:
    """Bodies in the forms residents type, over the whole demo ledger, and ID lookups."""
    projects_csv, units_csv = demo_paths()
    with projects_csv.open(encoding="utf-8-sig") as fh:
        projects = {r["项目编号"]: r for r in csv.DictReader(fh)}
    with units_csv.open(encoding="utf-8-sig") as fh:
        units = list(csv.DictReader(fh))
    bodies: list[dict[str, str]] = []
    for i, u in enumerate(units[::19]):
        p = projects[u["项目编号"]]
        name, b, un, r = p["项目名称"], u["幢号"], u["单元"], u["房号"]
        alias = next((a for a in p["别名"].split("、") if a), name)
        unit_part = f"{un}单元" if un else ""
        forms = [
            f"{name}{b}号楼{unit_part}{r}",
            f"{name}{b}-{un}-{r}" if un else f"{name}{b}-{r}",
            f"我家在{p['区县']}{alias}{b}栋{unit_part}{r}室",
            f"{name[:1]}{name[2:]}{b}号楼{unit_part}{r}",  # a character left out
            f"{name}{b}号楼{unit_part}9{r}",  # no such room
            name,
            f"{name}{b}号楼",
            f"{b}号楼{unit_part}{r}",  # no project named
        ]
        bodies.append({"address": forms[i % len(forms)]})
        if u["身份证号"] and u["业主姓名"] and i % 5 == 0:
            bodies.append({"id_number": u["身份证号"], "person_name": u["业主姓名"]})
    bodies += [{"address": "幸福里小区8号楼3单元1201"}, {"address": "滨河湾3号楼2单元501"}]
    return bodies


def _reference(factory: sessionmaker[Session], body: dict[str, str]) -> dict[str, Any]:
    """The answer computed afresh (no cache) and put through the response model as FastAPI
    does with response_model_exclude_unset."""
    matching.project_index.clear()
    with factory() as db:
        if "address" in body:
            answer = matching.lookup_address(db=db, address=body["address"])
        else:
            answer = matching.lookup_id(
                db=db, id_number=body["id_number"], person_name=body["person_name"]
            )
    return LookupRead.model_validate(answer).model_dump(mode="json", exclude_unset=True)


def test_cached_answers_are_the_fresh_answers_in_the_schema_json(
    ledger: sessionmaker[Session], http: TestClient
) -> None:
    bodies = _addresses()
    assert len(bodies) > 150
    first = [_ask(http, b) for b in bodies]
    again = [_ask(http, b).json() for b in bodies]  # all cached now
    for body, r1, r2 in zip(bodies, first, again, strict=True):
        assert r1.status_code == 200 and r1.headers["content-type"] == "application/json"
        want = _reference(ledger, body)
        assert r1.json() == want, body
        assert r2 == want, body
    kinds = {r.json()["match"] for r in first}
    assert kinds == {"unit", "project", "ambiguous", "none"}


def test_one_token_read_serves_a_cached_lookup(
    ledger: sessionmaker[Session], http: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.status import lookup_stats

    monkeypatch.setattr(lookup_stats, "FLUSH_SECONDS", 3600.0)  # no count written meanwhile
    assert _ask(http, {"address": HOME}).json()["match"] == "unit"
    engine = ledger.kw["bind"]
    statements: list[str] = []

    def _count(_conn: Any, _cur: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    from sqlalchemy import event

    event.listen(engine, "before_cursor_execute", _count)
    try:
        assert _ask(http, {"address": HOME}).json()["match"] == "unit"
    finally:
        event.remove(engine, "before_cursor_execute", _count)
    # The token is read on the driver's cursor; nothing else goes to the database.
    assert [s for s in statements if "ledger_version" not in s] == []


def test_a_staff_api_edit_is_seen_by_the_next_lookup(
    ledger: sessionmaker[Session], http: TestClient
) -> None:
    engine = ledger.kw["bind"]
    before = _ask(http, {"address": HOME}).json()
    assert "fire_acceptance" in {b["code"] for b in before["status"]["open_blockers"]}
    token = _token(engine)
    with ledger() as db:
        headers = bearer(db, make_user(db, "admin"))
        db.commit()
    r = http.post(
        f"/api/v1/staff/projects/{GX}/blockers/fire_acceptance/resolve",
        json={"note": "消防验收已通过"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert _token(engine) != token
    after = _ask(http, {"address": HOME}).json()
    assert "fire_acceptance" not in {b["code"] for b in after["status"]["open_blockers"]}
    assert "fire_acceptance" in {b["code"] for b in after["status"]["resolved_blockers"]}


def test_an_import_is_seen_by_the_next_lookup(
    ledger: sessionmaker[Session], http: TestClient, tmp_path: Path
) -> None:
    before = _ask(http, {"address": HOME}).json()
    assert before["unit"]["transfer_status"] == "not_started"
    projects_csv, units_csv = demo_paths()
    shutil.copy(projects_csv, tmp_path / "projects.csv")
    with units_csv.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    header = rows[0]
    col = {name: i for i, name in enumerate(header)}
    for row in rows[1:]:
        if (row[col["项目编号"]], row[col["幢号"]], row[col["单元"]], row[col["房号"]]) == (
            GX, "3", "2", "501",
        ):  # fmt: skip
            row[col["转移登记"]] = "已办结"
    with (tmp_path / "units.csv").open("w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh).writerows(rows)
    with ledger() as db:
        import_ledger([tmp_path / "projects.csv", tmp_path / "units.csv"], db=db, actor="test")
        db.commit()
    after = _ask(http, {"address": HOME}).json()
    assert after["unit"]["transfer_status"] == "done"
    done = before["status"]["transfer_registration"]["done"]
    assert after["status"]["transfer_registration"]["done"] == done + 1


def test_a_write_from_another_connection_is_seen_and_a_rollback_changes_nothing(
    ledger: sessionmaker[Session], http: TestClient
) -> None:
    """No signal inside this process: another process writing plain SQL to the same database
    is seen the same way (its commit changes the token in the database)."""
    engine = ledger.kw["bind"]
    _ask(http, {"address": "松涛苑3-2-501"})
    state = matching.project_index.state(ledger())
    token = _token(engine)
    with engine.connect() as conn:
        conn.execute(text("UPDATE project SET name = '松涛苑' WHERE code = :c"), {"c": GX})
        conn.rollback()
    assert _token(engine) == token
    with ledger() as db:
        assert matching.project_index.state(db) is state  # nothing changed: caches kept
    with engine.begin() as conn:
        conn.execute(text("UPDATE project SET name = '松涛苑' WHERE code = :c"), {"c": GX})
        conn.execute(
            text(
                "UPDATE unit SET transfer_status = 'in_progress' WHERE building = '3' "
                "AND unit = '2' AND room = '501' AND project_id = "
                "(SELECT id FROM project WHERE code = :c)"
            ),
            {"c": GX},
        )
    assert _token(engine) != token
    answer = _ask(http, {"address": "松涛苑3-2-501"}).json()
    assert answer["match"] == "unit" and answer["project"]["code"] == GX
    assert answer["unit"]["transfer_status"] == "in_progress"


def test_an_orm_delete_is_seen(ledger: sessionmaker[Session], http: TestClient) -> None:
    assert _ask(http, {"address": HOME}).json()["match"] == "unit"
    with ledger() as db:
        unit = db.scalar(
            select(Unit)
            .join(Project)
            .where(Project.code == GX, Unit.building == "3", Unit.unit == "2", Unit.room == "501")
        )
        assert unit is not None
        db.delete(unit)
        db.commit()
    answer = _ask(http, {"address": HOME}).json()
    assert answer["match"] == "project" and answer["unit_not_found"] is True


def test_ledger_writes_are_told_from_other_writes() -> None:
    writes = [
        "INSERT INTO project (code, name) VALUES (?, ?)",
        'UPDATE "unit" SET transfer_status = ?',
        "DELETE FROM blocker WHERE id = ?",
        "WITH src AS (SELECT 1), up AS (INSERT INTO unit AS u (project_id) SELECT 1) SELECT 1",
        "UPDATE unit SET owner_name = src.owner_name FROM (SELECT 1) AS src",
    ]
    others = [
        "SELECT * FROM unit WHERE project_id = ?",
        "INSERT INTO project_lookup_day (project_id, day, count) SELECT id, ?, ? FROM project",
        "UPDATE petition SET status = ? WHERE project_id = ?",
        "INSERT INTO audit_log (action) VALUES ('unit')",
    ]
    assert all(ledger_version.is_ledger_write(s) for s in writes)
    assert not any(ledger_version.is_ledger_write(s) for s in others)
