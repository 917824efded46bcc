"""Start the whole helpdesk on free loopback ports: api (temp SQLite), action server, Rasa, and
on request the job worker (notifications), the WeChat channel, and Rasa pulling its model from
the api's model server (as `make run` does) with its HTTP API on (to read the served model).

Used by the end-to-end tests, the live bot tests and `bench/bot_bench.py`. Every process runs
in its own process group and is stopped (TERM, then KILL) when the stack closes.
"""

from __future__ import annotations

import csv
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
API_DIR = REPO / "api"
BOT_DIR = REPO / "bot"
API_PY = API_DIR / ".venv" / "bin" / "python"
BOT_PY = BOT_DIR / ".venv" / "bin" / "python"
DEMO_UNITS = API_DIR / "app" / "ledger" / "demo_data" / "units.csv"


class StackError(RuntimeError):
    """A server of the stack did not start; the message names its log file."""


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def latest_model() -> Path:
    """The newest trained model in bot/models/ (train first with `make train`)."""
    models = sorted(glob.glob(str(BOT_DIR / "models" / "*.tar.gz")), key=os.path.getmtime)
    if not models:
        raise StackError("no trained model in bot/models/: run `make train` first")
    return Path(models[-1])


def demo_unit(project: str, building: str, unit: str, room: str) -> dict[str, str]:
    """A row of the shipped demo ledger's units sheet (owner name and ID number included)."""
    with DEMO_UNITS.open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle):
            if (row["项目编号"], row["幢号"], row["单元"], row["房号"]) == (
                project,
                building,
                unit,
                room,
            ):
                return row
    raise KeyError((project, building, unit, room))


@dataclass
class Stack:
    """Ports, files and processes of one running helpdesk."""

    workdir: Path
    api_port: int
    actions_port: int
    rasa_port: int
    database: Path
    tracker_db: Path | None
    # Every Rasa replica's port (`rasa_port` is the first); its process is "rasa", then
    # "rasa-2", "rasa-3", ...
    rasa_ports: list[int] = field(default_factory=list)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    launches: dict[str, tuple[list[str], Path, dict[str, str]]] = field(default_factory=dict)
    health: dict[str, str] = field(default_factory=dict)
    api_env: dict[str, str] = field(default_factory=dict)
    # Rasa's HTTP API token (`rasa run --enable-api --auth-token`), when it is on.
    rasa_token: str | None = None

    @property
    def api_url(self) -> str:
        """Base URL of the api."""
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def rasa_url(self) -> str:
        """Base URL of Rasa."""
        return f"http://127.0.0.1:{self.rasa_port}"

    @property
    def webhook(self) -> str:
        """Rasa's REST channel webhook."""
        return f"{self.rasa_url}/webhooks/rest/webhook"

    def webhook_of(self, replica: int) -> str:
        """The REST channel webhook of Rasa replica `replica` (0 is the first)."""
        return f"http://127.0.0.1:{self.rasa_ports[replica]}/webhooks/rest/webhook"

    def log(self, name: str) -> str:
        """The captured output of one server so far."""
        path = self.workdir / f"{name}.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def staff_token(self, username: str, role: str, department: str | None = None) -> str:
        """Create a staff account with the project's own CLI; a bearer token for it."""
        argv = [str(API_PY), "-m", "app.staff.cli", "create-user", "--username", username]
        argv += ["--role", role, "--generate"]
        argv += ["--department", department] if department else []
        done = subprocess.run(
            argv, cwd=API_DIR, env=self.api_env, capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            raise StackError(f"create-user failed: {done.stderr}")
        password = done.stdout.rsplit("：", 1)[-1].strip()
        response = httpx.post(
            f"{self.api_url}/api/v1/auth/token",
            data={"username": username, "password": password},
            timeout=30,
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def rasa_status(self) -> dict[str, Any]:
        """Rasa's `/status` (the served model's `model_id` = its fingerprint); needs the stack
        started with `rasa_token`."""
        if not self.rasa_token:
            raise StackError("start the stack with rasa_token= to read Rasa's /status")
        response = httpx.get(
            f"{self.rasa_url}/status", params={"token": self.rasa_token}, timeout=10
        )
        response.raise_for_status()
        return dict(response.json())

    def wait_for_model(self, fingerprint: str, seconds: float = 60) -> float:
        """Wait until Rasa serves the model `fingerprint`; the seconds it took."""
        started = time.monotonic()
        deadline = started + seconds
        seen = None
        while time.monotonic() < deadline:
            try:
                seen = self.rasa_status().get("model_id")
            except httpx.HTTPError:
                seen = None
            if seen == fingerprint:
                return time.monotonic() - started
            time.sleep(0.1)
        raise StackError(f"Rasa still serves {seen}, not {fingerprint}, after {seconds}s")

    def say(
        self, sender: str, text: str, client: httpx.Client | None = None, replica: int = 0
    ) -> list[dict]:
        """Send one message over the REST channel (of Rasa replica `replica`); the replies."""
        own = client is None
        client = client or httpx.Client(timeout=60)
        try:
            url = self.webhook_of(replica) if self.rasa_ports else self.webhook
            response = client.post(url, json={"sender": sender, "message": text})
            response.raise_for_status()
            return list(response.json())
        finally:
            if own:
                client.close()


def stop_server(stack: Stack, name: str) -> None:
    """Stop one server of the stack (to test an outage); `start_server` brings it back."""
    _stop({name: stack.procs[name]})


def kill_server(stack: Stack, name: str) -> None:
    """SIGKILL one server of the stack (a crash: no shutdown handlers run) and reap it."""
    proc = stack.procs[name]
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=15)


def start_server(stack: Stack, name: str, seconds: float = 120) -> None:
    """Start a stopped server again with its first command line and wait until it answers."""
    argv, cwd, env = stack.launches[name]
    _start(stack, name, argv, cwd, env)
    _wait(stack.health[name], name, stack, seconds)


def _wait(url: str, name: str, stack: Stack, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    proc = stack.procs[name]
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackError(f"{name} exited with {proc.returncode}:\n{stack.log(name)[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise StackError(f"{name} not up after {seconds}s:\n{stack.log(name)[-3000:]}")


def _start(stack: Stack, name: str, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
    stack.launches[name] = (argv, cwd, env)
    log = (stack.workdir / f"{name}.log").open("ab")
    stack.procs[name] = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def _stop(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for proc in procs.values():
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=5)


def _run(argv: list[str], cwd: Path, env: dict[str, str], what: str) -> None:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise StackError(f"{what} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def _load_demo(env: dict[str, str]) -> None:
    _run([str(API_PY), "-m", "app.ledger.cli", "load-demo"], API_DIR, env, "demo ledger")


def _rasa_name(index: int) -> str:
    """Process name of Rasa replica `index`: "rasa", then "rasa-2", ..."""
    return "rasa" if index == 0 else f"rasa-{index + 1}"


def _write_bot_config(
    stack: Stack, tracker: str, wechat: bool = False, model_pull: int | None = None
) -> tuple[Path, Path]:
    endpoints = stack.workdir / "endpoints.yml"
    lines = [
        "action_endpoint:",
        f'  url: "http://127.0.0.1:{stack.actions_port}/webhook"',
    ]
    if model_pull is not None:
        # As bot/endpoints.yml: the live model from the api, the token from the environment.
        lines += [
            "models:",
            f"  url: {stack.api_url}/api/v1/models/live",
            "  headers:",
            "    Authorization: Service ${SERVICE_TOKEN}",
            f"  wait_time_between_pulls: {model_pull}",
        ]
    lines += [
        "tracker_store:",
        "  type: privacy.tracker_store.RedactingTrackerStore",
    ]
    if tracker == "sql":
        assert stack.tracker_db is not None
        lines += ["  backend: sql", "  dialect: sqlite", f'  db: "{stack.tracker_db}"']
    else:
        lines += ["  backend: memory"]
    endpoints.write_text("\n".join(lines) + "\n", encoding="utf-8")
    credentials = stack.workdir / "credentials.yml"
    text = "channels.rest.SafeRestInput:\n  max_message_chars: 500\n"
    if wechat:
        text += "channels.wechat.WeChatInput:\n"
    credentials.write_text(text)
    return endpoints, credentials


@contextmanager
def running_stack(
    tracker: str = "memory",
    model: Path | None = None,
    extra_env: dict[str, str] | None = None,
    worker: bool = False,
    wechat: bool = False,
    model_server: bool = False,
    pull_seconds: int = 2,
    rasa_token: str | None = None,
    database_url: str | None = None,
    replicas: int = 1,
    endpoints: Path | None = None,
    replica_env: Callable[[int, Stack], dict[str, str]] | None = None,
) -> Iterator[Stack]:
    """Start api, action server and Rasa; yield the stack; stop everything on exit.

    `tracker` is "memory" (the embedded default) or "sql" (a SQLite file the caller can read).
    `worker` also starts the job consumer (`python -m app.worker`, as `make run` does) on a
    SQLite queue of its own; `wechat` enables the WeChat channel (its WECHAT_* settings come
    in `extra_env`). `model_server` registers `model` as the live model
    (`python -m app.modelhub.cli register-live`) and starts Rasa without `--model`, pulling it
    from the api every `pull_seconds` (bot/endpoints.yml's `models:`); `rasa_token` turns on
    Rasa's HTTP API with that token (`Stack.rasa_status`).

    `database_url` puts the api on that database (e.g. a PostgreSQL one of the caller's) instead
    of a temp SQLite file. `replicas` starts that many Rasa processes on the same model, each on
    its own port (`Stack.rasa_ports`, `Stack.say(..., replica=i)`), all started before any is
    waited for. `endpoints` is an endpoints file to use instead of the generated one (it may
    read `${ACTION_SERVER_URL}`, set to the stack's action server); `replica_env(i, stack)`
    gives environment variables for replica i only.
    """
    model = model or latest_model()
    workdir = Path(tempfile.mkdtemp(prefix="fangben-e2e-"))
    stack = Stack(
        workdir=workdir,
        api_port=free_port(),
        actions_port=free_port(),
        rasa_port=free_port(),
        database=workdir / "api.db",
        tracker_db=workdir / "tracker.db" if tracker == "sql" else None,
        rasa_token=rasa_token,
    )
    stack.rasa_ports = [stack.rasa_port] + [free_port() for _ in range(replicas - 1)]
    base = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    base.update(
        {
            "RASA_TELEMETRY_ENABLED": "false",
            "SANIC_HOST": "127.0.0.1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            **(extra_env or {}),
        }
    )
    api_env = {
        **base,
        "DATABASE_URL": database_url or f"sqlite:///{stack.database}",
        "RASA_URL": stack.rasa_url,
        "PORT": str(stack.api_port),
        "JOB_QUEUE_URL": f"sqlite:///{workdir / 'jobs.db'}",
        "MODEL_CANDIDATES_DIR": str(workdir / "models"),
    }
    stack.api_env = api_env
    bot_env = {
        **base,
        "API_URL": stack.api_url,
        "ACTION_SERVER_URL": f"http://127.0.0.1:{stack.actions_port}/webhook",
    }
    # The api's development default unless the environment sets one (both sides read it).
    bot_env.setdefault("SERVICE_TOKEN", "dev-only-service-token-change-me")
    try:
        started = time.monotonic()
        _run([str(API_PY), "-m", "alembic", "upgrade", "head"], API_DIR, api_env, "migrations")
        _load_demo(api_env)
        if model_server:
            argv = [str(API_PY), "-m", "app.modelhub.cli", "register-live", str(model)]
            _run(argv, API_DIR, api_env, "register-live")
        stack.timings["prepare_db"] = time.monotonic() - started
        generated, credentials = _write_bot_config(
            stack, tracker, wechat=wechat, model_pull=pull_seconds if model_server else None
        )
        endpoints = endpoints or generated
        started = time.monotonic()
        _start(
            stack,
            "api",
            [
                str(API_PY),
                "-m",
                "uvicorn",
                "app.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(stack.api_port),
                "--no-access-log",
            ],
            API_DIR,
            api_env,
        )
        _start(
            stack,
            "actions",
            [
                str(BOT_PY),
                "-m",
                "rasa_sdk",
                "--actions",
                "actions",
                "--port",
                str(stack.actions_port),
            ],
            BOT_DIR,
            bot_env,
        )
        if model_server:
            # Rasa pulls its first model before it listens: the api must answer first.
            _wait(f"{stack.api_url}/healthz", "api", stack, 60)
        for index, port in enumerate(stack.rasa_ports):
            rasa_argv = [str(BOT_DIR / ".venv" / "bin" / "rasa"), "run"]
            rasa_argv += [] if model_server else ["--model", str(model)]
            rasa_argv += ["--interface", "127.0.0.1", "--port", str(port)]
            rasa_argv += ["--credentials", str(credentials), "--endpoints", str(endpoints)]
            if rasa_token:
                rasa_argv += ["--enable-api", "--auth-token", rasa_token]
            env = {**bot_env, **(replica_env(index, stack) if replica_env else {})}
            _start(stack, _rasa_name(index), rasa_argv, BOT_DIR, env)
        if worker:
            _start(stack, "worker", [str(API_PY), "-m", "app.worker"], API_DIR, api_env)
        stack.health = {
            "api": f"{stack.api_url}/healthz",
            "actions": f"http://127.0.0.1:{stack.actions_port}/health",
        }
        for index, port in enumerate(stack.rasa_ports):
            stack.health[_rasa_name(index)] = f"http://127.0.0.1:{port}/webhooks/rest/"
        _wait(stack.health["api"], "api", stack, 60)
        _wait(stack.health["actions"], "actions", stack, 120)
        for index in range(len(stack.rasa_ports)):
            _wait(stack.health[_rasa_name(index)], _rasa_name(index), stack, 420)
        stack.timings["start_servers"] = time.monotonic() - started
        yield stack
    finally:
        _stop(stack.procs)
        if os.environ.get("E2E_KEEP_LOGS"):
            print(f"e2e logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def texts(replies: list[dict[str, Any]]) -> str:
    """All reply texts (and button titles) joined, for assertions on contents."""
    parts: list[str] = []
    for reply in replies:
        if reply.get("text"):
            parts.append(str(reply["text"]))
        for button in reply.get("buttons") or []:
            parts.append(f"[{button.get('title')}|{button.get('payload')}]")
    return "\n".join(parts)


def petition_form_answer(
    reply: str, *, name: str, phone: str, story: str, address: str = "观象山庄3号楼2单元501"
) -> str:
    """What a resident answers to the petition form's prompt `reply` (consent, what happened,
    name, phone, home); AssertionError on a prompt the form should not ask."""
    if "同意" in reply:
        return "同意"
    if any(w in reply for w in ("经过", "情况", "什么问题", "什么事", "说说", "描述")):
        return story
    if "姓名" in reply or "称呼" in reply:
        return name
    if "手机" in reply or "电话" in reply:
        return phone
    if "地址" in reply or "小区" in reply:
        return address
    raise AssertionError(f"unexpected prompt: {reply}")
