"""Conversations through the WeChat channel: status, petition, retries processed once, slow
replies through the customer-service API, the shared access token and API failures."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from collections.abc import Callable

import pytest
from wechat_double.harness import WeChatRig, redis_url_for_tests
from wechat_double.simulator import FakeWeChatApi

from channels.wechat import WeChatInput
from channels.wechat_store import MemoryStore, RedisStore

OPENID = "oFbZt5x1Yz-StatusResident001"
OTHER = "oFbZt5x1Yz-PetitionResident02"


def test_status_conversation_with_numbered_choices(rig: WeChatRig) -> None:
    ask = rig.sim.text(OPENID, "查房本进度")
    assert "地址" in ask.content
    status = rig.sim.text(OPENID, "观象山庄3号楼2单元501")
    assert "消防验收" in status.content and "证缴分离" in status.content
    assert "【1】接下来怎么办" in status.content and "【3】我要信访" in status.content
    # Choosing 1 sends that button's payload (offered by the bot), not the digit.
    nxt = rig.sim.text(OPENID, "１")
    assert rig.bot.calls[-1][1] == "/ask_next_steps"
    assert "首次登记完成后" in nxt.content
    # The choice is used up: a later "1" is plain text again.
    rig.sim.text(OPENID, "1")
    assert rig.bot.calls[-1][1] == "1"
    senders = {s for s, _ in rig.bot.calls}
    assert len(senders) == 1
    sender = senders.pop()
    assert sender.startswith("wx-") and OPENID not in sender


def test_petition_conversation(rig: WeChatRig) -> None:
    assert "称呼" in rig.sim.text(OTHER, "我要信访").content
    assert "手机号" in rig.sim.text(OTHER, "李秀英").content
    assert "情况" in rig.sim.text(OTHER, "13912345678").content
    consent = rig.sim.text(OTHER, "海岸花园交房六年了还没有房本，开发商不见了")
    assert "同意吗" in consent.content and "【1】同意" in consent.content
    done = rig.sim.text(OTHER, "1")
    assert rig.bot.calls[-1][1] == "/affirm"
    assert "XF-20261123-" in done.content and "已受理" in done.content


def test_residents_do_not_share_conversations(rig: WeChatRig) -> None:
    rig.sim.text(OPENID, "我要信访")
    other = rig.sim.text(OTHER, "王建国")
    assert "没听明白" in other.content  # not the first resident's petition form
    assert len({s for s, _ in rig.bot.calls}) == 2


def test_retries_of_one_message_are_processed_once(rig: WeChatRig) -> None:
    msg_id = rig.sim.next_msg_id()
    first = rig.sim.text(OPENID, "观象山庄3号楼2单元501", msg_id=msg_id)
    # WeChat did not get our answer and retries, three times, with new nonces.
    retries = [rig.sim.text(OPENID, "观象山庄3号楼2单元501", msg_id=msg_id) for _ in range(3)]
    assert len(rig.bot.calls) == 1
    # Each retry carries the same answer again, since WeChat evidently missed it.
    assert all(r.content == first.content for r in retries)
    # Events have no MsgId: FromUserName + CreateTime identifies them.
    xml = rig.sim.message(OPENID, "event", Event="CLICK", EventKey="要带什么材料")
    rig.sim.send(rig.sim.prepare(xml))
    rig.sim.send(rig.sim.prepare(xml))
    assert [t for _, t in rig.bot.calls].count("要带什么材料") == 1


@pytest.mark.slow
def test_slow_reply_goes_out_through_the_customer_service_api(
    make_rig: Callable[..., WeChatRig],
) -> None:
    rig = make_rig("aes", reply_timeout=0.4)
    rig.bot.delays["观象山庄3号楼2单元501"] = 1.2
    msg_id = rig.sim.next_msg_id()
    reply = rig.sim.text(OPENID, "观象山庄3号楼2单元501", msg_id=msg_id)
    assert (reply.status, reply.body) == (200, "success")
    assert reply.elapsed < 1.0
    # A retry meanwhile does not start the bot again.
    retry = rig.sim.text(OPENID, "观象山庄3号楼2单元501", msg_id=msg_id)
    assert retry.body == "success"
    sent = rig.api.wait_for_sent(1)
    assert len(sent) == 1
    assert sent[0]["touser"] == OPENID and sent[0]["msgtype"] == "text"
    assert "消防验收" in sent[0]["text"]["content"]
    assert "【1】接下来怎么办" in sent[0]["text"]["content"]
    assert len(rig.bot.calls) == 1
    # The numbered choices of a late reply work as well.
    rig.sim.text(OPENID, "2")
    assert rig.bot.calls[-1][1] == "要带什么材料"


@pytest.mark.slow
def test_token_fetched_once_for_many_slow_replies_and_refreshed_when_expired(
    make_rig: Callable[..., WeChatRig],
) -> None:
    rig = make_rig("raw", reply_timeout=0.2)
    rig.bot.delays["慢"] = 0.6
    threads = [
        threading.Thread(target=rig.sim.text, args=(f"oFbZt5x1Yz-Slow{i:05d}", "慢"))
        for i in range(5)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent = rig.api.wait_for_sent(5)
    assert len(sent) == 5
    assert rig.api.token_requests == 1
    # WeChat says the token expired: the channel refreshes it and the reply still arrives.
    rig.api.expire_all_tokens()
    rig.sim.text(OPENID, "慢")
    assert len(rig.api.wait_for_sent(6)) == 6
    assert rig.api.token_requests == 2
    rig.api.fail_next = [40001]
    rig.sim.text(OPENID, "慢")
    assert len(rig.api.wait_for_sent(7)) == 7
    assert rig.api.token_requests == 3


@pytest.mark.slow
def test_transient_api_errors_are_retried(make_rig: Callable[..., WeChatRig]) -> None:
    rig = make_rig("raw", reply_timeout=0.2)
    rig.bot.delays["慢"] = 0.4
    rig.api.fail_next = [-1, 45009]
    rig.sim.text(OPENID, "慢")
    sent = rig.api.wait_for_sent(1)
    assert len(sent) == 1 and sent[0]["text"]["content"] == "让您久等了。"
    assert rig.api.send_attempts == 3


@pytest.mark.slow
def test_undeliverable_reply_is_logged_without_the_openid(
    make_rig: Callable[..., WeChatRig], caplog: pytest.LogCaptureFixture
) -> None:
    store = MemoryStore()
    rig = make_rig("raw", store=store, reply_timeout=0.2)
    rig.bot.delays["慢"] = 0.4
    rig.api.fail_next = [45015]  # the resident has been silent for more than 48 hours
    with caplog.at_level(logging.INFO):
        rig.sim.text(OPENID, "慢")
        for _ in range(100):
            if "NOT delivered" in caplog.text:
                break
            threading.Event().wait(0.05)
    assert "NOT delivered" in caplog.text and "errcode=45015" in caplog.text
    assert rig.api.send_attempts == 1  # not retryable
    dead = asyncio.run(store.get("undelivered"))
    assert dead and json.loads(dead.split("\n")[-1])["errcode"] == 45015
    assert OPENID not in caplog.text
    assert rig.channel.user_tag(OPENID) in caplog.text


def test_openids_never_reach_logs_or_the_bot(
    rig: WeChatRig, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        rig.sim.event(OPENID, "subscribe")
        rig.sim.text(OPENID, "查房本进度")
        rig.sim.text(OPENID, "观象山庄3号楼2单元501")
        msg_id = rig.sim.next_msg_id()
        rig.sim.text(OPENID, "你好", msg_id=msg_id)
        rig.sim.text(OPENID, "你好", msg_id=msg_id)
    assert OPENID not in caplog.text
    assert all(OPENID not in s for s, _ in rig.bot.calls)


@pytest.mark.slow
def test_replicas_share_the_token_and_the_dedupe_through_redis(
    wechat_api: FakeWeChatApi, make_rig: Callable[..., WeChatRig]
) -> None:
    url = redis_url_for_tests()
    if url is None:
        pytest.skip("Redis unreachable")
    prefix = f"wechat-test-{uuid.uuid4().hex[:8]}:"
    # Two replicas (two servers, two stores on one Redis) behind WeChat's load balancing.
    a = make_rig("aes", store=RedisStore(url, prefix), reply_timeout=0.2)
    b = make_rig("aes", store=RedisStore(url, prefix), reply_timeout=0.2)
    for rig in (a, b):
        rig.bot.delays["慢"] = 0.5
    msg_id = a.sim.next_msg_id()
    assert a.sim.text(OPENID, "慢", msg_id=msg_id).body == "success"
    # The retry lands on the other replica: still processed once.
    assert b.sim.text(OPENID, "慢", msg_id=msg_id).body == "success"
    threads = [
        threading.Thread(target=rig.sim.text, args=(f"oFbZt5x1Yz-Rep{i:05d}", "慢"))
        for i, rig in enumerate([a, b, a, b])
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wechat_api.wait_for_sent(5)) == 5
    assert len(a.bot.calls) + len(b.bot.calls) == 5
    assert wechat_api.token_requests == 1
    # A replayed nonce is refused by the other replica too.
    first = a.sim.prepare(a.sim.message(OPENID, "text", Content="你好"), nonce="77777")
    assert a.sim.send(first).status == 200
    forged = b.sim.prepare(
        b.sim.message(OPENID, "text", Content="我要信访"),
        nonce="77777",
        timestamp=int(first.params["timestamp"]),
    )
    assert b.sim.send(forged).status == 403


def test_config_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from channels.wechat import WeChatConfig

    monkeypatch.setenv("WECHAT_TOKEN", "tok")
    monkeypatch.setenv("WECHAT_APPID", "wxenv")
    monkeypatch.setenv("WECHAT_API_BASE", "http://127.0.0.1:1")
    monkeypatch.setenv("WECHAT_REPLY_TIMEOUT", "3.5")
    monkeypatch.setenv("REDIS_URL", "redis://example:6379/0")
    cfg = WeChatConfig.from_env({"appid": "wxcreds"})
    assert (cfg.token, cfg.appid, cfg.api_base, cfg.reply_timeout) == (
        "tok",
        "wxcreds",
        "http://127.0.0.1:1",
        3.5,
    )
    assert cfg.redis_url == "redis://example:6379/0"
    channel = WeChatInput.from_credentials(None)
    assert channel.name() == "wechat" and channel.crypto is None


def test_reply_too_long_for_a_passive_answer_goes_out_in_pieces(rig: WeChatRig) -> None:
    lines = [f"第{i}条：" + "证缴分离政策说明。" * 8 for i in range(1, 21)]
    rig.bot.extra_reply["政策全文"] = "\n".join(lines)
    reply = rig.sim.text(OPENID, "政策全文")
    assert reply.body == "success"
    total = len("\n".join(lines))
    assert total > 1200  # needs three messages of at most 600 characters
    sent = rig.api.wait_for_sent(3)
    pieces = [m["text"]["content"] for m in sent]
    assert len(pieces) == 3 and all(len(p) <= 600 for p in pieces)
    assert "\n".join(pieces) == "\n".join(lines)
