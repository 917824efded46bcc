"""Browser fixtures for the web chat: the real api (uvicorn, SQLite file) on a free port, a
fake Rasa REST server behind it, and headless Debian Chromium driven by Playwright at 360×640."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[3]
API_DIR = ROOT / "api"
ARTIFACTS = ROOT / "tests" / "artifacts" / "browser-chat"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
sys.path.insert(0, str(ROOT / "tests" / "api" / "chat"))

from fake_rasa import FakeRasaServer  # noqa: E402

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def rasa_server() -> Iterator[FakeRasaServer]:
    """Fake Rasa REST channel with scripted realistic replies and buttons."""
    with FakeRasaServer() as server:
        yield server


@pytest.fixture(scope="session")
def api_url(rasa_server: FakeRasaServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The api in its own process (uvicorn) on a migrated SQLite file, talking to the fake Rasa."""
    db = tmp_path_factory.mktemp("chatdb") / "chat.db"
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{db}",
        "RASA_URL": rasa_server.url,
        "ENVIRONMENT": "test",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.pop("REDIS_URL", None)  # rate limits in the api process's memory
    py = str(API_DIR / ".venv" / "bin" / "python")
    subprocess.run(
        [py, "-m", "alembic", "-x", f"url=sqlite:///{db}", "upgrade", "head"],
        cwd=API_DIR,
        env=env,
        check=True,
        capture_output=True,
    )
    proc = subprocess.Popen(
        [py, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=API_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
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


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Debian's Chromium, headless; never a downloaded browser."""
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
def new_phone(browser: object) -> Iterator[object]:
    """Factory of fresh phone-sized browser contexts (each its own cookie jar)."""
    contexts = []

    def make() -> object:
        ctx = browser.new_context(  # type: ignore[attr-defined]
            viewport={"width": 360, "height": 640},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            locale="zh-CN",
        )
        contexts.append(ctx)
        return ctx

    yield make
    for ctx in contexts:
        ctx.close()


@pytest.fixture
def shot() -> object:
    """Save a screenshot under tests/artifacts/browser-chat/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(page: object, name: str, full_page: bool = False) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)  # type: ignore[attr-defined]
        return path

    return take
