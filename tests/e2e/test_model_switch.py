"""Ship without downtime: a running Rasa pulls the live model from the api's model server and
switches when a maintainer promotes another one, without a restart, while a resident is half way
through the petition form; a rollback brings the first model back.

Real parts: api (temp SQLite) + action server + Rasa (in-memory tracker store, `models:` pulling
every 2 s, HTTP API on with a token to read `/status`). The second model is trained here with the
project's config and data plus one example (about 40 s on the 2-core machine).
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2e_stack import (
    BOT_DIR,
    REPO,
    Stack,
    latest_model,
    petition_form_answer,
    running_stack,
    texts,
)

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

PETITION_NUMBER = re.compile(r"XF-\d{8}-\d{4}")
PHONE = "13912345678"
STORY = "交房六年了房本还没办下来，开发商说在等消防验收，一直没有人给个准信"
TRAIN_SECONDS = 300
EXTRA_EXAMPLE = 'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - 房本助手你好呀\n'


@pytest.fixture(scope="module")
def second_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second real model: the project's config, domain and training data plus one greeting."""
    out = tmp_path_factory.mktemp("second-model")
    extra = out / "extra.yml"
    extra.write_text(EXTRA_EXAMPLE, encoding="utf-8")
    nlu = sorted(
        str(p)
        for p in (REPO / "nlu_data").rglob("*.yml")
        if "test" not in p.relative_to(REPO / "nlu_data").parts[:1]
    )
    env = {
        **os.environ,
        "RASA_TELEMETRY_ENABLED": "false",
        "PYTHONPATH": str(BOT_DIR),
        "RASA_CACHE_DIRECTORY": str(Path.home() / ".cache" / "fangben" / "rasa-cache"),
    }
    argv = [str(BOT_DIR / ".venv" / "bin" / "rasa"), "train", "--config", "bot/config.yml"]
    argv += ["--domain", "bot/domain", "--data", *nlu, str(extra), "bot/data"]
    argv += ["--out", str(out), "--fixed-model-name", "second"]
    done = subprocess.run(
        argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=TRAIN_SECONDS
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out / "second.tar.gz"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """The helpdesk with Rasa pulling the model `make train` built from the api."""
    token = uuid.uuid4().hex
    with running_stack(
        tracker="memory", model=latest_model(), model_server=True, pull_seconds=2, rasa_token=token
    ) as running:
        yield running


def _registry(stack: Stack, headers: dict[str, str]) -> dict:
    r = httpx.get(f"{stack.api_url}/api/v1/staff/models", headers=headers, timeout=30)
    r.raise_for_status()
    return dict(r.json())


def _add_candidate(stack: Stack, maintainer: dict[str, str], path: Path, live: dict) -> int:
    """What the trainer does: 训练新模型 (a `training` row), upload the artifact, report the
    result (the live model's figures: the checks pass)."""
    token = stack.api_env.get("SERVICE_TOKEN", "dev-only-service-token-change-me")
    service = {"Authorization": f"Service {token}"}
    r = httpx.post(f"{stack.api_url}/api/v1/staff/models/train", headers=maintainer, timeout=30)
    assert r.status_code == 202, r.text
    model_id = int(r.json()["id"])
    base = f"{stack.api_url}/api/v1/models/{model_id}"
    r = httpx.put(f"{base}/artifact", content=path.read_bytes(), headers=service, timeout=60)
    assert r.status_code == 200, r.text
    fingerprint = r.json()["fingerprint"]
    figures = live.get("metrics") or {"intent_macro_f1": 0.95, "per_intent": {}}
    body = {"status": "candidate", "metrics": figures, "fingerprint": fingerprint}
    r = httpx.post(f"{base}/result", json=body, headers=service, timeout=30)
    assert r.status_code == 200 and r.json()["refusal"] is None, r.text
    return model_id


def _fill_until(stack: Stack, sender: str, reply: str, stop: str) -> str:
    """Answer the petition form's prompts until it asks for `stop` (姓名 / 手机)."""
    for _ in range(6):
        if stop in reply:
            return reply
        answer = petition_form_answer(reply, name="周玉兰", phone=PHONE, story=STORY)
        reply = texts(stack.say(sender, answer))
    raise AssertionError(f"the form never asked for {stop}: {reply}")


def test_promotion_switches_the_running_rasa_and_keeps_the_conversation(
    stack: Stack, second_model: Path
) -> None:
    """Rasa starts on the registered model (first pull); a promotion reaches it within seconds,
    same process, no restart; the resident's half-filled petition form carries on and is filed
    with what was said before the switch; a rollback restores the first fingerprint."""
    first = stack.rasa_status()["model_id"]
    maintainer = {"Authorization": f"Bearer {stack.staff_token('switch_maint', 'maintainer')}"}
    registry = _registry(stack, maintainer)
    (live,) = [m for m in registry["models"] if m["status"] == "live"]
    assert live["fingerprint"] == first  # Rasa serves what the registry calls live
    candidate = _add_candidate(stack, maintainer, second_model, live)
    candidate_fp = next(
        m["fingerprint"] for m in _registry(stack, maintainer)["models"] if m["id"] == candidate
    )
    assert candidate_fp != first

    sender = f"e2e-switch-{uuid.uuid4().hex[:8]}"
    reply = texts(stack.say(sender, "我要找人反映，登记信访"))
    reply = _fill_until(stack, sender, reply, "姓名")  # consent and story given
    rasa_pid = stack.procs["rasa"].pid

    started = time.monotonic()
    r = httpx.post(
        f"{stack.api_url}/api/v1/staff/models/{candidate}/promote", headers=maintainer, timeout=30
    )
    assert r.status_code == 200, r.text
    took = stack.wait_for_model(candidate_fp, seconds=60)
    assert took < 60 and time.monotonic() - started < 60
    assert stack.procs["rasa"].poll() is None and stack.procs["rasa"].pid == rasa_pid

    # The conversation goes on where it was: the name, then the phone, then the number.
    reply = texts(stack.say(sender, "周玉兰"))
    assert "同意" not in reply and "经过" not in reply, reply  # not asked again
    for _ in range(4):
        if PETITION_NUMBER.search(reply):
            break
        reply = texts(
            stack.say(sender, petition_form_answer(reply, name="周玉兰", phone=PHONE, story=STORY))
        )
    number = PETITION_NUMBER.search(reply)
    assert number, reply
    with sqlite3.connect(stack.database) as db:
        description, name = db.execute(
            "SELECT description, person_name FROM petition WHERE number = ?", (number.group(0),)
        ).fetchone()
    assert "消防验收" in description and name == "周玉兰"

    # Rollback: promote the first model again.
    r = httpx.post(
        f"{stack.api_url}/api/v1/staff/models/{live['id']}/promote", headers=maintainer, timeout=30
    )
    assert r.status_code == 200, r.text
    stack.wait_for_model(first, seconds=60)
    assert stack.procs["rasa"].pid == rasa_pid
    assert texts(stack.say(f"e2e-after-{uuid.uuid4().hex[:8]}", "你好"))

    # Between switches Rasa asked with the ETag it holds and got 304s, not the file again.
    log = stack.log("api")
    # (The access log names the route inside /api/v1.) One download per model change: the
    # first pull, the promotion, the rollback.
    assert log.count("GET /models/live 200") == 3, log.count("GET /models/live 200")
    assert log.count("GET /models/live 304") >= 2
