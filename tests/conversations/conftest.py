"""The running helpdesk (api, action server, Rasa) the conversation cases talk to."""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "e2e"))

from e2e_stack import API_DIR, API_PY, Stack, running_stack  # noqa: E402

# The suite plays some 200 residents within a minute through one action server; the api's
# per-IP limits (meant for one caller, not the bot) would otherwise refuse most of them.
SUITE_LIMITS = {"LOOKUP_RATE_PER_IP": "100000", "PETITION_RATE_PER_IP": "100000"}


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """api on a temp SQLite with the demo ledger, actions, Rasa with the in-memory store."""
    with running_stack(tracker="memory", extra_env=SUITE_LIMITS) as running:
        yield running


@pytest.fixture(scope="session")
def staff_token(stack: Stack) -> str:
    """A clerk of the running stack (a case's setup publishes department answers with it)."""
    password = secrets.token_urlsafe(16)
    env = stack.launches["api"][2]
    argv = ["-m", "app.staff.cli", "create-user", "--username", "conv_clerk", "--role", "clerk"]
    done = subprocess.run(
        [str(API_PY), *argv, f"--password={password}"],
        cwd=API_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    token = httpx.post(
        f"{stack.api_url}/api/v1/auth/token",
        data={"username": "conv_clerk", "password": password},
        timeout=30,
    )
    token.raise_for_status()
    return str(token.json()["access_token"])
