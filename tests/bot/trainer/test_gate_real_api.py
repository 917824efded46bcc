"""The whole teach → retrain → decide loop on real parts (issue 12): the real api (fresh SQLite)
queues trainings on its job storage, the real trainer consumer trains each candidate (small
config, data subset, no conversation suite) and reports back over HTTP, and the api's gate
decides. A maintainer's careless annotations (one intent's examples labelled as another) give a
candidate the registry refuses to promote, with the reason; with those labels deleted and twice
the training data, the next candidate scores better, passes the checks and goes live (slow:
three trainings).

The small models of this test (10 or 20 examples per intent) move single intents' F1 by a few
hundredths either way from one data set to the next, so the api here allows a per-intent drop
of 0.05 (MODEL_MAX_INTENT_F1_DROP, a setting; production keeps 0.02). The careless labels cost
the damaged intent far more than that, and the macro-F1 gate is the production one."""

from __future__ import annotations

import secrets
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from trainer import data

from ..conftest import running_api
from .conftest import REPO, TEST_CONFIG, running_consumer

pytestmark = pytest.mark.slow

# The careless annotator labels ask_materials messages as ask_where_to_apply.
DAMAGED_FROM, DAMAGED_TO = "ask_materials", "ask_where_to_apply"
TRAINING_SECONDS = 300


def _trainer_env(api_env: dict[str, str], url: str, token: str, subset: int) -> dict[str, str]:
    return {
        **api_env,
        "API_URL": url,
        "SERVICE_TOKEN": token,
        "TRAINER_CONFIG": str(TEST_CONFIG),
        "TRAINER_DATA_SUBSET": str(subset),
        "TRAINER_CONVERSATIONS": "0",
        "TRAINER_ATTEMPTS": "1",
    }


def _model(url: str, staff: dict[str, str], model_id: int) -> dict[str, Any]:
    listed = httpx.get(f"{url}/api/v1/staff/models", headers=staff, timeout=10).json()
    return next(m for m in listed["models"] if m["id"] == model_id)


def _train(url: str, staff: dict[str, str], log: Path) -> dict[str, Any]:
    """Train over the staff API and wait until the trainer's result is in."""
    r = httpx.post(f"{url}/api/v1/staff/models/train", headers=staff, timeout=10)
    assert r.status_code == 202, r.text
    model_id = r.json()["id"]
    deadline = time.monotonic() + TRAINING_SECONDS
    while (row := _model(url, staff, model_id))["status"] == "training":
        assert time.monotonic() < deadline, log.read_text(errors="replace")[-4000:]
        time.sleep(1)
    assert row["status"] == "candidate", (row["error"], log.read_text(errors="replace")[-3000:])
    return row


def _variants(intent: str, count: int) -> list[str]:
    """New messages close to the training examples of `intent` (not in the training files)."""
    files = data.yaml_files(REPO / "nlu_data", exclude=REPO / "nlu_data" / "test")
    texts = [text for name, text in data.iter_intent_examples(files) if name == intent]
    return [f"{data.plain_text(text)}，麻烦告诉我" for text in texts[:count]]


def _label(url: str, staff: dict[str, str], item: int, body: dict[str, Any]) -> None:
    """The maintainer's annotation of one inbox item (an intent, or a deletion)."""
    r = httpx.post(
        f"{url}/api/v1/staff/nlu/inbox/{item}/annotation", json=body, headers=staff, timeout=10
    )
    assert r.status_code == 200, r.text


def _annotate(url: str, token: str, staff: dict[str, str], texts: list[str], intent: str) -> list:
    """The bot reports each message (low confidence); the maintainer labels it `intent`."""
    ids = []
    for text in texts:
        headers = {"Authorization": f"Service {token}", "X-Sender-Id": f"web-{uuid.uuid4().hex}"}
        body = {"text": text, "reason": "low_confidence", "confidence": 0.31, "channel": "webchat"}
        r = httpx.post(f"{url}/api/v1/nlu/observations", json=body, headers=headers, timeout=10)
        assert r.status_code == 201 and r.json()["id"], r.text
        ids.append(r.json()["id"])
        _label(url, staff, ids[-1], {"intent": intent})
    return ids


def test_a_damaged_candidate_is_refused_and_a_better_one_goes_live(tmp_path: Path) -> None:
    token = secrets.token_urlsafe(24)
    password = secrets.token_urlsafe(16)
    extra = {
        "SERVICE_TOKEN": token,
        "MODEL_CANDIDATES_DIR": str(tmp_path / "registry"),
        "JOB_QUEUE_NAME": f"gate-{uuid.uuid4().hex[:8]}",
        "MODEL_MAX_INTENT_F1_DROP": "0.05",
    }
    with running_api(extra_env=extra) as api:
        api.cli(
            "-m",
            "app.staff.cli",
            "create-user",
            "--username",
            "maint",
            "--role",
            "maintainer",
            f"--password={password}",
        )
        login = httpx.post(
            f"{api.url}/api/v1/auth/token",
            data={"username": "maint", "password": password},
            timeout=10,
        )
        staff = {"Authorization": f"Bearer {login.json()['access_token']}"}
        log = tmp_path / "trainer.log"

        with running_consumer(_trainer_env(api.env, api.url, token, 10), log):
            first = _train(api.url, staff, log)
            r = httpx.post(
                f"{api.url}/api/v1/staff/models/{first['id']}/promote", headers=staff, timeout=10
            )
            assert r.status_code == 200, r.text

            careless = _annotate(api.url, token, staff, _variants(DAMAGED_FROM, 40), DAMAGED_TO)
            damaged = _train(api.url, staff, log)
        # Refused, with the figures that say why; an attempt to promote it is a Chinese 409.
        assert damaged["metrics"]["data"]["annotated"] == len(careless)
        assert damaged["checks"]["passed"] is False
        assert damaged["macro_f1"] < first["macro_f1"] - 0.005
        assert damaged["checks"]["intent_drops"][DAMAGED_FROM] > 0.05
        assert "不能上线" in damaged["refusal"] or "F1" in damaged["refusal"]
        r = httpx.post(
            f"{api.url}/api/v1/staff/models/{damaged['id']}/promote", headers=staff, timeout=10
        )
        assert r.status_code == 409 and "F1" in r.json()["message"], r.text
        assert _model(api.url, staff, damaged["id"])["status"] == "candidate"
        assert _model(api.url, staff, first["id"])["status"] == "live"

        # The maintainer deletes the careless labels; more training data (20 per intent).
        for item in careless:
            _label(api.url, staff, item, {"delete": True})
        with running_consumer(_trainer_env(api.env, api.url, token, 20), log):
            better = _train(api.url, staff, log)
        assert better["metrics"]["data"]["annotated"] == 0
        assert better["checks"]["passed"] is True, better["checks"]
        assert better["refusal"] is None
        assert better["macro_f1"] >= first["macro_f1"], (better["macro_f1"], first["macro_f1"])
        r = httpx.post(
            f"{api.url}/api/v1/staff/models/{better['id']}/promote", headers=staff, timeout=10
        )
        assert r.status_code == 200, r.text
        assert _model(api.url, staff, better["id"])["status"] == "live"
        assert _model(api.url, staff, first["id"])["status"] == "retired"
        served = httpx.get(
            f"{api.url}/api/v1/models/live",
            headers={"Authorization": f"Service {token}"},
            timeout=30,
        )
        assert served.status_code == 200
        assert served.headers["ETag"] == f'"{better["fingerprint"]}"'
