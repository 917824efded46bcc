"""A throwaway helpdesk for the conversation suite, as tests/e2e/e2e_stack.py starts one: the
api on a temporary SQLite database with the demo ledger (api/.venv), the action server, and a
Rasa server per model, all on free loopback ports, with random secrets of their own.

With `TRAINER_SANDBOX_API_URL` (compose: the bot image has no api environment) only the
action server and Rasa start here and talk to that api, which must be a throwaway instance
with the demo ledger: the suite files petitions in it.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from trainer.config import API_DIR, BOT_DIR, Settings
from trainer.errors import TrainerError
from trainer.processes import start, stop

# The suite plays some 200 residents from one address within a minute or two; the api's
# per-IP limits are meant for one caller, not for the bot (tests/conversations/conftest.py).
SUITE_LIMITS = {"LOOKUP_RATE_PER_IP": "100000", "PETITION_RATE_PER_IP": "100000"}
# Only these variables of the trainer's own environment reach the sandbox: never its
# database, queue, Redis or secrets.
_PASSED = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "XDG_CACHE_HOME")
SANDBOX_CLERK = "sandbox_clerk"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in _PASSED}
    env.update(
        {
            "PYTHONDONTWRITEBYTECODE": "1",
            "RASA_TELEMETRY_ENABLED": "false",
            "SANIC_HOST": "127.0.0.1",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "ENVIRONMENT": "development",
        }
    )
    return env


@dataclass
class Sandbox:
    """The running api (own or given) and action server; Rasa servers come and go."""

    workdir: Path
    api_url: str
    service_token: str
    actions_port: int
    staff_token: str | None
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def log(self, name: str) -> Path:
        """The log file of one server."""
        return self.workdir / f"{name}.log"


def _wait(url: str, name: str, proc: subprocess.Popen[bytes] | None, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise TrainerError(f"对话测试环境的 {name} 启动失败（退出码 {proc.returncode}）")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TrainerError(f"对话测试环境的 {name} 没有在 {seconds:.0f} 秒内启动")


def _api_cli(settings: Settings, env: dict[str, str], *argv: str) -> str:
    done = subprocess.run(
        [str(settings.api_python), *argv],
        cwd=API_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise TrainerError(f"对话测试环境的 api 准备失败（{argv[1]}，退出码 {done.returncode}）")
    return done.stdout


def _start_api(settings: Settings, box: Sandbox) -> None:
    port = free_port()
    env = {
        **_base_env(),
        **SUITE_LIMITS,
        "DATABASE_URL": f"sqlite:///{box.workdir / 'api.db'}",
        "JOB_QUEUE_URL": f"sqlite:///{box.workdir / 'jobs.db'}",
        "JOB_QUEUE_NAME": "sandbox",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "SERVICE_TOKEN": box.service_token,
        "SECRET_KEY": secrets.token_urlsafe(24),
        "ID_HASH_SECRET": secrets.token_urlsafe(24),
        "LOG_LEVEL": "WARNING",
    }
    if not settings.api_python.exists():
        raise TrainerError("对话测试需要 api 环境（api/.venv）或 TRAINER_SANDBOX_API_URL")
    _api_cli(settings, env, "-m", "alembic", "upgrade", "head")
    _api_cli(settings, env, "-m", "app.ledger.cli", "load-demo")
    password = secrets.token_urlsafe(16)
    _api_cli(
        settings,
        env,
        "-m",
        "app.staff.cli",
        "create-user",
        "--username",
        SANDBOX_CLERK,
        "--role",
        "clerk",
        f"--password={password}",
    )
    argv = [str(settings.api_python), "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--no-access-log", "--no-proxy-headers"]
    box.procs["api"] = start(argv, API_DIR, env, box.log("api"))
    box.api_url = f"http://127.0.0.1:{port}"
    _wait(f"{box.api_url}/healthz", "api", box.procs["api"], 90)
    box.staff_token = _login(box.api_url, SANDBOX_CLERK, password)


def _login(api_url: str, username: str, password: str) -> str:
    """A bearer token of a clerk of the sandbox api."""
    token = httpx.post(
        f"{api_url}/api/v1/auth/token",
        data={"username": username, "password": password},
        timeout=30,
    )
    if token.status_code != 200:
        raise TrainerError(f"对话测试环境的工作人员登录失败（HTTP {token.status_code}）")
    return str(token.json()["access_token"])


def _bot_env(box: Sandbox) -> dict[str, str]:
    return {
        **_base_env(),
        "PYTHONPATH": str(BOT_DIR),
        "API_URL": box.api_url,
        "SERVICE_TOKEN": box.service_token,
    }


@contextmanager
def backend(settings: Settings, workdir: Path) -> Iterator[Sandbox]:
    """The sandbox's api and action server, stopped on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    external = settings.sandbox_api_url
    box = Sandbox(
        workdir=workdir,
        api_url=external,
        service_token=(settings.sandbox_service_token or settings.service_token)
        if external
        else secrets.token_urlsafe(24),
        actions_port=free_port(),
        staff_token=None,
    )
    try:
        if external:
            _wait(f"{external}/healthz", "api", None, 60)
            if settings.sandbox_staff_username:
                box.staff_token = _login(
                    external, settings.sandbox_staff_username, settings.sandbox_staff_password
                )
        else:
            _start_api(settings, box)
        argv = [sys.executable, "-m", "rasa_sdk", "--actions", "actions"]
        argv += ["--port", str(box.actions_port)]
        box.procs["actions"] = start(argv, BOT_DIR, _bot_env(box), box.log("actions"))
        _wait(
            f"http://127.0.0.1:{box.actions_port}/health", "动作服务器", box.procs["actions"], 120
        )
        yield box
    finally:
        for proc in box.procs.values():
            stop(proc)


@contextmanager
def rasa_server(box: Sandbox, model: Path, name: str) -> Iterator[str]:
    """Rasa with `model` (in-memory tracker store, REST channel); its REST webhook."""
    port = free_port()
    endpoints = box.workdir / f"endpoints-{name}.yml"
    endpoints.write_text(
        "action_endpoint:\n"
        f'  url: "http://127.0.0.1:{box.actions_port}/webhook"\n'
        "tracker_store:\n"
        "  type: privacy.tracker_store.RedactingTrackerStore\n"
        "  backend: memory\n",
        encoding="utf-8",
    )
    credentials = box.workdir / "credentials.yml"
    credentials.write_text("channels.rest.SafeRestInput:\n  max_message_chars: 500\n")
    argv = [sys.executable, "-m", "rasa", "run", "--model", str(model)]
    argv += ["--interface", "127.0.0.1", "--port", str(port)]
    argv += ["--credentials", str(credentials), "--endpoints", str(endpoints)]
    proc = start(argv, BOT_DIR, _bot_env(box), box.log(f"rasa-{name}"))
    try:
        url = f"http://127.0.0.1:{port}/webhooks/rest/"
        _wait(url, "Rasa", proc, 300)
        yield f"{url}webhook"
    finally:
        stop(proc)
