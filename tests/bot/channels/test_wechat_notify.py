"""What the WeChat channel does for the api (docs/loop.md): notifications through
`POST /webhooks/wechat/notify` (customer-service inside the 48-hour window, template outside,
one attempt, de-duplicated by notification id), contact registration, and silence while a clerk
has taken the conversation over. Driven by the simulated WeChat platform and a recording api."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from wechat_double.harness import WeChatRig, redis_url_for_tests
from wechat_double.simulator import TEST_SERVICE_TOKEN, WINDOW_SECONDS

from channels.wechat_store import RedisStore

OPENID = "oFbZt5x1Yz-NotifyResident0001"
TEXT = "您的信访件XF-20261123-0007已转交住建局办理，预计12月8日前答复。"
TEMPLATE = {
    "template_id": "TPL-petition-progress",
    "data": {
        "first": {"value": "您的信访件有新进展"},
        "keyword1": {"value": "XF-20261123-0007"},
        "keyword2": {"value": "办理中"},
    },
}
_ids = iter(range(int(time.time() * 1000) % 10**9, 10**10))


def next_id() -> int:
    """A notification id no other test used."""
    return next(_ids)


def notify(
    rig: WeChatRig,
    note_id: int,
    mode: str = "custom",
    text: str = TEXT,
    openid: str = OPENID,
    token: str | None = TEST_SERVICE_TOKEN,
    **extra: Any,
) -> httpx.Response:
    """The api's worker asking the channel to deliver one notification."""
    body: dict[str, Any] = {
        "notification_id": note_id,
        "openid": openid,
        "text": text,
        "mode": mode,
        "template": TEMPLATE if mode == "template" else None,
    }
    body.update(extra)
    headers = {"Authorization": f"Service {token}"} if token is not None else {}
    return httpx.post(rig.server.base + "/notify", json=body, headers=headers, timeout=15)


def test_custom_message_inside_the_window(rig: WeChatRig) -> None:
    rig.sim.text(OPENID, "查信访进度")  # the resident wrote: the 48-hour window is open
    rig.api.advance(WINDOW_SECONDS - 3600)  # 47 hours later, still inside
    resp = notify(rig, next_id())
    assert resp.status_code == 200
    assert resp.json() == {"delivered": True, "errcode": 0, "duplicate": False}
    assert rig.api.sent[-1] == {"touser": OPENID, "msgtype": "text", "text": {"content": TEXT}}
    assert rig.api.templates == []


def test_outside_the_window_45015_then_template(rig: WeChatRig) -> None:
    rig.sim.text(OPENID, "你好")
    rig.api.advance(WINDOW_SECONDS + 60)
    note = next_id()
    first = notify(rig, note)
    assert first.status_code == 200
    assert first.json() == {"delivered": False, "errcode": 45015, "duplicate": False}
    assert rig.api.send_attempts == 1  # one attempt: the api decides what comes next
    assert rig.api.sent == []
    # The caller falls back to a template message for the same notification.
    second = notify(rig, note, mode="template")
    assert second.json() == {"delivered": True, "errcode": 0, "duplicate": False}
    assert rig.api.templates == [
        {"touser": OPENID, "template_id": TEMPLATE["template_id"], "data": TEMPLATE["data"]}
    ]
    # Delivered: asking again sends nothing.
    again = notify(rig, note, mode="template")
    assert again.json() == {"delivered": True, "errcode": 0, "duplicate": True}
    assert len(rig.api.templates) == 1 and rig.api.template_attempts == 1


def test_a_resident_who_never_wrote_is_outside_the_window(rig: WeChatRig) -> None:
    resp = notify(rig, next_id(), openid="oFbZt5x1Yz-NeverWrote000001")
    assert resp.json()["errcode"] == 45015 and resp.json()["delivered"] is False


def test_an_unknown_template_is_reported_not_retried(rig: WeChatRig) -> None:
    rig.api.template_ids = {"TPL-some-other"}
    resp = notify(rig, next_id(), mode="template")
    assert resp.json() == {"delivered": False, "errcode": 40037, "duplicate": False}
    assert rig.api.template_attempts == 1


@pytest.mark.parametrize("outage", ["http", "errcode"])
def test_wechat_down_is_answered_not_raised_and_not_logged_in_clear(
    rig: WeChatRig, caplog: pytest.LogCaptureFixture, outage: str
) -> None:
    rig.sim.text(OPENID, "你好")
    rig.api.down = outage
    note = next_id()
    with caplog.at_level(logging.DEBUG):
        started = time.monotonic()
        down = notify(rig, note)
        elapsed = time.monotonic() - started
        assert down.status_code == 200
        assert down.json() == {"delivered": False, "errcode": -1, "duplicate": False}
        assert elapsed < 2, "no internal backoff: the api's queue retries"
        template = notify(rig, next_id(), mode="template")
        assert template.json() == {"delivered": False, "errcode": -1, "duplicate": False}
        # WeChat is back: the same notification goes out on the api's retry, once.
        rig.api.down = None
        back = notify(rig, note)
        assert back.json() == {"delivered": True, "errcode": 0, "duplicate": False}
    assert [m["text"]["content"] for m in rig.api.sent] == [TEXT]
    assert "not delivered" in caplog.text and rig.channel.user_tag(OPENID) in caplog.text
    assert OPENID not in caplog.text
    assert TEXT not in caplog.text and "XF-20261123-0007" not in caplog.text


def test_an_expired_token_is_refreshed_within_the_one_attempt(rig: WeChatRig) -> None:
    rig.sim.text(OPENID, "你好")
    assert notify(rig, next_id()).json()["delivered"] is True
    fetches = rig.api.token_requests
    rig.api.expire_all_tokens()
    assert notify(rig, next_id()).json() == {"delivered": True, "errcode": 0, "duplicate": False}
    rig.api.fail_next = [40001]
    assert notify(rig, next_id(), mode="template").json()["delivered"] is True
    assert rig.api.token_requests == fetches + 2
    # A busy WeChat is not retried here (no backoff inside one call).
    rig.api.fail_next = [45009]
    assert notify(rig, next_id()).json() == {
        "delivered": False,
        "errcode": 45009,
        "duplicate": False,
    }


def test_same_notification_twice_is_sent_once(rig: WeChatRig) -> None:
    rig.sim.text(OPENID, "你好")
    note = next_id()
    assert notify(rig, note).json() == {"delivered": True, "errcode": 0, "duplicate": False}
    dup = notify(rig, note)
    assert dup.status_code == 200
    assert dup.json() == {"delivered": True, "errcode": 0, "duplicate": True}
    assert len(rig.api.sent) == 1 and rig.api.send_attempts == 1
    # Another id with the same text is another notification.
    assert notify(rig, next_id()).json()["duplicate"] is False
    assert len(rig.api.sent) == 2


def test_concurrent_calls_for_one_notification_send_it_once(rig: WeChatRig) -> None:
    rig.sim.text(OPENID, "你好")
    rig.api.send_delay = 0.5
    note = next_id()
    answers: list[dict[str, Any]] = []
    threads = [
        threading.Thread(target=lambda: answers.append(notify(rig, note).json())) for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(rig.api.sent) == 1
    assert sorted(a["duplicate"] for a in answers) == [False, True, True]
    assert sum(a["delivered"] and not a["duplicate"] for a in answers) == 1
    # Once it is through, the late callers' retries are duplicates.
    assert notify(rig, note).json() == {"delivered": True, "errcode": 0, "duplicate": True}


def test_long_text_goes_in_pieces_and_a_retry_resumes(rig: WeChatRig) -> None:
    rig.sim.text(OPENID, "你好")
    lines = [f"第{i}条：" + "部门答复内容说明。" * 8 for i in range(1, 21)]
    text = "\n".join(lines)
    note = next_id()
    rig.api.fail_next = [None, 45047]  # the second piece is refused (too many messages)
    failed = notify(rig, note, text=text)
    assert failed.json() == {"delivered": False, "errcode": 45047, "duplicate": False}
    assert len(rig.api.sent) == 1
    done = notify(rig, note, text=text)
    assert done.json() == {"delivered": True, "errcode": 0, "duplicate": False}
    pieces = [m["text"]["content"] for m in rig.api.sent]
    assert len(pieces) == 3 and all(len(p) <= 600 for p in pieces)
    assert "\n".join(pieces) == text  # nothing sent twice, nothing missing


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Service wrong-token"},
        {"Authorization": f"Bearer {TEST_SERVICE_TOKEN}"},
        {"Authorization": f"Service {TEST_SERVICE_TOKEN}x"},
        {"Authorization": "Service"},
    ],
)
def test_notify_needs_the_service_token(rig: WeChatRig, headers: dict[str, str]) -> None:
    rig.sim.text(OPENID, "你好")
    body = {"notification_id": next_id(), "openid": OPENID, "text": TEXT, "mode": "custom"}
    resp = httpx.post(rig.server.base + "/notify", json=body, headers=headers)
    assert resp.status_code == 401
    assert resp.json() == {"code": "bad_service_token", "message": "服务令牌无效。"}
    assert rig.api.sent == [] and rig.api.send_attempts == 0


@pytest.mark.parametrize(
    "change",
    [
        {"notification_id": "7"},
        {"notification_id": True},
        {"openid": "o<script>"},
        {"mode": "news"},
        {"text": "   "},
        {"mode": "template", "template": None},
        {"mode": "template", "template": {"template_id": "TPL", "data": "x"}},
    ],
)
def test_malformed_notifications_are_refused(rig: WeChatRig, change: dict[str, Any]) -> None:
    body: dict[str, Any] = {
        "notification_id": next_id(),
        "openid": OPENID,
        "text": TEXT,
        "mode": "custom",
        "template": None,
    }
    body.update(change)
    resp = httpx.post(
        rig.server.base + "/notify",
        json=body,
        headers={"Authorization": f"Service {TEST_SERVICE_TOKEN}"},
    )
    assert resp.status_code == 400 and set(resp.json()) == {"code", "message"}
    assert rig.api.send_attempts == 0 and rig.api.template_attempts == 0


def test_production_refuses_the_development_token(make_rig: Callable[..., WeChatRig]) -> None:
    rig = make_rig(service_token="dev-only-service-token-change-me", environment="production")
    resp = notify(rig, next_id(), token="dev-only-service-token-change-me")
    assert resp.status_code == 503 and rig.api.send_attempts == 0
    rig.sim.text(OPENID, "你好")
    time.sleep(0.3)
    assert rig.contacts is not None and rig.contacts.calls == []


@pytest.mark.slow
def test_replicas_share_the_notification_dedupe_through_redis(
    make_rig: Callable[..., WeChatRig],
) -> None:
    url = redis_url_for_tests()
    if url is None:
        pytest.skip("Redis unreachable")
    prefix = f"wechat-test-{uuid.uuid4().hex[:8]}:"
    a = make_rig("aes", store=RedisStore(url, prefix))
    b = make_rig("aes", store=RedisStore(url, prefix))
    a.sim.text(OPENID, "你好")
    note = next_id()
    assert notify(a, note).json()["duplicate"] is False
    assert notify(b, note).json() == {"delivered": True, "errcode": 0, "duplicate": True}
    assert len(a.api.sent) == 1


# --- contact registration -------------------------------------------------------------


def test_contact_registered_once_an_hour_per_resident(rig: WeChatRig) -> None:
    assert rig.contacts is not None
    rig.sim.text(OPENID, "查信访进度")
    rig.sim.text(OPENID, "你好")
    rig.sim.voice(OPENID, "我的信访怎么样了")
    calls = rig.contacts.wait_for(1)
    time.sleep(0.3)  # a second registration would have arrived by now
    assert len(rig.contacts.calls) == 1
    call = calls[0]
    assert call.path == "/api/v1/conversations/contact"
    assert call.headers["authorization"] == f"Service {TEST_SERVICE_TOKEN}"
    assert call.headers["x-sender-id"] == rig.channel.sender_id(OPENID)
    assert call.headers["x-sender-id"] == rig.bot.calls[0][0]  # the id Rasa knows them by
    assert call.body == {"channel": "wechat", "openid": OPENID}
    # Another resident is registered on their own.
    other = "oFbZt5x1Yz-NotifyResident0002"
    rig.sim.event(other, "subscribe")
    assert len(rig.contacts.wait_for(2)) == 2
    assert rig.contacts.calls[1].body["openid"] == other
    # Unsubscribing is not a message: nothing registered.
    rig.sim.event("oFbZt5x1Yz-NotifyResident0003", "unsubscribe")
    time.sleep(0.3)
    assert len(rig.contacts.calls) == 2


def test_contact_registered_again_after_the_interval(make_rig: Callable[..., WeChatRig]) -> None:
    rig = make_rig(contact_interval=0.5)
    assert rig.contacts is not None
    rig.sim.text(OPENID, "你好")
    rig.sim.text(OPENID, "你好")
    assert len(rig.contacts.wait_for(1)) == 1
    time.sleep(0.7)
    rig.sim.text(OPENID, "你好")
    assert len(rig.contacts.wait_for(2)) == 2


def test_a_slow_api_never_delays_the_reply(rig: WeChatRig) -> None:
    assert rig.contacts is not None
    rig.contacts.delay = 2.0
    reply = rig.sim.text(OPENID, "观象山庄3号楼2单元501")
    assert "消防验收" in reply.content and reply.elapsed < 1.0
    assert len(rig.contacts.wait_for(1)) == 1


def test_a_failing_api_is_logged_with_the_tag_only_and_tried_again_later(
    make_rig: Callable[..., WeChatRig], caplog: pytest.LogCaptureFixture
) -> None:
    rig = make_rig(api_url="http://127.0.0.1:9", contact_timeout=0.5)  # nothing listens
    with caplog.at_level(logging.DEBUG):
        reply = rig.sim.text(OPENID, "观象山庄3号楼2单元501")
        assert "消防验收" in reply.content
        for _ in range(60):
            if "contact not registered" in caplog.text:
                break
            time.sleep(0.05)
    assert "contact not registered" in caplog.text
    assert rig.channel.user_tag(OPENID) in caplog.text and OPENID not in caplog.text
    # The api answering an error: logged too, the reply unaffected.
    second = make_rig()
    assert second.contacts is not None
    second.contacts.status = 500
    with caplog.at_level(logging.DEBUG):
        assert "地址" in second.sim.text(OPENID, "查房本进度").content
        second.contacts.wait_for(1)
        time.sleep(0.2)
    assert "contact not registered (http 500)" in caplog.text and OPENID not in caplog.text


# --- a clerk has taken over -----------------------------------------------------------


def test_takeover_marker_sends_nothing_to_the_resident(rig: WeChatRig) -> None:
    rig.bot.taken_over.add(rig.channel.sender_id(OPENID))
    reply = rig.sim.text(OPENID, "你们什么时候给我答复")
    assert (reply.status, reply.body) == (200, "success")
    assert rig.bot.calls[-1][1] == "你们什么时候给我答复"  # the bot saw it (the api keeps it)
    time.sleep(0.3)
    assert rig.api.sent == [] and rig.api.send_attempts == 0
    # Another resident, not taken over, still hears the bot; nothing as an error reply either.
    assert "地址" in rig.sim.text("oFbZt5x1Yz-NotTakenOver00001", "查房本进度").content


@pytest.mark.slow
def test_takeover_marker_after_a_slow_turn_sends_nothing_later(
    make_rig: Callable[..., WeChatRig],
) -> None:
    rig = make_rig("raw", reply_timeout=0.2)
    rig.bot.taken_over.add(rig.channel.sender_id(OPENID))
    rig.bot.delays["慢"] = 0.5
    assert rig.sim.text(OPENID, "慢").body == "success"
    time.sleep(0.8)
    assert rig.api.sent == [] and rig.api.send_attempts == 0
    # A clerk's message reaches the resident through /notify meanwhile.
    staff = notify(rig, next_id(), text="您好，我是住建局的王老师，您的情况我们在核实。")
    assert staff.json()["delivered"] is True
    assert rig.api.sent[-1]["text"]["content"].startswith("您好，我是住建局")


def test_a_turn_without_any_message_still_gets_the_error_reply(rig: WeChatRig) -> None:
    # The bot producing nothing at all is a failure (action server down), not a takeover.
    original = rig.bot.fake.reply
    rig.bot.fake.reply = lambda sender, text: [] if text == "静默" else original(sender, text)
    reply = rig.sim.text(OPENID, "静默")
    assert reply.content is not None and "系统开小差" in reply.content
