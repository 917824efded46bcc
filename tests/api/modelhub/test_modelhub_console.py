"""The console's 模型 page through its forms: the registry with checks and refusals, 训练新模型
(the table refreshes itself while a model trains), 上线, 回滚, an admin's 强制上线 with a reason;
other roles see neither the page nor its link."""

from __future__ import annotations

import re

import pytest
from modelhub.hubkit import make_archive, metrics, service_headers
from staff.test_staff_auth import console_login, page_csrf

from app.modelhub import service
from app.modelhub.models import NluModel


@pytest.fixture
def registry(db, tmp_path, users):
    """A live model, a refused candidate (macro-F1 0.90 against 0.95) and a good one (0.97)."""
    live = service.register_live(
        db, path=make_archive(tmp_path / "l"), actor="cli:test", metrics=metrics(0.95)
    ).model
    made = {}
    for name, m in (("worse", metrics(0.90, failed=("handoff-1",))), ("better", metrics(0.97))):
        row = NluModel(
            status="training",
            started_by=f"staff:{users['maintainer'].username}",
            data_hash=f"{name:0>16}",
        )
        db.add(row)
        db.flush()
        service.accept_artifact(
            db, model_id=row.id, upload=make_archive(tmp_path / name), sha256="", claimed=None
        )
        service.record_result(
            db, model_id=row.id, status="candidate", metrics=m, fingerprint=None, error=None
        )
        made[name] = row
    db.commit()
    return {"live": live, **made}


def _row_html(page: str, model_id: int) -> str:
    return page.split(f'id="model-{model_id}"', 1)[1].split("</tr>", 1)[0]


def test_maintainer_sees_the_registry_with_refusals(client, users, registry):
    """Status, data hash, who, macro-F1, entity F1, suite, per-intent drops and the Chinese
    refusal; 上线 only where the checks pass; no override form for a maintainer."""
    console_login(client, users["maintainer"].username)
    page = client.get("/console/models")
    assert page.status_code == 200
    html = page.text
    assert '<a href="/console/models">模型</a>' in html
    worse = _row_html(html, registry["worse"].id)
    assert "不能上线" in worse and "意图宏平均 F1 从 0.950 降到 0.900" in worse
    assert "handoff-1" in worse and "greet −0.050" in worse and "0.900" in worse
    assert "上线</button>" not in worse and "强制上线</button>" not in worse
    assert "只有管理员可写明理由后强制上线" in worse
    better = _row_html(html, registry["better"].id)
    assert "检查通过" in better and ">上线</button>" in better
    assert registry["better"].data_hash in better and users["maintainer"].username in better
    assert "训练新模型" in html and "hx-trigger" not in html


def test_train_then_the_table_refreshes_while_training(client, users, registry, sqlite_queue):
    """训练新模型 queues a training; the page then shows 训练中 with the elapsed time and
    refreshes itself (htmx) until the training ends; a second click is refused in Chinese."""
    console_login(client, users["maintainer"].username)
    page = client.get("/console/models")
    r = client.post(
        "/console/models/train", data={"csrf_token": page_csrf(page.text)}, follow_redirects=False
    )
    assert r.status_code == 303
    html = client.get("/console/models").text
    assert "已开始训练" in html and "训练中" in html and "已用" in html
    assert re.search(r'hx-trigger="every \d+s"', html) and 'hx-select="#registry"' in html
    assert "disabled" in html.split("训练新模型")[0].rsplit("<button", 1)[1]
    r = client.post("/console/models/train", data={"csrf_token": page_csrf(html)})
    assert r.status_code == 409 and "正在训练" in r.text
    # The step the trainer reports shows under 训练中.
    assert '<small class="stage">排队等待训练进程</small>' in html
    model_id = max(int(i) for i in re.findall(r'id="model-(\d+)"', html))
    r = client.post(
        f"/api/v1/models/{model_id}/progress",
        json={"stage": "conversations"},
        headers=service_headers(),
    )
    assert r.status_code == 200
    assert '<small class="stage">对话测试</small>' in client.get("/console/models").text


def test_promote_refused_then_rollback(client, users, registry):
    """上线 of the refused candidate: the page says why (409); 上线 of the good one: live, with
    the no-restart note; 回滚到上一个模型 brings the old live model back."""
    console_login(client, users["maintainer"].username)
    page = client.get("/console/models")
    csrf = page_csrf(page.text)
    r = client.post(f"/console/models/{registry['worse'].id}/promote", data={"csrf_token": csrf})
    assert r.status_code == 409 and "不能上线：意图宏平均 F1" in r.text
    r = client.post(
        f"/console/models/{registry['better'].id}/promote",
        data={"csrf_token": csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303
    html = client.get("/console/models").text
    assert f"已上线模型 #{registry['better'].id}" in html and "无需重启" in html
    assert f"回滚到上一个模型 #{registry['live'].id}" in html
    r = client.post(
        f"/console/models/{registry['live'].id}/promote",
        data={"csrf_token": page_csrf(html)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert f"已回滚到模型 #{registry['live'].id}" in client.get("/console/models").text


def test_a_page_left_open_does_not_replace_a_colleagues_promotion(client, users, registry):
    """The page's forms carry the live model it showed; a colleague promotes in between: 上线
    from the stale page is refused (409, refresh), the colleague's model stays live."""
    console_login(client, users["maintainer"].username)
    stale = client.get("/console/models").text
    shown = registry["live"].id
    assert f'name="expected_live" value="{shown}"' in _row_html(stale, registry["better"].id)
    r = client.post(  # the colleague, from a page showing the same live model
        f"/console/models/{registry['better'].id}/promote",
        data={"csrf_token": page_csrf(stale), "expected_live": str(shown)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    r = client.post(
        f"/console/models/{shown}/promote",
        data={"csrf_token": page_csrf(stale), "expected_live": str(shown)},
    )
    assert r.status_code == 409 and "另一位同事刚刚上线了别的模型，请刷新后重试" in r.text
    html = client.get("/console/models").text
    assert f'name="expected_live" value="{registry["better"].id}"' in html


def test_admin_overrides_with_a_reason(client, users, registry, db):
    """The admin sees the 强制上线 form on the refused candidate; an empty reason is refused,
    a written one promotes it and is shown."""
    console_login(client, users["admin"].username)
    page = client.get("/console/models").text
    worse = _row_html(page, registry["worse"].id)
    assert "强制上线</button>" in worse and 'name="reason"' in worse
    url = f"/console/models/{registry['worse'].id}/promote"
    r = client.post(url, data={"csrf_token": page_csrf(page), "reason": ""})
    assert r.status_code == 409
    reason = "意图下降已人工复核，今天必须上线新政策问答"
    r = client.post(
        url, data={"csrf_token": page_csrf(page), "reason": reason}, follow_redirects=False
    )
    assert r.status_code == 303
    html = client.get("/console/models").text
    assert reason in html
    db.refresh(registry["worse"])
    assert registry["worse"].status == "live"


@pytest.mark.parametrize("role", ["clerk", "supervisor", "officer"])
def test_other_roles_see_no_page_and_no_link(client, users, registry, role):
    """403 page in Chinese; the nav has no 模型 link; their forms are refused too."""
    console_login(client, users[role].username)
    r = client.get("/console/models")
    assert r.status_code == 403 and "没有这项权限" in r.text
    home = client.get("/console/petitions" if role != "officer" else "/console/my")
    assert 'href="/console/models"' not in home.text
    csrf = page_csrf(home.text)
    r = client.post("/console/models/train", data={"csrf_token": csrf})
    assert r.status_code == 403


def test_forms_need_the_csrf_token(client, users, registry):
    """A promotion without the page's token is refused."""
    console_login(client, users["admin"].username)
    r = client.post(f"/console/models/{registry['better'].id}/promote", data={})
    assert r.status_code == 403
