"""Browser fixtures for the web chat: the real api (uvicorn, SQLite file) on a free port, a
fake Rasa REST server behind it, and headless Debian Chromium driven by Playwright at 360×640."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from browser_support import (  # noqa: E402
    ROOT,
    api_env,
    launch_chromium,
    migrate,
    running_api,
    screenshot_taker,
)

sys.path.insert(0, str(ROOT / "tests" / "api" / "chat"))

from fake_rasa import FakeRasaServer  # noqa: E402

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session")
def rasa_server() -> Iterator[FakeRasaServer]:
    """Fake Rasa REST channel with scripted realistic replies and buttons."""
    with FakeRasaServer() as server:
        yield server


@pytest.fixture(scope="session")
def chat_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SQLite file the api runs on (tests write notices into it as the notifier would)."""
    return tmp_path_factory.mktemp("chatdb") / "chat.db"


@pytest.fixture(scope="session")
def api_url(rasa_server: FakeRasaServer, chat_db: Path) -> Iterator[str]:
    """The api in its own process (uvicorn) on a migrated SQLite file, talking to the fake Rasa."""
    env = api_env(chat_db, RASA_URL=rasa_server.url)
    migrate(chat_db, env)
    with running_api(env, start_seconds=15) as url:
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Debian's Chromium, headless (this folder runs in its own pytest process)."""
    with launch_chromium() as launched:
        yield launched


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
def shot() -> Callable[..., Path]:
    """Save a screenshot under tests/artifacts/browser-chat/."""
    return screenshot_taker("browser-chat")
