"""WeChat channel fixtures: the channel in a real Sanic server, the simulated WeChat platform
pushing to it, the fake server API (token, custom and template send) it calls back, and a
recording stand-in for the api's contact endpoint."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
for path in (ROOT / "bot", ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from wechat_double.harness import (  # noqa: E402
    ChannelServer,
    RecordingApi,
    ScriptedBot,
    WeChatRig,
)
from wechat_double.simulator import (  # noqa: E402
    TEST_AES_KEY,
    TEST_APPID,
    TEST_SECRET,
    TEST_SERVICE_TOKEN,
    TEST_TOKEN,
    FakeWeChatApi,
    WeChatSimulator,
)

from channels.wechat import WeChatConfig, WeChatInput  # noqa: E402


@pytest.fixture
def wechat_api() -> Iterator[FakeWeChatApi]:
    """The fake WeChat server API on a free port."""
    with FakeWeChatApi() as api:
        yield api


@pytest.fixture
def contact_api() -> Iterator[RecordingApi]:
    """The api's contact endpoint, recording what the channel registers."""
    with RecordingApi() as api:
        yield api


def make_config(
    api: FakeWeChatApi, contacts: RecordingApi | None = None, **overrides: Any
) -> WeChatConfig:
    """Channel settings pointing at the fake API, with short retry waits."""
    values: dict[str, Any] = {
        "api_url": contacts.base if contacts else "http://127.0.0.1:9",
        "service_token": TEST_SERVICE_TOKEN,
        "token": TEST_TOKEN,
        "appid": TEST_APPID,
        "appsecret": TEST_SECRET,
        "encoding_aes_key": TEST_AES_KEY,
        "api_base": api.base,
        "reply_timeout": 1.0,
        "send_backoff": 0.05,
    }
    values.update(overrides)
    return WeChatConfig(**values)


@pytest.fixture
def make_rig(
    wechat_api: FakeWeChatApi, contact_api: RecordingApi
) -> Iterator[Callable[..., WeChatRig]]:
    """Factory: `make_rig(mode="aes"|"raw", **config)` starts a channel server."""
    started: list[WeChatRig] = []

    def _make(mode: str = "aes", store: Any = None, **overrides: Any) -> WeChatRig:
        channel = WeChatInput(make_config(wechat_api, contact_api, **overrides), store=store)
        bot = ScriptedBot()
        server = ChannelServer(channel, bot, "/webhooks/wechat").__enter__()
        sim = WeChatSimulator(server.url, mode=mode, api=wechat_api)
        rig = WeChatRig(channel, bot, server, sim, wechat_api, contact_api)
        started.append(rig)
        return rig

    yield _make
    for rig in started:
        rig.sim.close()
        rig.server.__exit__(None, None, None)


@pytest.fixture
def rig(make_rig: Callable[..., WeChatRig]) -> WeChatRig:
    """A channel in security mode (the mode a government account should use)."""
    return make_rig("aes")
