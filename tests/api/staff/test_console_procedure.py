"""Issue 14 in the console: an objection during the notice is recorded from the petition page,
the 办结 button goes away, and a refused objection keeps what was typed (both backends)."""

from __future__ import annotations

import re

from staff.staffkit import make_petition, make_user
from staff.test_staff_auth import console_login, page_csrf


def test_the_console_records_an_objection_and_hides_the_close(client, db):
    from app.core.workdays import today_shanghai

    clerk = make_user(db, "clerk")
    petition = make_petition(db, status="verifying", answered=True)
    db.commit()
    console_login(client, clerk.username)
    url = f"/console/petitions/{petition.number}"
    page = client.get(url).text
    version = re.search(r'name="version" value="(\d+)"', page).group(1)
    client.post(
        f"{url}/transition",
        data={"action": "start_notice", "version": version, "csrf_token": page_csrf(page)},
    )
    page = client.get(url).text
    assert f'action="/console/petitions/{petition.number}/objections"' in page
    version = re.search(r'name="version" value="(\d+)"', page).group(1)
    r = client.post(
        f"{url}/objections",
        data={
            "raised_by": "同楼住户",
            "content": "对公示的面积有异议",
            "received_on": today_shanghai().isoformat(),
            "version": version,
            "csrf_token": page_csrf(page),
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = client.get(url).text
    assert "同楼住户：对公示的面积有异议" in page and "待处理" in page
    assert f'action="/console/petitions/{petition.number}/close"' not in page
    assert "登记公示异议" in page  # in the audit log
    # A refused objection (stale version) keeps the typed content.
    r = client.post(
        f"{url}/objections",
        data={
            "raised_by": "二楼住户",
            "content": "第二条异议的内容",
            "version": "1",
            "csrf_token": page_csrf(page),
        },
    )
    assert r.status_code == 409 and "第二条异议的内容" in r.text


def test_a_property_dispute_offers_the_transfer_to_the_court(client, db):
    from staff.staffkit import make_project

    clerk = make_user(db, "clerk")
    project = make_project(db, blockers=(("property_dispute", "court"),))
    petition = make_petition(db, status="assigned", project=project)
    db.commit()
    console_login(client, clerk.username)
    page = client.get(f"/console/petitions/{petition.number}").text
    assert 'value="产权纠纷，转法院依法处理"' in page
    # The court is also the suggested department.
    assert "产权纠纷 → 法院" in page or "→ 法院" in page
