"""Browser fixtures for the staff console: the real api (uvicorn) on a free port with a temp
SQLite file holding the demo ledger, accounts of every role, and headless Debian Chromium
driven by Playwright at an office screen's 1366×768. Never downloads a browser."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[3]
API_DIR = ROOT / "api"
ARTIFACTS = ROOT / "tests" / "artifacts" / "browser-console"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
PY = str(API_DIR / ".venv" / "bin" / "python")

SEED = """
import sys
from pathlib import Path
from app.core.database import session_scope
from app.ledger.service import import_ledger
from app.staff import service
demo = Path("app/ledger/demo_data")
with session_scope() as db:
    import_ledger([demo / "projects.csv", demo / "units.csv"], db=db, actor="test:seed")
    for line in sys.stdin.read().splitlines():
        username, role, department, password = line.split(",")
        service.create_user(db=db, username=username, password=password, role=role,
                            department=department or None)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def accounts() -> dict[str, tuple[str, str]]:
    """role → (username, random password) of the accounts seeded into the test database."""
    return {
        "clerk": ("clerk1", secrets.token_urlsafe(12)),
        "officer": ("officer1", secrets.token_urlsafe(12)),
        "supervisor": ("super1", secrets.token_urlsafe(12)),
        "admin": ("admin1", secrets.token_urlsafe(12)),
    }


@pytest.fixture(scope="session")
def console_url(
    tmp_path_factory: pytest.TempPathFactory, accounts: dict[str, tuple[str, str]]
) -> Iterator[str]:
    """The api in its own process on a migrated, seeded SQLite file; killed at the end."""
    db = tmp_path_factory.mktemp("consoledb") / "console.db"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{db}",
        "ENVIRONMENT": "test",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.pop("REDIS_URL", None)
    subprocess.run(
        [PY, "-m", "alembic", "-x", f"url=sqlite:///{db}", "upgrade", "head"],
        cwd=API_DIR,
        env=env,
        check=True,
        capture_output=True,
    )
    departments = {"officer": "fire_rescue"}
    lines = "\n".join(
        f"{user},{role},{departments.get(role, '')},{pw}" for role, (user, pw) in accounts.items()
    )
    subprocess.run(
        [PY, "-c", SEED],
        cwd=API_DIR,
        env=env,
        input=lines.encode(),
        check=True,
        capture_output=True,
    )
    port = _free_port()
    proc = subprocess.Popen(
        [PY, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=API_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/healthz", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "api died")
            time.sleep(0.1)
        else:
            raise RuntimeError("api did not start")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's Chromium, headless (this directory runs in its own pytest process)."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is required under CI (make install-browser)")
        pytest.skip(f"{CHROMIUM} not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()


@pytest.fixture
def desk(
    browser: object, console_url: str, accounts: dict[str, tuple[str, str]]
) -> Iterator[object]:
    """`desk(role)` → a logged-in page in its own 1366×768 browser context."""
    contexts = []

    def open_as(role: str) -> object:
        ctx = browser.new_context(  # type: ignore[attr-defined]
            viewport={"width": 1366, "height": 768}, locale="zh-CN", base_url=console_url
        )
        contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(15_000)
        username, password = accounts[role]
        page.goto("/console")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_selector("header nav")
        return page

    yield open_as
    for ctx in contexts:
        ctx.close()


@pytest.fixture
def shot() -> object:
    """Save a 1366×768 screenshot (and optionally the full page) under tests/artifacts/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(page: object, name: str, full_page: bool = False) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)  # type: ignore[attr-defined]
        return path

    return take
