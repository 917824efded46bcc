"""What the browser folders' conftests share: the real api (uvicorn) on a free port over a
migrated SQLite file, headless Debian Chromium driven by Playwright (never a downloaded
browser), screenshots under tests/artifacts/. Each folder (chat, console) runs in its own
pytest process, because Playwright's sync API allows one running instance per process."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
API_DIR = ROOT / "api"
API_PY = str(API_DIR / ".venv" / "bin" / "python")
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def api_env(db: Path, **extra: str) -> dict[str, str]:
    """The environment of a test api on the SQLite file `db` (rate limits in its own memory)."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{db}",
        "ENVIRONMENT": "test",
        "PYTHONDONTWRITEBYTECODE": "1",
        **extra,
    }
    env.pop("REDIS_URL", None)
    return env


def migrate(db: Path, env: dict[str, str]) -> None:
    """Create the schema in the SQLite file with Alembic, as `make run` does."""
    subprocess.run(
        [API_PY, "-m", "alembic", "-x", f"url=sqlite:///{db}", "upgrade", "head"],
        cwd=API_DIR,
        env=env,
        check=True,
        capture_output=True,
    )


@contextmanager
def running_api(env: dict[str, str], start_seconds: float = 30.0) -> Iterator[str]:
    """uvicorn on a free port with `env`; yields its URL once /healthz answers; stops it after."""
    port = free_port()
    proc = subprocess.Popen(
        [API_PY, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=API_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_seconds
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "api died")
            if time.monotonic() > deadline:
                raise RuntimeError("api did not start")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def launch_chromium() -> Iterator[object]:
    """Debian's Chromium, headless; required under CI, skipped elsewhere when absent."""
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


def screenshot_taker(folder: str) -> Callable[..., Path]:
    """`take(page, name, full_page=False)` saving tests/artifacts/<folder>/<name>.png."""
    artifacts = ROOT / "tests" / "artifacts" / folder
    artifacts.mkdir(parents=True, exist_ok=True)

    def take(page: object, name: str, full_page: bool = False) -> Path:
        path = artifacts / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)  # type: ignore[attr-defined]
        return path

    return take
