"""Twins of the action tests against the REAL api (uvicorn, temp SQLite, demo ledger loaded)."""

from __future__ import annotations

import csv
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.clients import api
from actions.faq import ActionAnswerFaq
from actions.guidance import ActionAnswerGuidance
from actions.petition import ActionCheckPetition, ActionSubmitPetition
from actions.sensitive import seal
from actions.status import ActionLookupStatus

from .conftest import REPO, make_tracker, slot_events, texts

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]
API_DIR = REPO / "api"
API_PY = API_DIR / ".venv" / "bin" / "python"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def demo_units(project: str) -> list[dict[str, str]]:
    """Rows of the demo ledger's units sheet for one project."""
    path = API_DIR / "app" / "ledger" / "demo_data" / "units.csv"
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return [row for row in csv.DictReader(handle) if row["项目编号"] == project]


@pytest.fixture(scope="module")
def api_url() -> Iterator[str]:
    """The api on a free loopback port with a fresh SQLite database and the demo ledger."""
    workdir = Path(tempfile.mkdtemp(prefix="fangben-bot-api-"))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env.update(
        {
            "DATABASE_URL": f"sqlite:///{workdir / 'api.db'}",
            "PYTHONDONTWRITEBYTECODE": "1",
            # generous limits: these tests make many lookups from one sender
            "LOOKUP_RATE_PER_SENDER": "1000",
            "LOOKUP_RATE_PER_IP": "1000",
        }
    )
    for argv in (["-m", "alembic", "upgrade", "head"], ["-m", "app.ledger.cli", "load-demo"]):
        done = subprocess.run(
            [str(API_PY), *argv], cwd=API_DIR, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr[-2000:]
    log = (workdir / "api.log").open("wb")
    proc = subprocess.Popen(
        [
            str(API_PY),
            "-m",
            "uvicorn",
            "app.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
        ],
        cwd=API_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (workdir / "api.log").read_text()[-2000:]
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(autouse=True)
def _point_at_real_api(api_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "settings", dataclasses.replace(api.settings, api_url=api_url))


async def lookup(domain: dict, **slots: object) -> tuple[list[str], dict]:
    dispatcher = CollectingDispatcher()
    events = await ActionLookupStatus().run(dispatcher, make_tracker(slots=slots), domain)
    return texts(dispatcher), slot_events(events)


@pytest.mark.parametrize(
    "address", ["观象山庄3号楼2单元501", "观象山庄三号楼二单元五零一", "观象山庄3-2-501"]
)
async def test_lookup_by_address_forms(domain, address: str) -> None:
    sent, slots = await lookup(domain, address=address)
    joined = "\n".join(sent)
    assert slots["lookup_result"] == "unit" and slots["project_code"] == "QS001"
    assert "观象山庄3号楼2单元501室" in sent[0]
    assert "首次登记还没有完成" in joined
    assert "消防" in joined and "人防" in joined  # both open blockers of the demo project
    assert "不是您的过错" in joined and "2027年6月30日" in joined


async def test_lookup_by_id_number(domain) -> None:
    row = demo_units("QS001")[0]
    sent, slots = await lookup(
        domain, id_number=seal(row["身份证号"]), person_name=seal(row["业主姓名"])
    )
    assert slots["lookup_result"] == "unit" and slots["project_code"] == "QS001"
    assert f"{row['幢号']}号楼" in sent[0]
    assert all(row["身份证号"] not in m for m in sent)


async def test_ambiguous_address(domain) -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionLookupStatus().run(
        dispatcher, make_tracker(slots={"address": "阳光"}), domain
    )
    assert slot_events(events)["lookup_result"] == "ambiguous"
    titles = [b["title"] for b in dispatcher.messages[0]["buttons"]]
    assert any("阳光花园" in t for t in titles) and any("阳光花苑" in t for t in titles)
    assert titles[-1] == "都不是"


async def test_unknown_address(domain) -> None:
    sent, slots = await lookup(domain, address="不存在家园99号楼9单元909")
    assert slots["lookup_result"] == "none" and "utter_not_found" in sent


async def test_guidance_for_the_found_project(domain) -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(
        intent="ask_next_steps", slots={"project_code": "QS001", "project_name": "观象山庄"}
    )
    await ActionAnswerGuidance().run(dispatcher, tracker, domain)
    joined = "\n".join(texts(dispatcher))
    assert "首次登记还没办完" in joined and "消防" in joined


async def test_faq_answer_from_the_catalogue(domain) -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(intent="policy_faq", response_key="policy_faq/developer_uncooperative")
    await ActionAnswerFaq().run(dispatcher, tracker, domain)
    assert "公告" in "\n".join(texts(dispatcher))


async def test_petition_filed_once_and_found_by_number_and_phone(domain) -> None:
    slots = {
        "person_name": seal("李秀梅"),
        "phone": seal("13912345678"),
        "address": "观象山庄3号楼2单元501",
        "description": "等了八年还没有房本",
        "consent": True,
    }
    numbers = []
    for _ in range(2):  # the same turn retried: one petition
        dispatcher = CollectingDispatcher()
        await ActionSubmitPetition().run(dispatcher, make_tracker(slots=dict(slots)), domain)
        created = dispatcher.messages[0]
        assert created["response"] == "utter_petition_created"
        numbers.append(created["number"])
    assert numbers[0] == numbers[1] and numbers[0].startswith("XF-")

    dispatcher = CollectingDispatcher()
    tracker = make_tracker(slots={"petition_number": numbers[0], "phone": seal("13912345678")})
    await ActionCheckPetition().run(dispatcher, tracker, domain)
    status = dispatcher.messages[0]
    assert status["response"] == "utter_petition_status"
    assert status["status_label"] == "已受理" and status["answer_due"].endswith("日")

    dispatcher = CollectingDispatcher()
    tracker = make_tracker(slots={"petition_number": numbers[0], "phone": seal("13800000000")})
    await ActionCheckPetition().run(dispatcher, tracker, domain)
    assert texts(dispatcher)[-1] == "utter_petition_check_retry"
