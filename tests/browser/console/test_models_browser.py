"""The model registry in headless Chromium at 1366×768 (issue 12): a maintainer sees the live
model, a candidate refused with its Chinese reasons and a training in progress that refreshes by
itself; a good candidate goes live in one click, 回滚 brings the old one back; an admin forces a
refused candidate with a written reason. Screenshots under tests/artifacts/browser-console/.

Its own api (own SQLite file, registry files in a temp folder): the trainer's part is played
over HTTP with the service token, as bot/trainer does it.
"""

from __future__ import annotations

import io
import json
import secrets
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from browser_support import API_DIR, API_PY, api_env, migrate, running_api

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SEED = """
import sys
from app.core.database import session_scope
from app.staff import service
with session_scope() as db:
    for line in sys.stdin.read().splitlines():
        username, role, password = line.split(",")
        service.create_user(db=db, username=username, password=password, role=role)
"""
INTENTS = ("greet", "ask_materials", "ask_certificate_status", "complain", "request_human")


def _archive(folder: Path) -> Path:
    """A small archive laid out like a Rasa 3.6 model (metadata.json with a model id)."""
    path = folder / f"{uuid.uuid4().hex[:12]}.tar.gz"
    meta = json.dumps({"model_id": uuid.uuid4().hex}).encode()
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo("metadata.json")
        info.size = len(meta)
        archive.addfile(info, io.BytesIO(meta))
    return path


def _metrics(macro: float, drops: dict[str, float] | None = None, failed=()) -> dict:
    per = dict.fromkeys(INTENTS, 0.966) | (drops or {})
    return {
        "intent_macro_f1": macro,
        "per_intent": {k: {"f1": v} for k, v in per.items()},
        "entities": {"f1": 0.991},
        "conversations": {"passed": 14 - len(failed), "total": 14, "failed": list(failed)},
    }


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The api with a maintainer and an admin; the registry: #1 live (0.956), #2 refused
    (macro 0.931, complain −0.08, a conversation case lost), #3 better (0.962), #4 training."""
    base = tmp_path_factory.mktemp("models-console")
    db = base / "console.db"
    env = api_env(db, MODEL_CANDIDATES_DIR=str(base / "registry"))
    migrate(db, env)
    accounts = {
        role: (f"{role}-{uuid.uuid4().hex[:6]}", secrets.token_urlsafe(12))
        for role in ("maintainer", "admin")
    }
    lines = "\n".join(f"{u},{role},{pw}" for role, (u, pw) in accounts.items())
    subprocess.run(
        [API_PY, "-c", SEED],
        cwd=API_DIR,
        env=env,
        input=lines.encode(),
        check=True,
        capture_output=True,
    )
    from app.core.config import settings

    service = {"Authorization": f"Service {env.get('SERVICE_TOKEN', settings.service_token)}"}
    with running_api(env) as url:
        token = httpx.post(
            f"{url}/api/v1/auth/token",
            data={"username": accounts["maintainer"][0], "password": accounts["maintainer"][1]},
            timeout=10,
        ).json()["access_token"]
        staff = {"Authorization": f"Bearer {token}"}

        def trained(m: dict | None) -> int:
            r = httpx.post(f"{url}/api/v1/staff/models/train", headers=staff, timeout=10)
            assert r.status_code == 202, r.text
            mid = r.json()["id"]
            if m is None:
                return int(mid)
            art = _archive(base)
            r = httpx.put(
                f"{url}/api/v1/models/{mid}/artifact",
                content=art.read_bytes(),
                headers=service,
                timeout=30,
            )
            assert r.status_code == 200, r.text
            body = {"status": "candidate", "metrics": m, "fingerprint": r.json()["fingerprint"]}
            r = httpx.post(
                f"{url}/api/v1/models/{mid}/result", json=body, headers=service, timeout=10
            )
            assert r.status_code == 200, r.text
            return int(mid)

        first = trained(_metrics(0.956))
        r = httpx.post(f"{url}/api/v1/staff/models/{first}/promote", headers=staff, timeout=10)
        assert r.status_code == 200, r.text
        worse = trained(_metrics(0.931, {"complain": 0.886}, failed=("handoff-office-hours",)))
        better = trained(_metrics(0.962))
        training = trained(None)
        yield {
            "url": url,
            "accounts": accounts,
            "ids": {"first": first, "worse": worse, "better": better, "training": training},
            "service": service,
        }


def _login(browser, url: str, account: tuple[str, str]):
    ctx = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN", base_url=url)
    page = ctx.new_page()
    page.set_default_timeout(15_000)
    page.goto("/console/login")
    page.fill("input[name=username]", account[0])
    page.fill("input[name=password]", account[1])
    page.click("button[type=submit]")
    page.wait_for_selector("header nav")
    return ctx, page


def test_maintainer_sees_refusal_training_then_promotes_and_rolls_back(browser, registry, shot):
    """The registry page with the refusal and the training's elapsed time; the training's end
    appears without a reload (htmx); 上线 the good candidate, then 回滚."""
    ids = registry["ids"]
    ctx, page = _login(browser, registry["url"], registry["accounts"]["maintainer"])
    try:
        page.click("header nav a[href='/console/models']")
        page.wait_for_selector("#registry")
        worse = page.locator(f"#model-{ids['worse']}")
        assert "不能上线" in worse.inner_text()
        assert "意图宏平均 F1 从 0.956 降到 0.931" in worse.inner_text()
        assert "handoff-office-hours" in worse.inner_text()
        assert "训练中" in page.locator(f"#model-{ids['training']}").inner_text()
        assert page.locator("button:has-text('训练新模型')").is_disabled()
        shot(page, "20-models-registry")
        shot(page, "20-models-registry-full", full_page=True)

        # The trainer reports its step: the page shows it by itself (htmx refresh).
        assert "排队等待训练进程" in page.locator(f"#model-{ids['training']}").inner_text()
        r = httpx.post(
            f"{registry['url']}/api/v1/models/{ids['training']}/progress",
            json={"stage": "train"},
            headers=registry["service"],
            timeout=10,
        )
        assert r.status_code == 200, r.text
        page.wait_for_selector(f"#model-{ids['training']} >> text=训练模型", timeout=15_000)
        shot(page, "20-models-training-step")

        # The trainer reports the training as failed: the page shows it by itself.
        r = httpx.post(
            f"{registry['url']}/api/v1/models/{ids['training']}/result",
            json={"status": "failed", "error": "训练超过 3 分钟，已停止"},
            headers=registry["service"],
            timeout=10,
        )
        assert r.status_code == 200, r.text
        page.wait_for_selector(f"#model-{ids['training']} >> text=训练超过 3 分钟", timeout=15_000)
        assert page.locator("button:has-text('训练新模型')").is_enabled()

        page.locator(f"#model-{ids['better']} button:has-text('上线')").click()
        page.wait_for_selector(".flash.ok")
        assert "无需重启" in page.locator(".flash.ok").inner_text()
        assert "现网" in page.locator(f"#model-{ids['better']}").inner_text()
        shot(page, "21-models-promoted")
        page.locator(f"button:has-text('回滚到上一个模型 #{ids['first']}')").click()
        page.wait_for_selector(f".flash.ok >> text=已回滚到模型 #{ids['first']}")
        assert "现网" in page.locator(f"#model-{ids['first']}").inner_text()
    finally:
        ctx.close()


def test_admin_forces_a_refused_candidate_with_a_reason(browser, registry, shot):
    """Only the admin sees 强制上线 on the refused candidate; the reason is required and shown."""
    ids = registry["ids"]
    ctx, page = _login(browser, registry["url"], registry["accounts"]["admin"])
    try:
        page.goto("/console/models")
        row = page.locator(f"#model-{ids['worse']}")
        reason = "新政策问答今天必须上线；complain 下降已人工复核"
        row.locator("textarea[name=reason]").fill(reason)
        shot(page, "22-models-override-form")
        row.locator("button:has-text('强制上线')").click()
        page.wait_for_selector(".flash.ok")
        assert reason in page.locator("#registry").inner_text()
        shot(page, "23-models-overridden")
    finally:
        ctx.close()
