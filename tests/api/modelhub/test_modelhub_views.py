"""The registry over HTTP: staff endpoints and their permissions (maintainer and admin only),
the trainer's callbacks with the service token (training data from the NLU inbox, a streamed
artifact larger than the body cap, the result), and the model server's ETag and 304."""

from __future__ import annotations

import pytest
from modelhub.hubkit import make_archive, metrics, service_headers

from app.modelhub import artifact, service
from app.modelhub.models import NluModel

ROLES = ("maintainer", "admin", "clerk", "supervisor", "officer")


@pytest.fixture
def live(db, tmp_path):
    """A live model with figures."""
    done = service.register_live(
        db, path=make_archive(tmp_path / "start"), actor="cli:test", metrics=metrics(0.95)
    )
    db.commit()
    return done.model


def _train_and_report(client, headers, tmp_path, m, payload=2048):
    """What the trainer does, over HTTP: train (staff) → artifact → result."""
    r = client.post("/api/v1/staff/models/train", headers=headers("maintainer"))
    assert r.status_code == 202, r.text
    model_id = r.json()["id"]
    assert r.json() == {"id": model_id, "status": "training"}
    path = make_archive(tmp_path / f"cand{model_id}", payload=payload)
    r = client.put(
        f"/api/v1/models/{model_id}/artifact",
        content=path.read_bytes(),
        headers=service_headers() | {"Content-Type": "application/gzip"},
    )
    assert r.status_code == 200, r.text
    fingerprint = r.json()["fingerprint"]
    r = client.post(
        f"/api/v1/models/{model_id}/result",
        json={"status": "candidate", "metrics": m, "fingerprint": fingerprint},
        headers=service_headers(),
    )
    assert r.status_code == 200, r.text
    return model_id, fingerprint, r.json()


@pytest.mark.parametrize("role", ROLES)
def test_who_may_read_train_and_promote(client, headers, live, role, sqlite_queue):
    """Maintainers and admins list, train and promote; clerks, supervisors and officers get a
    Chinese 403 on each."""
    allowed = role in ("maintainer", "admin")
    r = client.get("/api/v1/staff/models", headers=headers(role))
    assert r.status_code == (200 if allowed else 403)
    r = client.post("/api/v1/staff/models/train", headers=headers(role))
    assert r.status_code == (202 if allowed else 403)
    r = client.post(f"/api/v1/staff/models/{live.id}/promote", json={}, headers=headers(role))
    # Allowed roles reach the registry, which says the model is already live.
    assert r.status_code == (409 if allowed else 403)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in r.json()["message"])


def test_registry_flow_over_http(client, headers, live, tmp_path, sqlite_queue, db):
    """A worse candidate is listed with its refusal and refused (409, reasons); a better one is
    promoted; the previous live model is retired and rolled back to."""
    worse_id, _, result = _train_and_report(client, headers, tmp_path, metrics(0.90))
    assert result["status"] == "candidate" and "0.950 降到 0.900" in result["refusal"]
    listed = client.get("/api/v1/staff/models", headers=headers("maintainer")).json()
    assert listed["live"] == live.id
    row = next(m for m in listed["models"] if m["id"] == worse_id)
    assert row["checks"]["passed"] is False and row["macro_f1"] == 0.90
    assert row["checks"]["intent_drops"]["greet"] == pytest.approx(0.05)
    assert set(row) >= {"id", "status", "data_hash", "metrics", "created_at"}
    r = client.post(f"/api/v1/staff/models/{worse_id}/promote", headers=headers("maintainer"))
    assert r.status_code == 409 and r.json()["code"] == "checks_failed"
    assert r.json()["message"].startswith("不能上线：意图宏平均 F1")
    better_id, better_fp, result = _train_and_report(client, headers, tmp_path, metrics(0.97))
    assert result["refusal"] is None
    r = client.post(f"/api/v1/staff/models/{better_id}/promote", headers=headers("maintainer"))
    assert r.status_code == 200 and r.json()["status"] == "live"
    r = client.get("/api/v1/models/live", headers=service_headers())
    assert r.headers["etag"] == f'"{better_fp}"'
    # Rollback: promote the previous live model again.
    r = client.post(f"/api/v1/staff/models/{live.id}/promote", headers=headers("maintainer"))
    assert r.status_code == 200
    r = client.get("/api/v1/models/live", headers=service_headers())
    assert r.headers["etag"] == f'"{live.fingerprint}"'


def test_admin_override_needs_a_reason(client, headers, live, tmp_path, sqlite_queue):
    """Maintainer with a reason: 403; admin without: 409; admin with one: live."""
    worse_id, _, _ = _train_and_report(client, headers, tmp_path, metrics(0.90))
    url = f"/api/v1/staff/models/{worse_id}/promote"
    reason = {"reason": "政策问答急需上线，已人工核对"}
    assert client.post(url, json=reason, headers=headers("maintainer")).status_code == 403
    assert client.post(url, json={}, headers=headers("admin")).status_code == 409
    r = client.post(url, json=reason, headers=headers("admin"))
    assert r.status_code == 200 and r.json()["override_reason"] == reason["reason"]


def test_artifact_upload_larger_than_the_body_cap_is_streamed(
    client, headers, live, tmp_path, sqlite_queue, model_dir
):
    """A 3 MB model (MAX_BODY_BYTES is 64 KB) is accepted and stored under
    MODEL_CANDIDATES_DIR; the claimed fingerprint may be the model id or the file's SHA-256."""
    import hashlib

    r = client.post("/api/v1/staff/models/train", headers=headers("admin"))
    model_id = r.json()["id"]
    path = make_archive(tmp_path / "big", payload=3 * 1024 * 1024)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    r = client.put(
        f"/api/v1/models/{model_id}/artifact",
        content=path.read_bytes(),
        headers=service_headers() | {"X-Model-Fingerprint": sha},
    )
    assert r.status_code == 200, r.text
    assert r.json()["bytes"] == path.stat().st_size and r.json()["sha256"] == sha
    stored = artifact.stored_path(model_id)
    assert stored.parent == model_dir and stored.read_bytes() == path.read_bytes()
    assert not list(model_dir.glob("*.part"))


def test_a_streamed_upload_over_its_cap_is_a_413(
    client, headers, live, sqlite_queue, model_dir, monkeypatch
):
    """Sent chunked (no Content-Length) past MODEL_MAX_UPLOAD_BYTES: the size cap answers 413
    in Chinese while the route is streaming it; the edge does not take it for an unhandled
    error (500), and no partial file is left."""
    from app.modelhub.config import settings as hub_settings

    monkeypatch.setattr(hub_settings, "model_max_upload_bytes", 256 * 1024)
    r = client.post("/api/v1/staff/models/train", headers=headers("admin"))
    model_id = r.json()["id"]

    def chunks():
        for _ in range(100):
            yield b"x" * 8192

    r = client.put(
        f"/api/v1/models/{model_id}/artifact", content=chunks(), headers=service_headers()
    )
    assert r.status_code == 413, r.text
    assert r.json()["code"] == "too_large" and "太" in r.json()["message"]
    assert not list(model_dir.glob("*.part"))


def test_bad_uploads_and_reports(client, headers, live, tmp_path, sqlite_queue, model_dir):
    """Not a model: 422 and nothing kept; a model not in training: 409; a result naming an
    unknown status: 422; failed with an error."""
    model_id = client.post("/api/v1/staff/models/train", headers=headers("admin")).json()["id"]
    url = f"/api/v1/models/{model_id}"
    r = client.put(f"{url}/artifact", content=b"x" * 5000, headers=service_headers())
    assert r.status_code == 422 and "Rasa" in r.json()["message"]
    assert not list(model_dir.glob(f"model-{model_id}*")) and not list(model_dir.glob("*.part"))
    r = client.post(f"{url}/result", json={"status": "great"}, headers=service_headers())
    assert r.status_code == 422
    r = client.post(
        f"{url}/result",
        json={"status": "failed", "error": "训练超过 3 分钟", "seconds": 181},
        headers=service_headers(),
    )
    assert r.status_code == 200 and r.json()["status"] == "failed"
    r = client.put(
        f"{url}/artifact",
        content=make_archive(tmp_path / "z").read_bytes(),
        headers=service_headers(),
    )
    assert r.status_code == 409
    r = client.put(f"/api/v1/models/{live.id}/artifact", content=b"x", headers=service_headers())
    assert r.status_code == 409


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/models/live"),
        ("GET", "/api/v1/models/{id}/training-data"),
        ("PUT", "/api/v1/models/{id}/artifact"),
        ("POST", "/api/v1/models/{id}/result"),
        ("POST", "/api/v1/models/{id}/progress"),
    ],
)
def test_trainer_and_model_server_need_the_service_token(client, headers, live, method, path):
    """Without the service token: 403 (a staff token is not enough); a wrong one: 401."""
    url = path.format(id=live.id)
    body = {"status": "failed", "stage": "train"} if method == "POST" else None
    for extra in ({}, headers("admin")):
        r = client.request(method, url, json=body, headers=extra)
        assert r.status_code == 403 and r.json()["code"] == "service_only"
    r = client.request(method, url, json=body, headers={"Authorization": "Service wrong"})
    assert r.status_code == 401


def test_model_server_etag_and_304(client, live):
    """The live .tar.gz with ETag "<fingerprint>"; If-None-Match with it (quoted or not, as
    Rasa echoes the ETag it got) → 304 without a body; another tag → the file again."""
    r = client.get("/api/v1/models/live", headers=service_headers())
    assert r.status_code == 200 and r.headers["content-type"] == "application/gzip"
    assert r.headers["etag"] == f'"{live.fingerprint}"'
    assert r.content == artifact.stored_path(live.id).read_bytes()
    for tag in (r.headers["etag"], live.fingerprint, f'W/"{live.fingerprint}"'):
        again = client.get(
            "/api/v1/models/live", headers=service_headers() | {"If-None-Match": tag}
        )
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == r.headers["etag"]
    other = client.get(
        "/api/v1/models/live", headers=service_headers() | {"If-None-Match": '"old"'}
    )
    assert other.status_code == 200 and other.content == r.content


def test_model_server_without_a_live_model_is_404(client, db):
    """No live model: 404 (Rasa keeps what it has and asks again)."""
    r = client.get("/api/v1/models/live", headers=service_headers())
    assert r.status_code == 404 and r.json()["message"] == "还没有现网模型。"


def test_training_data_holds_the_annotated_inbox_examples(client, db, live, tmp_path, monkeypatch):
    """The NLU inbox's annotated and out-of-scope examples as Rasa NLU YAML (with the spans),
    new and deleted ones left out; headers name the live model."""
    import yaml

    from app.core.config import settings
    from app.nlu.models import NluInboxItem

    data = tmp_path / "nlu_data"
    (data / "test").mkdir(parents=True)
    (data / "base.yml").write_text('version: "3.1"\nnlu: []\n', encoding="utf-8")
    held_out = 'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - 你好\n'
    (data / "test" / "held.yml").write_text(held_out, encoding="utf-8")
    monkeypatch.setattr(settings, "nlu_data_dir", data)
    text = "观象山庄的证什么时候下来"
    db.add_all(
        [
            NluInboxItem(
                text=text,
                reason="fallback",
                channel="webchat",
                status="annotated",
                intent="ask_certificate_status",
                annotated_entities=[{"entity": "address", "start": 0, "end": 4}],
            ),
            NluInboxItem(
                text="帮我订个外卖",
                reason="out_of_scope",
                channel="wechat",
                status="out_of_scope",
                intent="out_of_scope",
            ),
            NluInboxItem(text="还没看的一句", reason="fallback", channel="webchat", status="new"),
            NluInboxItem(text="", reason="fallback", channel="webchat", status="deleted"),
        ]
    )
    training = NluModel(status="training", started_by="staff:x")
    db.add(training)
    db.commit()
    r = client.get(f"/api/v1/models/{training.id}/training-data", headers=service_headers())
    assert r.status_code == 200, r.text
    assert r.headers["x-live-model-fingerprint"] == live.fingerprint
    assert r.headers["x-examples"] == "2"
    parsed = yaml.safe_load(r.text)
    examples = {e["intent"]: e["examples"] for e in parsed["nlu"]}
    assert "[观象山庄](address)的证什么时候下来" in examples["ask_certificate_status"]
    assert "帮我订个外卖" in examples["out_of_scope"]
    assert "还没看的一句" not in r.text


def test_the_trainer_reports_its_steps_and_the_registry_shows_them(
    client, headers, live, tmp_path, sqlite_queue
):
    """POST …/progress {stage}: the registry lists the step in Chinese and when it was
    reported; an unknown step is a 422; once the result is in, a report is a 409 and the step
    is no longer shown."""
    r = client.post("/api/v1/staff/models/train", headers=headers("maintainer"))
    model_id = r.json()["id"]

    def listed() -> dict:
        rows = client.get("/api/v1/staff/models", headers=headers("maintainer")).json()
        return next(m for m in rows["models"] if m["id"] == model_id)

    assert listed()["stage_label"] == "排队等待训练进程" and listed()["heartbeat_at"] is None
    url = f"/api/v1/models/{model_id}/progress"
    r = client.post(url, json={"stage": "heldout"}, headers=service_headers())
    assert r.status_code == 200
    assert r.json() == {"id": model_id, "stage": "heldout", "stage_label": "留出集评测"}
    row = listed()
    assert row["stage"] == "heldout" and row["stage_label"] == "留出集评测"
    assert row["heartbeat_at"] is not None
    r = client.post(url, json={"stage": "sleeping"}, headers=service_headers())
    assert r.status_code == 422
    r = client.post(
        f"/api/v1/models/{model_id}/result",
        json={"status": "failed", "error": "训练失败（退出码 1）"},
        headers=service_headers(),
    )
    assert r.status_code == 200
    r = client.post(url, json={"stage": "upload"}, headers=service_headers())
    assert r.status_code == 409 and r.json()["code"] == "not_training"
    assert listed()["stage_label"] is None and listed()["status"] == "failed"
