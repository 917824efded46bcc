"""Fixtures for the bot's action tests: the domain, trackers and a dispatcher."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BOT_DIR = REPO / "bot"
if str(BOT_DIR) not in sys.path:
    sys.path.insert(0, str(BOT_DIR))

from rasa_sdk import Tracker  # noqa: E402
from rasa_sdk.executor import CollectingDispatcher  # noqa: E402

API = "http://127.0.0.1:8000"
API_DIR = REPO / "api"
API_PY = API_DIR / ".venv" / "bin" / "python"


@dataclass
class RealApi:
    """A running api: its URL and the environment its commands run with (database, queue)."""

    url: str
    env: dict[str, str]
    workdir: Path

    def cli(self, *argv: str) -> str:
        """Run an api command (`-m app.staff.cli …`) against this api's database; its output."""
        done = subprocess.run(
            [str(API_PY), *argv],
            cwd=API_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


@contextmanager
def running_api(extra_env: dict[str, str] | None = None, worker: bool = False) -> Iterator[RealApi]:
    """The REAL api (uvicorn) on a free loopback port with a fresh SQLite database, the demo
    ledger and its own job queue; with `worker` the job consumer runs too."""
    workdir = Path(tempfile.mkdtemp(prefix="fangben-bot-api-"))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env.update(
        {
            "DATABASE_URL": f"sqlite:///{workdir / 'api.db'}",
            "JOB_QUEUE_URL": f"sqlite:///{workdir / 'jobs.db'}",
            "PYTHONDONTWRITEBYTECODE": "1",
            # generous limits: these tests make many lookups from one sender
            "LOOKUP_RATE_PER_SENDER": "1000",
            "LOOKUP_RATE_PER_IP": "1000",
            **(extra_env or {}),
        }
    )
    api = RealApi(url=f"http://127.0.0.1:{port}", env=env, workdir=workdir)
    api.cli("-m", "alembic", "upgrade", "head")
    api.cli("-m", "app.ledger.cli", "load-demo")
    procs: list[subprocess.Popen[bytes]] = []
    log = (workdir / "api.log").open("wb")
    commands = [
        ["-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port)]
        + ["--no-access-log"]
    ]
    if worker:
        commands.append(["-m", "app.worker"])
    try:
        for argv in commands:
            procs.append(
                subprocess.Popen(
                    [str(API_PY), *argv],
                    cwd=API_DIR,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        for _ in range(120):
            try:
                if httpx.get(f"{api.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert all(p.poll() is None for p in procs), (workdir / "api.log").read_text()[-2000:]
            time.sleep(0.5)
        yield api
    finally:
        for proc in procs:
            _stop(proc)
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


def load_domain() -> dict[str, Any]:
    """The split domain files of bot/domain merged into one dict (as Rasa sends it)."""
    merged: dict[str, Any] = {
        "intents": [],
        "entities": [],
        "slots": {},
        "forms": {},
        "responses": {},
        "actions": [],
    }
    for path in sorted((BOT_DIR / "domain").glob("*.yml")):
        part = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for key in ("intents", "entities", "actions"):
            merged[key] += part.get(key) or []
        for key in ("slots", "forms", "responses"):
            merged[key].update(part.get(key) or {})
    return merged


@pytest.fixture(scope="session")
def domain() -> dict[str, Any]:
    """The merged domain."""
    return load_domain()


@pytest.fixture
def dispatcher() -> CollectingDispatcher:
    """Collects what an action sends."""
    return CollectingDispatcher()


def make_tracker(
    *,
    text: str = "",
    intent: str = "inform",
    entities: list[dict[str, Any]] | None = None,
    slots: dict[str, Any] | None = None,
    active_loop: str | None = None,
    requested_slot: str | None = None,
    events: list[dict[str, Any]] | None = None,
    sender_id: str = "test-sender",
    response_key: str | None = None,
    channel: str = "rest",
) -> Tracker:
    """A tracker whose latest message is `text` with the given intent and entities."""
    all_slots: dict[str, Any] = {"requested_slot": requested_slot}
    all_slots.update(slots or {})
    latest: dict[str, Any] = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.9},
        "entities": entities or [],
    }
    if response_key:
        latest["response_selector"] = {
            "policy_faq": {"response": {"intent_response_key": response_key}}
        }
    user_event = {"event": "user", "text": text, "parse_data": latest, "input_channel": channel}
    return Tracker(
        sender_id=sender_id,
        slots=all_slots,
        latest_message=latest,
        events=(events or []) + [user_event],
        paused=False,
        followup_action=None,
        active_loop={"name": active_loop} if active_loop else {},
        latest_action_name="action_listen",
    )


def entity(name: str, value: str) -> dict[str, Any]:
    """An entity as the NLU reports it."""
    return {"entity": name, "value": value, "start": 0, "end": len(value)}


def texts(dispatcher: CollectingDispatcher) -> list[str]:
    """Text of every message sent (responses by name are shown as their name)."""
    return [m.get("text") or m.get("response") or "" for m in dispatcher.messages]


def slot_events(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The last value set for each slot in a list of events."""
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
