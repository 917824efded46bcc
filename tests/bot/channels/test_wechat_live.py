"""The WeChat channel inside a real `rasa run` with the trained model, the action server and
the api (demo ledger): the simulated WeChat platform holds a status conversation and files a
petition; replies come back passively or, when slow, through the fake customer-service API."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from wechat_double.simulator import (
    TEST_AES_KEY,
    TEST_APPID,
    TEST_SECRET,
    TEST_TOKEN,
    FakeWeChatApi,
    WeChatSimulator,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "e2e"))
import e2e_stack  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

PETITION_NUMBER = re.compile(r"XF-\d{8}-\d{4}")
PHONE = "13912345678"
ARTIFACT = Path(__file__).resolve().parents[2] / "artifacts" / "wechat-live-timings.json"
TIMINGS: list[dict[str, Any]] = []


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[e2e_stack.Stack, FakeWeChatApi]]:
    """The whole helpdesk with the WeChat channel enabled next to the REST channel."""
    try:
        e2e_stack.latest_model()
    except e2e_stack.StackError:
        if os.environ.get("CI") == "true":
            pytest.fail("no trained model under CI (scripts/test.d/20-bot.sh trains it)")
        pytest.skip("no trained model in bot/models/ (make train)")
    original = e2e_stack._write_bot_config

    def with_wechat(stack: e2e_stack.Stack, tracker: str, **options: Any) -> tuple[Path, Path]:
        endpoints, credentials = original(stack, tracker, **options)
        with credentials.open("a", encoding="utf-8") as handle:
            handle.write("channels.wechat.WeChatInput:\n")
        return endpoints, credentials

    with FakeWeChatApi() as api:
        env = {
            "WECHAT_TOKEN": TEST_TOKEN,
            "WECHAT_APPID": TEST_APPID,
            "WECHAT_APPSECRET": TEST_SECRET,
            "WECHAT_ENCODING_AES_KEY": TEST_AES_KEY,
            "WECHAT_API_BASE": api.base,
            "WECHAT_REDIS_URL": "",
            "REDIS_URL": "",
        }
        e2e_stack._write_bot_config = with_wechat
        try:
            with e2e_stack.running_stack(tracker="memory", extra_env=env) as stack:
                yield stack, api
        finally:
            e2e_stack._write_bot_config = original
            if TIMINGS:
                ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
                ARTIFACT.write_text(json.dumps(TIMINGS, indent=1), encoding="utf-8")


def ask(sim: WeChatSimulator, api: FakeWeChatApi, openid: str, text: str) -> str:
    """Send like WeChat; the passive reply, or what arrives through custom send instead."""
    before = len(api.sent)
    start = time.monotonic()
    reply = sim.text(openid, text)
    assert reply.status == 200, reply.body
    if reply.content is not None:
        TIMINGS.append({"mode": "passive", "seconds": round(time.monotonic() - start, 3)})
        return reply.content
    assert reply.body == "success"
    assert reply.elapsed < 5, "WeChat would have given up and retried"
    sent = api.wait_for_sent(before + 1, timeout=90)
    assert len(sent) > before, f"no reply to {text!r}"
    TIMINGS.append({"mode": "custom_send", "seconds": round(time.monotonic() - start, 3)})
    time.sleep(0.5)  # a long reply may come in several pieces
    return "\n".join(m["text"]["content"] for m in api.sent[before:] if m["touser"] == openid)


def sim_for(stack: e2e_stack.Stack, api: FakeWeChatApi) -> WeChatSimulator:
    return WeChatSimulator(f"{stack.rasa_url}/webhooks/wechat/webhook", mode="aes", api=api)


def test_verification_and_status_conversation(live: Any) -> None:
    stack, api = live
    sim = sim_for(stack, api)
    openid = "oLiveStatus-0000000000000001"
    assert sim.verify("20261123").text == "20261123"
    greeting = sim.event(openid, "subscribe").content
    assert "【1】查房本进度" in greeting
    first = ask(sim, api, openid, "我家房本为什么一直办不下来")
    assert "地址" in first or "身份证" in first, first
    status = ask(sim, api, openid, "观象山庄3号楼2单元501")
    for word in ("观象山庄", "首次登记", "消防", "人防"):
        assert word in status, status
    log = stack.log("rasa")
    assert openid not in log
    sim.close()


def test_petition_through_wechat(live: Any) -> None:
    stack, api = live
    sim = sim_for(stack, api)
    openid = "oLivePetition-000000000000002"
    reply = ask(sim, api, openid, "我要找人反映，登记信访")
    for _ in range(10):
        if PETITION_NUMBER.search(reply):
            break
        answer = e2e_stack.petition_form_answer(
            reply,
            name="刘桂芳",
            phone=PHONE,
            story="交房五年了房本一直办不下来，开发商说消防验收没过",
        )
        reply = ask(sim, api, openid, answer)
    match = PETITION_NUMBER.search(reply)
    assert match, reply
    with sqlite3.connect(stack.database) as db:
        row = db.execute(
            "SELECT person_name, phone, channel, status FROM petition WHERE number = ?",
            (match.group(0),),
        ).fetchone()
    assert row == ("刘桂芳", PHONE, "wechat", "accepted")
    for name in ("rasa", "actions"):
        assert openid not in stack.log(name)
    sim.close()
