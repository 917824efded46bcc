"""The maintainers' console screens through their forms: landing on the inbox, filters, the
annotation form (spans kept and added, out of scope, delete only when confirmed), the export
button, 「标记给维护员」 on a petition page, and who may see what."""

from __future__ import annotations

import re
from urllib.parse import unquote

from staff.staffkit import make_petition, make_user
from staff.test_staff_auth import console_login, page_csrf

from app.nlu.models import NluInboxItem
from app.petition.models import PetitionMessage


def _maintainer(client, db) -> None:
    user = make_user(db, "maintainer")
    db.commit()
    assert console_login(client, user.username).status_code == 303


def _flash(response) -> str:
    from app.console.common import FLASH_COOKIE, flash_signer

    raw = response.cookies.get(FLASH_COOKIE)
    return str(flash_signer().loads(unquote(raw).strip('"'))) if raw else ""


def test_maintainer_lands_on_the_inbox_and_filters(client, db, observe):
    """/console sends a maintainer to the inbox; the filters narrow it; petitions are refused."""
    observe("物业费多少钱", reason="out_of_scope", predicted_intent="out_of_scope", confidence=0.9)
    observe("嗯嗯啊啊", reason="fallback", predicted_intent="complain", confidence=0.2)
    _maintainer(client, db)
    landing = client.get("/console", follow_redirects=False)
    assert landing.headers["location"] == "/console/nlu"
    page = client.get("/console/nlu")
    assert "物业费多少钱" in page.text and "嗯嗯啊啊" in page.text
    assert 'href="/console/petitions"' not in page.text
    narrowed = client.get("/console/nlu", params={"reason": "fallback", "max_confidence": "0.5"})
    assert "嗯嗯啊啊" in narrowed.text and "物业费多少钱" not in narrowed.text
    by_intent = client.get("/console/nlu", params={"intent": "out_of_scope"})
    assert "物业费多少钱" in by_intent.text and "嗯嗯啊啊" not in by_intent.text
    refused = client.get("/console/petitions")
    assert refused.status_code == 403 and "没有这项权限" in refused.text
    assert client.get("/console/projects").status_code == 403
    assert client.get("/console/dashboard").status_code == 403


def test_other_roles_see_no_inbox(client, db, observe):
    """A clerk gets the console's 403 page on every inbox screen."""
    observe("嗯嗯啊啊")
    clerk = make_user(db, "clerk")
    db.commit()
    console_login(client, clerk.username)
    for url in ("/console/nlu", "/console/nlu/conversations"):
        page = client.get(url)
        assert page.status_code == 403 and "没有这项权限" in page.text, url
    assert "/console/nlu" not in client.get("/console/petitions").text


def test_annotation_form(client, db, observe):
    """Intent and a new span saved, the span kept on the next save, out of scope, and delete
    only with 确认删除."""
    item_id = observe("俺家住幸福里8号楼 房本咋还没下来")["id"]
    _maintainer(client, db)
    page = client.get("/console/nlu")
    csrf = page_csrf(page.text)
    url = f"/console/nlu/{item_id}/annotate"
    r = client.post(
        url,
        data={
            "csrf_token": csrf,
            "action": "annotate",
            "intent": "ask_certificate_status",
            "entity": "address",
            "start": "3",
            "end": "9",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303 and _flash(r) == "标注已保存。"
    item = db.get(NluInboxItem, item_id)
    db.refresh(item)
    assert item.status == "annotated" and item.annotated_entities[0]["value"] == "幸福里8号楼"
    page = client.get("/console/nlu", params={"status": "annotated"})
    assert re.search(r'<mark data-entity="address"[^>]*>幸福里8号楼</mark>', page.text)
    assert 'name="keep" value="address:3-9" checked' in page.text
    r = client.post(
        url,
        data={
            "csrf_token": csrf,
            "action": "annotate",
            "intent": "inform",
            "keep": ["address:3-9"],
        },
        follow_redirects=False,
    )
    db.refresh(item)
    assert item.intent == "inform" and [s["value"] for s in item.annotated_entities] == [
        "幸福里8号楼"
    ]
    bad = client.post(
        url,
        data={"csrf_token": csrf, "intent": "inform", "entity": "address", "start": "3"},
        follow_redirects=False,
    )
    assert "选中实体" in _flash(bad)
    r = client.post(url, data={"csrf_token": csrf, "action": "delete"}, follow_redirects=False)
    assert "确认删除" in _flash(r)
    db.refresh(item)
    assert item.status == "annotated"
    r = client.post(
        url, data={"csrf_token": csrf, "action": "out_of_scope"}, follow_redirects=False
    )
    db.refresh(item)
    assert item.status == "out_of_scope"
    r = client.post(
        url,
        data={"csrf_token": csrf, "action": "delete", "confirm": "1"},
        follow_redirects=False,
    )
    db.refresh(item)
    assert item.status == "deleted" and item.text == ""
    assert client.post(url, data={"action": "delete"}).status_code == 403  # no CSRF token


def test_export_button(client, db, observe, nlu_dirs):
    """The button writes the file and says what it wrote and what it skipped."""
    keep = observe("孙子上学咋报名", channel="wechat")["id"]
    held = observe("办房本要带哪些东西", channel="wechat")["id"]
    _maintainer(client, db)
    csrf = page_csrf(client.get("/console/nlu").text)
    for item_id, intent in ((keep, "policy_faq/school_enrolment"), (held, "ask_materials")):
        client.post(
            f"/console/nlu/{item_id}/annotate",
            data={"csrf_token": csrf, "action": "annotate", "intent": intent},
        )
    r = client.post("/console/nlu/export", data={"csrf_token": csrf}, follow_redirects=False)
    message = _flash(r)
    assert message.startswith("已导出 1 条") and "wechat-" in message
    assert "留出测试集已有 1 条" in message
    assert len(list(nlu_dirs[1].glob("wechat-*.yml"))) == 1
    again = client.post("/console/nlu/export", data={"csrf_token": csrf}, follow_redirects=False)
    assert "已导出 0 条" in _flash(again)


def test_flag_from_the_petition_page(client, db):
    """A clerk's 「标记给维护员」 on a resident's turn: a staff_flag item, the name masked; the
    same turn again is not a second item; a bot turn has no button."""
    petition = make_petition(db)
    for position, (sender, text) in enumerate(
        [("resident", "俺是张三 房本咋整"), ("bot", "请告诉我小区名称。")]
    ):
        db.add(
            PetitionMessage(
                petition_id=petition.id,
                position=position,
                at=petition.created_at,
                sender=sender,
                text=text,
            )
        )
    clerk = make_user(db, "clerk")
    db.commit()
    console_login(client, clerk.username)
    page = client.get(f"/console/petitions/{petition.number}")
    assert page.text.count('action="/console/nlu/flag"') == 1
    data = {"csrf_token": page_csrf(page.text), "petition": petition.number, "position": "0"}
    r = client.post("/console/nlu/flag", data=data, follow_redirects=False)
    assert r.status_code == 303 and _flash(r) == "已标记给模型维护员。"
    assert r.headers["location"].startswith(f"/console/petitions/{petition.number}")
    again = client.post("/console/nlu/flag", data=data, follow_redirects=False)
    assert _flash(again) == "这句话已经标记过了。"
    (item,) = db.query(NluInboxItem).all()
    assert (item.reason, item.text) == ("staff_flag", "俺是张* 房本咋整")
    assert "张三" not in repr(item.context)
    bot_turn = client.post(
        "/console/nlu/flag", data={**data, "position": "1"}, follow_redirects=False
    )
    assert "只能标记居民说的话" in _flash(bot_turn)
