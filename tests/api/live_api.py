"""The api as a real uvicorn process on a free loopback port (its own logging, its own
middleware stack as launched in production), for tests that need what a TestClient skips."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

API_DIR = Path(__file__).resolve().parents[2] / "api"
# How scripts/run.sh, api/Dockerfile and docker-compose.yml start it (tests/api/test_forwarded.py
# checks that they all do): uvicorn's own proxy headers off, the app decides whom to believe.
PRODUCTION_FLAGS = ("--no-access-log", "--no-proxy-headers")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_api(
    database_url: str,
    log: Path,
    *,
    env: dict[str, str] | None = None,
    flags: Sequence[str] = (),
) -> Iterator[str]:
    """uvicorn with the app on `database_url`, everything it prints going to `log`; yields the
    base URL."""
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("VIRTUAL_ENV")}
    full_env.update(
        {
            "DATABASE_URL": database_url,
            "LOG_LEVEL": "DEBUG",
            "PETITION_RATE_PER_IP": "1000",
            "PYTHONPATH": str(API_DIR),
        }
    )
    full_env.update(env or {})
    argv = [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port), *flags]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, cwd=API_DIR, env=full_env, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            if proc.poll() is not None:
                raise AssertionError(log.read_text(errors="replace")[-3000:])
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise AssertionError(log.read_text(errors="replace")[-3000:])
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)
