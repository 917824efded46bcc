"""Issue 14 in the console, as a clerk at a desk would use it (both backends): the petition page
preselects the departments of the project's open blockers with the reason; a refused action
gives back what was typed; only buttons that can succeed are shown; the audit log is newest
first with people's names; a petition taken by phone or at the counter is registered with the
caller's consent; the list's count follows the search."""

from __future__ import annotations

import html
import re

from sqlalchemy import func, select
from staff.staffkit import make_petition, make_project, make_user
from staff.test_staff_auth import console_login, page_csrf

from app.audit.models import AuditLog
from app.petition.models import Petition


def _version(page: str) -> str:
    return re.search(r'name="version" value="(\d+)"', page).group(1)


def _post(client, url: str, data: dict, page: str, **kw):
    return client.post(
        url, data=data | {"csrf_token": page_csrf(page)}, follow_redirects=False, **kw
    )


def _ticked(page: str) -> set[str]:
    return set(re.findall(r'name="departments" value="([a-z_]+)" checked', page))


def test_the_petition_page_preselects_departments_from_the_blockers(client, db):
    clerk = make_user(db, "clerk")
    project = make_project(
        db, blockers=(("fire_acceptance", "fire_rescue"), ("developer_tax_unpaid", ""))
    )
    petition = make_petition(db, project=project)
    db.commit()
    console_login(client, clerk.username)
    page = client.get(f"/console/petitions/{petition.number}").text
    assert "消防验收未通过 → 消防救援大队" in html.unescape(page)
    assert "开发企业欠税或开不出发票 → 税务局" in html.unescape(page)
    assert _ticked(page) == {"fire_rescue", "tax_bureau"}

    # The clerk unticks 税务局 and sends it to 消防救援大队 only.
    r = _post(
        client,
        f"/console/petitions/{petition.number}/assign",
        {"departments": ["fire_rescue"], "version": _version(page)},
        page,
    )
    assert r.status_code == 303
    db.expire_all()
    assert [a.department for a in db.get(Petition, petition.id).assignments] == ["fire_rescue"]
    page = client.get(f"/console/petitions/{petition.number}").text
    # Already assigned: no longer suggested; the other suggestion stays ticked.
    assert _ticked(page) == {"tax_bureau"}


def test_a_refused_close_keeps_what_the_clerk_typed(client, db):
    clerk = make_user(db, "clerk")
    petition = make_petition(db, status="verifying", answered=True)
    db.commit()
    console_login(client, clerk.username)
    page = client.get(f"/console/petitions/{petition.number}").text
    stale = str(int(_version(page)) - 1)  # a colleague changed it meanwhile
    outcome = "已约谈开发企业，12月20日前补齐消防材料后办理首次登记。"
    r = _post(
        client,
        f"/console/petitions/{petition.number}/close",
        {"outcome": outcome, "satisfaction": "basically_satisfied", "version": stale},
        page,
    )
    assert r.status_code == 409
    assert "刚被其他人修改过" in r.text
    assert outcome in html.unescape(r.text)
    assert re.search(r'value="basically_satisfied" checked', r.text)
    db.expire_all()
    assert db.get(Petition, petition.id).status == "verifying"


def test_a_refused_transfer_keeps_its_reason(client, db):
    clerk = make_user(db, "clerk")
    petition = make_petition(db, status="assigned")
    db.commit()
    console_login(client, clerk.username)
    page = client.get(f"/console/petitions/{petition.number}").text
    r = _post(
        client,
        f"/console/petitions/{petition.number}/transition",
        {"action": "transfer", "note": "产权纠纷，移送区法院", "version": "999"},
        page,
    )
    assert r.status_code == 409
    assert 'value="产权纠纷，移送区法院"' in r.text


def test_only_buttons_that_can_succeed_are_shown(client, db):
    clerk = make_user(db, "clerk")
    petition = make_petition(db, status="public_notice", answered=True, intake=db_today())
    db.commit()
    console_login(client, clerk.username)
    page = client.get(f"/console/petitions/{petition.number}").text
    assert f'action="/console/petitions/{petition.number}/close"' not in page
    waiting = re.search(r'<ul class="waiting" id="waiting">(.*?)</ul>', page, re.S).group(1)
    assert "办结" in waiting and "起才能办结" in waiting

    assigned = make_petition(db, status="assigned", departments=("housing_bureau",))
    db.commit()
    page = client.get(f"/console/petitions/{assigned.number}").text
    assert 'value="verify"' not in page
    assert "开始核实" in page and "住建局 的书面答复" in page


def db_today():
    from app.core.workdays import today_shanghai

    return today_shanghai()


def test_the_audit_log_is_newest_first_with_names(client, db):
    clerk = make_user(db, "clerk")
    clerk.display_name = "赵敏"
    petition = make_petition(db)
    db.add(
        AuditLog(
            actor="resident:wechat",
            action="petition_created",
            entity_type="petition",
            entity_id=petition.number,
            after={"status": "accepted"},
        )
    )
    db.commit()
    console_login(client, clerk.username)
    page = client.get(f"/console/petitions/{petition.number}").text
    r = _post(
        client,
        f"/console/petitions/{petition.number}/assign",
        {"departments": ["housing_bureau"], "version": _version(page)},
        page,
    )
    assert r.status_code == 303
    page = client.get(f"/console/petitions/{petition.number}").text
    audit = re.search(r'<ol class="audit" reversed>(.*?)</ol>\s*</section>', page, re.S).group(1)
    assert audit.index("赵敏") < audit.index("信访人（微信公众号）")
    assert "分派部门" in audit
    assert f"staff:{clerk.username}" not in audit and "resident:wechat" not in audit
    assert "版本" not in page.split("</h1>")[0]


def _intake(client, page: str, **fields):
    data = {
        "channel": "phone",
        "person_name": "孙丽",
        "phone": "139 0000 3333",
        "address": "观象山庄3号楼2单元501",
        "description": "打电话反映：交房六年没有房本，身份证370202198001011234。",
        "consent": "1",
        "form_key": re.search(r'name="form_key" value="([^"]+)"', page).group(1),
    } | fields
    return _post(client, "/console/petitions/new", data, page)


def test_a_phone_call_is_registered_with_consent(client, db):
    clerk = make_user(db, "clerk")
    clerk.display_name = "钱进"
    db.commit()
    console_login(client, clerk.username)
    page = client.get("/console/petitions/new").text
    assert "征得本人同意" in page

    # Without the caller's consent nothing is registered and the form keeps its text.
    refused = _intake(client, page, consent="")
    assert refused.status_code == 422
    assert "同意" in refused.text and "交房六年没有房本" in refused.text
    assert db.scalar(select(func.count()).select_from(Petition)) == 0

    bad_phone = _intake(client, page, phone="12345")
    assert bad_phone.status_code == 422 and "手机号" in bad_phone.text
    assert 'value="孙丽"' in bad_phone.text

    done = _intake(client, page)
    assert done.status_code == 303
    again = _intake(client, page)  # a double click: the same petition, not a second one
    assert again.headers["location"] == done.headers["location"]
    petitions = db.scalars(select(Petition)).all()
    assert len(petitions) == 1
    p = petitions[0]
    assert (p.channel, p.consent, p.phone) == ("phone", True, "13900003333")
    assert "370202198001011234" not in p.description  # masked at the api
    rows = db.scalars(select(AuditLog).where(AuditLog.entity_id == p.number)).all()
    assert {r.action for r in rows} == {"petition_created", "petition.register"}
    page = client.get(done.headers["location"]).text
    assert "钱进" in page and "登记来电/来访" in page and "电话" in page


def test_officers_cannot_register_petitions(client, db):
    officer = make_user(db, "officer", department="housing_bureau")
    db.commit()
    console_login(client, officer.username)
    assert client.get("/console/petitions/new").status_code == 403


def test_the_list_count_follows_the_search(client, db):
    clerk = make_user(db, "clerk")
    for name in ("李桂芳", "王建国", "周强"):
        make_petition(db).person_name = name
    db.commit()
    console_login(client, clerk.username)
    everything = client.get("/console/petitions").text
    assert re.search(r'id="count">共 3 件', everything)
    found = client.get("/console/petitions", params={"q": "王建国"}).text
    assert re.search(r'id="count">符合条件的 1 件', found)
    assert found.count('<tr class="') == 1
    # htmx swaps #list only: the count is inside it.
    listing = found.split('<div id="list">', 1)[1]
    assert "符合条件的 1 件" in listing
