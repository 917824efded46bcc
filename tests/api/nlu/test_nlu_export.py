"""The export: Rasa 3 NLU YAML per channel and day, de-duplicated against the training files and
the held-out set (never an example of nlu_data/test/), items marked exported, and a file that
`rasa data validate` accepts with the project's own data and domain."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from app.audit.models import AuditLog
from app.core.config import settings
from app.core.workdays import today_shanghai
from app.nlu import export as nlu_export
from app.nlu.models import NluInboxItem

REPO = Path(__file__).resolve().parents[3]
EXPORT = "/api/v1/staff/nlu/export"


def _label(client, headers, item_id, **body):
    r = client.post(f"/api/v1/staff/nlu/inbox/{item_id}/annotation", json=body, headers=headers)
    assert r.status_code == 200, r.text


def _examples(path: Path) -> dict[str, list[str]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert data["version"] == "3.1"
    return {
        e["intent"]: [line[2:] for line in e["examples"].splitlines() if line.startswith("- ")]
        for e in data["nlu"]
    }


def test_normalise():
    """NFKC, case, spaces and punctuation do not make an example new; markup is stripped."""
    assert nlu_export.normalise(" 你好！ ") == nlu_export.normalise("你好")
    assert nlu_export.normalise("ＡＢＣ，房本？") == "abc房本"
    assert nlu_export.normalise("[观象山庄](address)的房本") == "观象山庄的房本"
    assert nlu_export.normalise("房本") != nlu_export.normalise("房子")


def test_export_deduplicates_and_marks(client, db, observe, maintainer, nlu_dirs):
    """Training duplicates and held-out examples are skipped (and say why), a batch duplicate
    too; the rest go to <channel>-<date>.yml with their spans; a second export the same day adds
    to the file; exported items are marked and cannot be re-labelled."""
    data_dir, export_dir = nlu_dirs
    ids = {
        "training": observe("你好！", channel="webchat")["id"],
        "markup": observe("观象山庄3号楼的房本啥时候能办？", channel="webchat")["id"],
        "held_out": observe("办房本 要带哪些东西", channel="webchat")["id"],
        "new": observe("俺的电话是13912345678", channel="webchat")["id"],
        "twin_a": observe("孙子上学的事咋弄", channel="wechat")["id"],
        "twin_b": observe("孙子上学的事，咋弄？", channel="wechat", sender="web-b")["id"],
        "oos": observe("明天下雨不", channel="wechat")["id"],
        "untouched": observe("呜呜呜", channel="webchat")["id"],
    }
    _label(client, maintainer, ids["training"], intent="greet")
    _label(client, maintainer, ids["markup"], intent="ask_certificate_status")
    # Labelled differently from the held-out set: still never exported.
    _label(client, maintainer, ids["held_out"], intent="ask_where_to_apply")
    _label(client, maintainer, ids["new"], intent="inform")
    _label(client, maintainer, ids["twin_a"], intent="policy_faq/school_enrolment")
    _label(client, maintainer, ids["twin_b"], intent="policy_faq/school_enrolment")
    _label(client, maintainer, ids["oos"], out_of_scope=True)

    r = client.post(EXPORT, headers=maintainer)
    assert r.status_code == 200, r.text
    result = r.json()
    day = today_shanghai().isoformat()
    assert sorted(f["path"].rsplit("/", 1)[-1] for f in result["files"]) == [
        f"webchat-{day}.yml",
        f"wechat-{day}.yml",
    ]
    assert result["exported"] == 3
    assert sorted((s["id"], s["reason"]) for s in result["skipped"]) == sorted(
        [
            (ids["training"], "training"),
            (ids["markup"], "training"),
            (ids["held_out"], "held_out"),
            (ids["twin_b"], "duplicate"),
        ]
    )
    webchat = _examples(export_dir / f"webchat-{day}.yml")
    assert webchat == {"inform": ["俺的电话是139****5678"]}
    wechat = _examples(export_dir / f"wechat-{day}.yml")
    assert wechat == {
        "out_of_scope": ["明天下雨不"],
        "policy_faq/school_enrolment": ["孙子上学的事咋弄"],
    }
    statuses = {k: db.get(NluInboxItem, v) for k, v in ids.items()}
    for item in statuses.values():
        db.refresh(item)
    assert statuses["new"].status == "exported" and statuses["new"].exported_to
    assert statuses["held_out"].status == "annotated"
    assert statuses["held_out"].export_skip == "held_out"
    assert statuses["untouched"].status == "new"
    refused = client.post(
        f"/api/v1/staff/nlu/inbox/{ids['new']}/annotation",
        json={"intent": "greet"},
        headers=maintainer,
    )
    assert refused.status_code == 409 and "已导出" in refused.json()["message"]

    later = observe("那俺闺女呢", channel="webchat")["id"]
    _label(client, maintainer, later, intent="policy_faq/school_enrolment")
    again = client.post(EXPORT, headers=maintainer).json()
    assert again["exported"] == 1
    webchat = _examples(export_dir / f"webchat-{day}.yml")
    assert webchat == {
        "inform": ["俺的电话是139****5678"],
        "policy_faq/school_enrolment": ["那俺闺女呢"],
    }
    # What was exported counts as training data now: labelled again elsewhere, it is skipped.
    twin = observe("俺的电话是13912345678", channel="wechat", sender="web-c")["id"]
    _label(client, maintainer, twin, intent="inform")
    third = client.post(EXPORT, headers=maintainer).json()
    assert third["files"] == [] and third["skipped"][-1] == {"id": twin, "reason": "training"}
    # In the order they were written (a query without ORDER BY may return them in any order).
    exports = select(AuditLog).where(AuditLog.action == "nlu.export").order_by(AuditLog.id)
    assert [a.after["exported"] for a in db.scalars(exports)] == [3, 1, 0]
    assert not list(export_dir.glob(".export-*"))


def test_near_copies_and_shared_values_of_the_held_out_set_stay_out(
    client, db, observe, maintainer, nlu_dirs
):
    """A held-out sentence with a word changed, or an example using a held-out entity value,
    is skipped as `held_out` (the bot's data checks would refuse it after a commit)."""
    near = observe("办房本需要带哪些东西", channel="webchat")["id"]
    shared = observe("幸福里小区5号楼咋还没动静", channel="webchat")["id"]
    fine = observe("幸福里小区6号楼咋还没动静", channel="webchat")["id"]
    _label(client, maintainer, near, intent="ask_materials")
    span = [{"start": 0, "end": 8, "entity": "address"}]
    _label(client, maintainer, shared, intent="ask_certificate_status", entities=span)
    _label(client, maintainer, fine, intent="ask_certificate_status", entities=span)
    result = client.post(EXPORT, headers=maintainer).json()
    assert sorted(s["id"] for s in result["skipped"] if s["reason"] == "held_out") == [near, shared]
    (path,) = nlu_dirs[1].glob("webchat-*.yml")
    assert _examples(path) == {"ask_certificate_status": ["[幸福里小区6号楼](address)咋还没动静"]}


def test_training_data_never_holds_a_held_out_example(client, db, observe, maintainer, nlu_dirs):
    """What a training job gets from the inbox: annotated examples minus the held-out set."""
    keep = observe("房本到底卡在哪了嘛", channel="webchat")["id"]
    held = observe("办房本要带哪些东西", channel="webchat")["id"]
    _label(client, maintainer, keep, intent="ask_certificate_status")
    _label(client, maintainer, held, intent="ask_materials")
    text, count = nlu_export.training_yaml(db)
    assert count == 1
    assert yaml.safe_load(text)["nlu"] == [
        {"intent": "ask_certificate_status", "examples": "- 房本到底卡在哪了嘛\n"}
    ]


def test_no_held_out_set_no_export(client, observe, maintainer, nlu_dirs, monkeypatch, tmp_path):
    """Without nlu_data/test/ the export refuses (503, Chinese) rather than risk a leak."""
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setattr(settings, "nlu_data_dir", empty)
    item = observe("房本啥时候能办", channel="webchat")["id"]
    _label(client, maintainer, item, intent="ask_certificate_status")
    r = client.post(EXPORT, headers=maintainer)
    assert r.status_code == 503 and "留出测试集" in r.json()["message"]


UNEXPECTED = re.compile(r"UserWarning|ERROR")
KNOWN = re.compile(
    r"is not used in any story or rule|"
    r"duplicated intents have been found across multiple domain files: policy_faq"
)


@pytest.mark.slow
def test_export_passes_rasa_data_validate(
    client, db, backend, observe, maintainer, tmp_path, monkeypatch
):
    """Against the repository's real training and held-out data, the exported file and the
    project's NLU data and domain pass `rasa data validate` (run as scripts/test.d/20-bot.sh
    does); the file is written to a temp folder, never into nlu_data/."""
    if backend != "sqlite":
        pytest.skip("the file does not depend on the database; validated once")
    rasa = REPO / "bot" / ".venv" / "bin" / "rasa"
    if not rasa.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("bot/.venv is required under CI")
        pytest.skip("bot/.venv not installed")
    export_dir = tmp_path / "inbox"
    repo_files = sorted((REPO / "nlu_data").rglob("*"))
    monkeypatch.setattr(settings, "nlu_data_dir", REPO / "nlu_data")
    monkeypatch.setattr(settings, "nlu_export_dir", export_dir)
    labelled = [
        ("俺孙子九月份上学 房本还没下来能报上名不", {"intent": "policy_faq/school_enrolment"}),
        ("开发商跑路八年了谁给俺办证嘞", {"intent": "policy_faq/developer_uncooperative"}),
        ("帮俺看看哈 幸福里小区18号楼3单元602 嘞情况", None),
        ("俺的号码13912345678你们记一下", None),
        ("今儿个菜市场白菜几毛一斤", {"out_of_scope": True}),
    ]
    for n, (text, body) in enumerate(labelled):
        item = observe(text, channel="webchat", sender=f"web-rasa-{n}")["id"]
        if body is None and "号楼" in text:
            start = text.index("幸福里")
            body = {
                "intent": "inform",
                "entities": [{"start": start, "end": text.index(" 嘞"), "entity": "address"}],
            }
        elif body is None:
            body = {"intent": "inform"}
        _label(client, maintainer, item, **body)
    result = client.post(EXPORT, headers=maintainer).json()
    assert result["exported"] >= 3, result
    (written,) = list(export_dir.glob("webchat-*.yml"))
    content = written.read_text(encoding="utf-8")
    assert "俺的号码139****5678你们记一下" in content and "](address)" in content
    training = sorted(
        str(p)
        for p in (REPO / "nlu_data").rglob("*.yml")
        if "test" not in p.relative_to(REPO / "nlu_data").parts[:1]
    )
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        [
            str(rasa),
            "data",
            "validate",
            "--config",
            str(REPO / "bot" / "config.yml"),
            "--domain",
            str(REPO / "bot" / "domain"),
            "--data",
            *training,
            str(written),
            str(REPO / "bot" / "data"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    unexpected = [
        line for line in out.splitlines() if UNEXPECTED.search(line) and not KNOWN.search(line)
    ]
    assert unexpected == [], "\n".join(unexpected)
    assert sorted((REPO / "nlu_data").rglob("*")) == repo_files
