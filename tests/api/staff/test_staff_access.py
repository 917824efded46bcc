"""The role/access matrix over every staff endpoint, anonymous 401, and officers kept to their
own department's petitions even when they guess numbers or ids."""

from __future__ import annotations

import itertools

import pytest
from staff.staffkit import bearer, make_petition, make_project, make_user

from app.core.config import settings
from app.core.database import utcnow
from app.inbox import service as inbox_service
from app.main import app
from app.modelhub.models import NluModel
from app.nlu.models import NluInboxItem
from app.notify import service as notify_service
from app.notify.models import Notification
from app.petition.case_models import PetitionCase, PetitionCaseMember
from app.petition.models import PetitionMessage

ROLES = ("clerk", "officer", "other_officer", "supervisor", "admin", "maintainer")
ALL = dict.fromkeys(ROLES, 200)
_names = itertools.count(1)


def _except(base: dict[str, int], **changes: int) -> dict[str, int]:
    return base | changes


# Maintainers see only the masked NLU inbox: no petition, project, ledger or dashboard.
CASEWORK = _except(ALL, maintainer=403)
EDITORS = _except(CASEWORK, officer=403, other_officer=403)
# A petition of another department: 404, as if it did not exist.
PETITION_READ = _except(CASEWORK, other_officer=404)
PETITION_STAFF_ONLY = _except(CASEWORK, officer=403, other_officer=404)
NLU = {r: (200 if r in ("maintainer", "admin") else 403) for r in ROLES}
DASHBOARD = EDITORS
ADMIN_ONLY = {r: (200 if r == "admin" else 403) for r in ROLES}

# (method, path, json body builder, expected status per role). {ref} is the petition number,
# {code} the project code, {blocker} one of its blockers, {username} another account.
MATRIX: list[tuple[str, str, object, dict[str, int]]] = [
    ("GET", "/api/v1/staff/me", None, ALL),
    ("GET", "/api/v1/staff/users", None, ADMIN_ONLY),
    (
        "POST",
        "/api/v1/staff/users",
        lambda ctx: {"username": f"newuser{next(_names)}", "password": "x" * 12, "role": "clerk"},
        _except(ADMIN_ONLY, admin=201),
    ),
    ("PATCH", "/api/v1/staff/users/{username}", lambda ctx: {"active": True}, ADMIN_ONLY),
    ("GET", "/api/v1/staff/projects", None, CASEWORK),
    ("GET", "/api/v1/staff/projects/{code}", None, CASEWORK),
    (
        "PATCH",
        "/api/v1/staff/projects/{code}",
        lambda ctx: {"expected_resolution_date": "2027-06-30"},
        EDITORS,
    ),
    (
        "POST",
        "/api/v1/staff/projects/{code}/blockers",
        lambda ctx: {"code": "mortgage", "note": "土地抵押未解押"},
        _except(EDITORS, clerk=201, supervisor=201, admin=201),
    ),
    (
        "PATCH",
        "/api/v1/staff/projects/{code}/blockers/{blocker}",
        lambda ctx: {"note": "已约谈开发企业"},
        EDITORS,
    ),
    (
        "POST",
        "/api/v1/staff/projects/{code}/blockers/{blocker}/resolve",
        lambda ctx: {"note": "消防验收已通过"},
        EDITORS,
    ),
    (
        "POST",
        "/api/v1/staff/ledger/import",
        "ledger",
        # Allowed roles reach the upload, which refuses a workbook that is no zip before
        # queueing anything (app.ledger.guard).
        {r: (422 if r in ("clerk", "admin") else 403) for r in ROLES},
    ),
    (
        "GET",
        "/api/v1/staff/ledger/template.xlsx",
        None,
        {r: (200 if r in ("clerk", "admin") else 403) for r in ROLES},
    ),
    (
        "GET",
        "/api/v1/staff/ledger/imports/{import_id}",
        None,
        # No such upload: the permission is checked first.
        {r: (404 if r in ("clerk", "admin") else 403) for r in ROLES},
    ),
    ("GET", "/api/v1/staff/petitions", None, CASEWORK),
    ("GET", "/api/v1/staff/petitions/{ref}", None, PETITION_READ),
    ("GET", "/api/v1/staff/petitions/{ref}/audit", None, PETITION_READ),
    (
        "POST",
        "/api/v1/staff/petitions/{ref}/assign",
        lambda ctx: {"departments": ["tax_bureau"], "version": ctx["version"]},
        PETITION_STAFF_ONLY,
    ),
    (
        "POST",
        "/api/v1/staff/petitions/{ref}/transition",
        lambda ctx: {"action": "supervise", "version": ctx["version"], "note": "超期督办"},
        _except(PETITION_STAFF_ONLY, clerk=403),
    ),
    (
        "POST",
        "/api/v1/staff/petitions/{ref}/answer",
        lambda ctx: {
            "answer": "已书面答复",
            "version": ctx["version"],
            "department": "housing_bureau",
        },
        PETITION_READ,
    ),
    (
        "POST",
        "/api/v1/staff/petitions/{ref}/answers/{department}/approve",
        lambda ctx: {"version": ctx["version"], "resident_text": "已书面答复，请您查看"},
        PETITION_STAFF_ONLY,
    ),
    (
        "POST",
        "/api/v1/staff/petitions/{ref}/notes",
        lambda ctx: {"text": "已电话联系"},
        PETITION_READ,
    ),
    (
        "POST",
        "/api/v1/staff/petitions/{ref}/close",
        lambda ctx: {"outcome": "已办证", "satisfaction": "satisfied", "version": ctx["version"]},
        PETITION_STAFF_ONLY,
    ),
    # The procedure's other steps on the 核实中 petition: 异议 only during 公示 (409), no such
    # objection (404), the 回迁确认书 (officers: only 征收办's), the office meeting and a decision
    # on a case never flagged (409).
    (
        "POST",
        "/api/v1/staff/petitions/{ref}/objections",
        lambda ctx: {"raised_by": "同楼住户", "content": "面积有误", "version": ctx["version"]},
        _except(PETITION_STAFF_ONLY, clerk=409, supervisor=409, admin=409),
    ),
    (
        "POST",
        "/api/v1/staff/petitions/{ref}/objections/{objection_id}/court-document",
        lambda ctx: {
            "document": "(2026)鲁0203民初1号",
            "summary": "驳回",
            "version": ctx["version"],
        },
        _except(PETITION_STAFF_ONLY, clerk=404, supervisor=404, admin=404),
    ),
    (
        "POST",
        "/api/v1/staff/petitions/{ref}/resettlement",
        lambda ctx: {"document_number": "征确字〔2026〕8号", "version": ctx["version"]},
        PETITION_STAFF_ONLY,
    ),
    (
        "POST",
        "/api/v1/staff/petitions/{ref}/meeting",
        lambda ctx: {"kind": "general", "reason": "涉及多部门", "version": ctx["version"]},
        PETITION_STAFF_ONLY,
    ),
    (
        "POST",
        "/api/v1/staff/petitions/{ref}/meeting/decision",
        lambda ctx: {"decision": "由住建局牵头", "version": ctx["version"]},
        _except(PETITION_STAFF_ONLY, clerk=409, supervisor=409, admin=409),
    ),
    (
        "GET",
        "/api/v1/staff/assignments",
        None,
        {r: (200 if r in ("officer", "other_officer") else 403) for r in ROLES},
    ),
    ("GET", "/api/v1/staff/dashboard", None, DASHBOARD),
    ("GET", "/api/v1/staff/dashboard.csv", None, DASHBOARD),
    ("GET", "/api/v1/staff/dashboard.xlsx", None, DASHBOARD),
    ("GET", "/api/v1/staff/dashboard/charts/districts.svg", None, DASHBOARD),
    # The outbox and live conversations ({key}: a conversation, {notification_id}: a failed one).
    ("GET", "/api/v1/staff/notifications", None, EDITORS),
    ("POST", "/api/v1/staff/notifications/{notification_id}/retry", None, EDITORS),
    # Each user's own reminders ({staff_note}: another account's, so 404 for everyone).
    ("GET", "/api/v1/staff/inbox", None, {r: 200 for r in ROLES}),
    ("POST", "/api/v1/staff/inbox/{staff_note}/read", None, {r: 404 for r in ROLES}),
    ("POST", "/api/v1/staff/inbox/read-all", None, {r: 200 for r in ROLES}),
    ("GET", "/api/v1/staff/conversations", None, EDITORS),
    ("GET", "/api/v1/staff/conversations/{key}", None, EDITORS),
    ("POST", "/api/v1/staff/conversations/{key}/takeover", None, EDITORS),
    (
        "POST",
        "/api/v1/staff/conversations/{key}/messages",
        lambda ctx: {"text": "您好"},
        # Allowed roles are told to take the conversation over first.
        _except(EDITORS, clerk=409, supervisor=409, admin=409),
    ),
    ("POST", "/api/v1/staff/conversations/{key}/handback", None, EDITORS),
    # The NLU inbox ({nlu_item}: a message the bot reported; docs/maintainers.md).
    ("GET", "/api/v1/staff/nlu/inbox", None, NLU),
    (
        "POST",
        "/api/v1/staff/nlu/inbox/{nlu_item}/annotation",
        lambda ctx: {"intent": "greet"},
        NLU,
    ),
    ("POST", "/api/v1/staff/nlu/export", None, NLU),
    ("GET", "/api/v1/staff/nlu/conversations/{nlu_item}/case", None, NLU),
    (
        "POST",
        "/api/v1/staff/nlu/flag",
        lambda ctx: {"petition": ctx["ref"], "position": 0},
        # Those who read every petition flag a resident's turn of its conversation.
        _except(EDITORS, clerk=201, supervisor=201, admin=201),
    ),
    # Collective cases (并单; {case_ref}: a case of the petition and a second one of 住建局).
    ("GET", "/api/v1/staff/cases/suggestions", None, EDITORS),
    ("GET", "/api/v1/staff/cases", None, CASEWORK),
    (
        "POST",
        "/api/v1/staff/cases",
        lambda ctx: {"petitions": [ctx["ref"], ctx["ref2"]], "blocker": "fire_acceptance"},
        _except(EDITORS, clerk=201, supervisor=201, admin=201),
    ),
    ("GET", "/api/v1/staff/cases/{case_ref}", None, PETITION_READ),
    (
        "POST",
        "/api/v1/staff/cases/{case_ref}/assign",
        lambda ctx: {"departments": ["tax_bureau"]},
        PETITION_STAFF_ONLY,
    ),
    (
        "POST",
        "/api/v1/staff/cases/{case_ref}/answer",
        lambda ctx: {"answer": "已书面答复", "department": "housing_bureau"},
        PETITION_READ,
    ),
    # The model registry ({model_id}: a retired model whose file is gone, so the allowed roles
    # reach the registry and are told it cannot go live).
    ("GET", "/api/v1/staff/models", None, NLU),
    ("POST", "/api/v1/staff/models/train", None, _except(NLU, maintainer=202, admin=202)),
    (
        "POST",
        "/api/v1/staff/models/{model_id}/promote",
        lambda ctx: {},
        _except(NLU, maintainer=409, admin=409),
    ),
]

CASES = [(m, p, b, role, exp[role]) for m, p, b, exp in MATRIX for role in ROLES]


def _template(path: str) -> str:
    path = path.replace("/inbox/{nlu_item}/", "/inbox/{item_id}/")
    path = path.replace("/inbox/{staff_note}/", "/inbox/{notification_id}/")
    path = path.replace("/conversations/{nlu_item}/case", "/conversations/{key}/case")
    return path.replace("/districts.svg", "/{name}.svg")


def test_matrix_covers_every_staff_endpoint():
    """Every staff route in the OpenAPI schema has a row in the matrix (new ones must be added)."""
    routes = {
        (method.upper(), path)
        for path, ops in app.openapi()["paths"].items()
        if path.startswith("/api/v1/staff")
        for method in ops
    }
    covered = {(m, _template(p)) for m, p, _, _ in MATRIX}
    assert routes == covered


@pytest.fixture
def world(db, tmp_path, monkeypatch):
    """A project, a petition of 住建局 in 核实中 with its conversation, accounts of every role,
    their tokens, a message in the NLU inbox (exports go to a temp folder)."""
    monkeypatch.setattr(settings, "nlu_export_dir", tmp_path / "inbox")
    project = make_project(db)
    petition = make_petition(
        db, status="verifying", answered=True, departments=("housing_bureau",), project=project
    )
    for position, (sender, text) in enumerate([("resident", "房本咋还没下来"), ("bot", "您好")]):
        db.add(
            PetitionMessage(
                petition_id=petition.id, position=position, at=utcnow(), sender=sender, text=text
            )
        )
    users = {
        "clerk": make_user(db, "clerk"),
        "officer": make_user(db, "officer", department="housing_bureau"),
        "other_officer": make_user(db, "officer", department="tax_bureau"),
        "supervisor": make_user(db, "supervisor"),
        "admin": make_user(db, "admin"),
        "maintainer": make_user(db, "maintainer"),
    }
    target = make_user(db, "clerk")
    headers = {role: bearer(db, user) for role, user in users.items()}
    contact = notify_service.touch_contact(
        db, sender_id="web-matrix", channel="webchat", address="a" * 64
    )
    failed = Notification(
        sender_id="web-matrix", channel="webchat", kind="state", text="已分派", status="failed"
    )
    db.add(failed)
    inbox_item = NluInboxItem(
        text="嗯嗯啊啊", reason="fallback", channel="webchat", sender="0" * 16, confidence=0.1
    )
    db.add(inbox_item)
    model = NluModel(status="retired", started_by="cli:matrix", artifact="/nonexistent.tar.gz")
    db.add(model)
    # A second petition of the project, waiting for 住建局's answer, and a case of both to call
    # the case endpoints on (the POST /cases row makes its own case of the two).
    second = make_petition(db, status="assigned", departments=("housing_bureau",), project=project)
    for p in (petition, second):
        p.blockers = ["fire_acceptance"]
    db.flush()
    case = PetitionCase(
        number="BD-20261102-0001",
        project_id=project.id,
        blocker="fire_acceptance",
        title="矩阵并单",
        created_by="matrix",
    )
    db.add(case)
    db.flush()
    db.add(PetitionCaseMember(case_id=case.id, petition_id=second.id, open_key=None))
    db.add(PetitionCaseMember(case_id=case.id, petition_id=petition.id, open_key=None))
    [staff_note] = inbox_service.notify_users(
        db, [target], kind="answer_due", key="matrix", text="答复提醒：信访 XF-20261102-0001"
    )
    db.commit()
    return {
        "project": project,
        "petition": petition,
        "headers": headers,
        "ctx": {
            "ref": petition.number,
            "code": project.code,
            "blocker": "fire_acceptance",
            "department": "housing_bureau",
            "username": target.username,
            "version": petition.version,
            "key": notify_service.conversation_key(contact),
            "notification_id": failed.id,
            "nlu_item": inbox_item.id,
            "staff_note": staff_note.id,
            "model_id": model.id,
            "import_id": "0123456789abcdef",
            "ref2": second.number,
            "case_ref": case.number,
            "objection_id": 999999,
        },
    }


def _call(client, method, path, body, ctx, headers):
    url = path.format(**ctx)
    if body == "ledger":
        files = {"files": ("台账.xlsx", b"PK\x03\x04 not a workbook", "application/zip")}
        return client.request(method, url, files=files, headers=headers)
    payload = body(ctx) if callable(body) else None
    return client.request(method, url, json=payload, headers=headers)


@pytest.mark.parametrize(
    ("method", "path", "body", "role", "expected"),
    CASES,
    ids=[f"{m} {p} {r}" for m, p, _, r, _ in CASES],
)
def test_role_matrix(client, world, method, path, body, role, expected):
    """Each role gets exactly the answer the matrix says, as a `{code, message}` on refusal."""
    response = _call(client, method, path, body, world["ctx"], world["headers"][role])
    assert response.status_code == expected, response.text
    if expected >= 400:
        body_json = response.json()
        assert set(body_json) >= {"code", "message"}
        assert any("\u4e00" <= ch <= "\u9fff" for ch in body_json["message"])


@pytest.mark.parametrize(("method", "path", "body"), [(m, p, b) for m, p, b, _ in MATRIX])
def test_anonymous_gets_401(client, world, method, path, body):
    """No token, no session: 401 JSON with a Chinese message, whatever the endpoint."""
    response = _call(client, method, path, body, world["ctx"], {})
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


def test_bad_or_expired_token_is_401(client, world, db):
    """A made-up token or an expired one is refused."""
    from datetime import timedelta

    from app.core.database import utcnow
    from app.staff.models import StaffSession

    r = client.get("/api/v1/staff/me", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401
    for row in db.query(StaffSession).all():
        row.expires_at = utcnow() - timedelta(seconds=1)
    db.commit()
    r = client.get("/api/v1/staff/me", headers=world["headers"]["admin"])
    assert r.status_code == 401 and "过期" in r.json()["message"]


def test_officer_cannot_reach_other_department_by_guessing(client, world, db):
    """By number or by numeric id, every petition endpoint answers 404 to another department."""
    petition = world["petition"]
    headers = world["headers"]["other_officer"]
    for ref in (petition.number, str(petition.id), petition.number.lower()):
        for method, suffix, payload in [
            ("GET", "", None),
            ("GET", "/audit", None),
            ("POST", "/notes", {"text": "x"}),
            ("POST", "/answer", {"answer": "x", "version": petition.version}),
        ]:
            r = client.request(
                method, f"/api/v1/staff/petitions/{ref}{suffix}", json=payload, headers=headers
            )
            assert r.status_code == 404, (ref, suffix)
            assert r.json()["message"] == "没有找到这件信访，请核对编号。"
    listed = client.get("/api/v1/staff/petitions", headers=headers).json()
    assert listed["total"] == 0 and listed["items"] == []
    listed = client.get("/api/v1/staff/petitions", headers=world["headers"]["officer"]).json()
    # Both of 住建局's petitions (the world's second one is in the case rows' case).
    assert {i["number"] for i in listed["items"]} == {petition.number, world["ctx"]["ref2"]}


def test_phone_is_masked_for_officers_only(client, world):
    """Clerks and supervisors see the phone to call back; officers see it masked."""
    ref = world["ctx"]["ref"]
    seen = {
        role: client.get(f"/api/v1/staff/petitions/{ref}", headers=world["headers"][role]).json()
        for role in ("clerk", "officer", "supervisor")
    }
    assert seen["clerk"]["phone"] == "13812345678" and not seen["clerk"]["phone_masked"]
    assert seen["supervisor"]["phone"] == "13812345678"
    assert seen["officer"]["phone"] == "138****5678" and seen["officer"]["phone_masked"]


def test_no_endpoint_edits_the_audit_trail():
    """The audit trail is only ever read: no PUT/PATCH/DELETE/POST touches an audit path."""
    for path, ops in app.openapi()["paths"].items():
        if "audit" in path:
            assert set(ops) == {"get"}, path
