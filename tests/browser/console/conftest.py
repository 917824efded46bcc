"""Browser fixtures for the staff console: the real api (uvicorn) on a free port with a temp
SQLite file holding the demo ledger, accounts of every role, and headless Debian Chromium
driven by Playwright at an office screen's 1366×768. Never downloads a browser."""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from browser_support import (  # noqa: E402
    API_DIR,
    API_PY,
    api_env,
    launch_chromium,
    migrate,
    running_api,
    screenshot_taker,
)

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


@pytest.fixture(scope="session")
def accounts() -> dict[str, tuple[str, str]]:
    """role → (username, random password) of the accounts seeded into the test database."""
    return {
        "clerk": ("clerk1", secrets.token_urlsafe(12)),
        "officer": ("officer1", secrets.token_urlsafe(12)),
        "supervisor": ("super1", secrets.token_urlsafe(12)),
        "admin": ("admin1", secrets.token_urlsafe(12)),
    }


# The environment of the session's api (its database), for tests that seed data as a job would.
CONSOLE_ENV: dict[str, str] = {}


@pytest.fixture(scope="session")
def console_url(
    tmp_path_factory: pytest.TempPathFactory, accounts: dict[str, tuple[str, str]]
) -> Iterator[str]:
    """The api in its own process on a migrated, seeded SQLite file; killed at the end."""
    db = tmp_path_factory.mktemp("consoledb") / "console.db"
    # Its own job queue and upload folder, and the real worker: ledger uploads are jobs.
    env = api_env(
        db,
        JOB_QUEUE_URL=f"sqlite:///{db.parent / 'jobs.db'}",
        LEDGER_UPLOAD_DIR=str(db.parent / "ledger-uploads"),
    )
    migrate(db, env)
    CONSOLE_ENV.update(env)
    departments = {"officer": "fire_rescue"}
    lines = "\n".join(
        f"{user},{role},{departments.get(role, '')},{pw}" for role, (user, pw) in accounts.items()
    )
    subprocess.run(
        [API_PY, "-c", SEED],
        cwd=API_DIR,
        env=env,
        input=lines.encode(),
        check=True,
        capture_output=True,
    )
    worker = subprocess.Popen(
        [API_PY, "-m", "app.worker"],
        cwd=API_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with running_api(env) as url:
            yield url
    finally:
        worker.terminate()
        try:
            worker.wait(10)
        except subprocess.TimeoutExpired:
            worker.kill()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Debian's Chromium, headless (this folder runs in its own pytest process)."""
    with launch_chromium() as launched:
        yield launched


@pytest.fixture
def desk(
    browser: object, console_url: str, accounts: dict[str, tuple[str, str]]
) -> Iterator[object]:
    """`desk(role)` → a logged-in page in its own 1366×768 browser context. Whatever the test
    does there, the pages' security policy (CSP) must not have blocked anything."""
    contexts = []
    blocked: list[str] = []

    def open_as(role: str) -> object:
        ctx = browser.new_context(  # type: ignore[attr-defined]
            viewport={"width": 1366, "height": 768}, locale="zh-CN", base_url=console_url
        )
        contexts.append(ctx)
        page = ctx.new_page()
        page.on(
            "console",
            lambda msg: blocked.append(msg.text) if "Content Security Policy" in msg.text else None,
        )
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
    assert not blocked, blocked


@pytest.fixture
def shot() -> Callable[..., Path]:
    """Save a 1366×768 screenshot (and optionally the full page) under tests/artifacts/."""
    return screenshot_taker("browser-console")
