"""Web-chat fixtures: a fake Rasa REST server on a free port, wired in through settings."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_rasa import FakeRasa, FakeRasaServer  # noqa: E402

from app.core.config import settings  # noqa: E402


@pytest.fixture(scope="session")
def rasa_server() -> Iterator[FakeRasaServer]:
    """One fake Rasa for the whole session (a real HTTP server)."""
    with FakeRasaServer() as server:
        yield server


@pytest.fixture
def rasa(rasa_server: FakeRasaServer, monkeypatch: pytest.MonkeyPatch) -> FakeRasa:
    """The fake bot, fresh for each test, reached through `settings.rasa_url`."""
    monkeypatch.setattr(settings, "rasa_url", rasa_server.url)
    fake = rasa_server.fake
    fake.received.clear()
    fake.state.clear()
    fake.fail_status = None
    fake.takeover = None
    fake.delay = 0.0
    fake.delay_all = 0.0
    fake.before_reply = None
    return fake
