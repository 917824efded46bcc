"""The WeChat channel driven by a simulated WeChat platform: verification, signatures,
security mode, replayed nonces, malicious XML, the message types it handles."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from wechat_double.harness import WeChatRig
from wechat_double.simulator import (
    ACCOUNT,
    TEST_AES_KEY,
    TEST_APPID,
    TEST_TOKEN,
    Prepared,
    sha1_sorted,
    wx_decrypt,
    wx_encrypt,
    xml_of,
)

from channels.wechat import GREETING, ONLY_TEXT_REPLY, VOICE_UNCLEAR_REPLY
from channels.wechat_crypto import WeChatCrypto, WeChatProtocolError, parse_xml

OPENID = "oFbZt5x1Yz-AbCdEfGhIjKlMnOpQ"


def test_crypto_interoperates_with_the_independent_simulator() -> None:
    ours = WeChatCrypto(TEST_TOKEN, TEST_AES_KEY, TEST_APPID)
    for message in ("<xml><Content><![CDATA[你好]]></Content></xml>", "x" * 31, "y" * 32, ""):
        assert ours.decrypt(wx_encrypt(TEST_AES_KEY, TEST_APPID, message)) == message
        assert wx_decrypt(TEST_AES_KEY, TEST_APPID, ours.encrypt(message)) == message
    other = wx_encrypt(TEST_AES_KEY, "wxSomeOtherAccount", "<xml/>")
    with pytest.raises(WeChatProtocolError):
        ours.decrypt(other)
    with pytest.raises(WeChatProtocolError):
        ours.decrypt("bm90IGEgYmxvY2s=")
    with pytest.raises(ValueError):
        WeChatCrypto(TEST_TOKEN, TEST_AES_KEY[:40], TEST_APPID)


def test_url_verification_echoes_only_with_a_good_signature(rig: WeChatRig) -> None:
    ok = rig.sim.verify("5837397224531866436")
    assert ok.status_code == 200 and ok.text == "5837397224531866436"
    assert rig.sim.verify("123", good=False).status_code == 403
    assert rig.sim.verify("123", timestamp=int(time.time()) - 3600).status_code == 403


@pytest.mark.parametrize("mode", ["aes", "raw"])
def test_subscribe_greets_with_the_menu_and_numbers_choose(
    make_rig: Callable[..., WeChatRig], mode: str
) -> None:
    rig = make_rig(mode)
    reply = rig.sim.event(OPENID, "subscribe")
    assert reply.status == 200
    if mode == "aes":
        assert "<Encrypt>" in reply.body and "查房本进度" not in reply.body
    assert reply.fields["ToUserName"] == OPENID and reply.fields["FromUserName"] == ACCOUNT
    assert reply.fields["MsgType"] == "text"
    assert reply.content.startswith(GREETING)
    assert "【1】查房本进度" in reply.content and "【4】我要信访" in reply.content
    assert rig.bot.calls == []
    answer = rig.sim.text(OPENID, "1")
    assert rig.bot.calls[-1][1] == "查房本进度"
    assert "地址" in answer.content


def test_unsubscribe_and_other_events_are_acknowledged_silently(rig: WeChatRig) -> None:
    for event in ("unsubscribe", "VIEW", "LOCATION"):
        reply = rig.sim.event(OPENID, event)
        assert (reply.status, reply.body) == (200, "success")
    assert rig.bot.calls == []


def test_menu_click_sends_its_key_as_text(rig: WeChatRig) -> None:
    reply = rig.sim.event(OPENID, "CLICK", EventKey="要带什么材料")
    assert rig.bot.calls[-1][1] == "要带什么材料"
    assert "身份证" in reply.content


def test_voice_uses_the_recognition_text(rig: WeChatRig) -> None:
    reply = rig.sim.voice(OPENID, "我要信访")
    assert rig.bot.calls[-1][1] == "我要信访"
    assert "称呼" in reply.content
    assert rig.sim.voice(OPENID, "").content == VOICE_UNCLEAR_REPLY


@pytest.mark.parametrize(
    ("msg_type", "extra"),
    [
        ("image", {"PicUrl": "http://example.invalid/a.jpg", "MediaId": "m"}),
        ("location", {"Location_X": "36.06", "Location_Y": "120.38", "Scale": "15"}),
        ("video", {"MediaId": "m", "ThumbMediaId": "t"}),
        ("link", {"Title": "t", "Description": "d", "Url": "http://example.invalid"}),
    ],
)
def test_other_message_types_get_a_polite_text_only_reply(
    rig: WeChatRig, msg_type: str, extra: dict[str, str]
) -> None:
    reply = rig.sim.send(rig.sim.prepare(rig.sim.message(OPENID, msg_type, **extra)))
    assert reply.content == ONLY_TEXT_REPLY
    assert rig.bot.calls == []


def test_typed_slash_commands_are_neutralised(rig: WeChatRig) -> None:
    rig.sim.text(OPENID, "/restart")
    rig.sim.text(OPENID, ' /inform{"id_number":"37020319800101123X"}')
    assert [t for _, t in rig.bot.calls] == [
        "／restart",
        '／inform{"id_number":"37020319800101123X"}',
    ]


def test_too_long_text_gets_a_polite_reply_without_the_bot(rig: WeChatRig) -> None:
    reply = rig.sim.text(OPENID, "房" * 501)
    assert "500" in reply.content
    assert rig.bot.calls == []


def test_reply_text_containing_cdata_end_is_escaped(rig: WeChatRig) -> None:
    tricky = "注意]]><MsgType>image</MsgType>]]>结束"
    rig.bot.extra_reply["特殊"] = tricky
    for mode in ("aes", "raw"):
        rig.sim.mode = mode
        reply = rig.sim.text(OPENID, "特殊")
        assert reply.content == tricky
        assert reply.fields["MsgType"] == "text"


def test_bad_signatures_are_refused_before_the_bot(rig: WeChatRig) -> None:
    prepared = rig.sim.prepare(rig.sim.message(OPENID, "text", Content="查房本进度"))
    bad_url_sig = Prepared({**prepared.params, "signature": "0" * 40}, prepared.body)
    assert rig.sim.send(bad_url_sig).status == 403
    bad_msg_sig = Prepared({**prepared.params, "msg_signature": "f" * 40}, prepared.body)
    assert rig.sim.send(bad_msg_sig).status == 403
    missing = Prepared({k: v for k, v in prepared.params.items() if k != "signature"}, b"")
    assert rig.sim.send(missing).status == 403
    stale = rig.sim.prepare(
        rig.sim.message(OPENID, "text", Content="查房本进度"), timestamp=int(time.time()) - 301
    )
    assert rig.sim.send(stale).status == 403
    future = rig.sim.prepare(
        rig.sim.message(OPENID, "text", Content="查房本进度"), timestamp=int(time.time()) + 400
    )
    assert rig.sim.send(future).status == 403
    assert rig.bot.calls == []
    # The untouched request still works.
    assert rig.sim.send(prepared).status == 200
    assert len(rig.bot.calls) == 1


def test_ciphertext_for_another_appid_is_refused(rig: WeChatRig) -> None:
    ts, nonce = str(int(time.time())), "99887766"
    encrypted = wx_encrypt(
        TEST_AES_KEY, "wxAnotherAccount00", rig.sim.message(OPENID, "text", Content="你好")
    )
    params = {
        "signature": sha1_sorted(TEST_TOKEN, ts, nonce),
        "timestamp": ts,
        "nonce": nonce,
        "encrypt_type": "aes",
        "msg_signature": sha1_sorted(TEST_TOKEN, ts, nonce, encrypted),
    }
    body = xml_of({"ToUserName": ACCOUNT, "Encrypt": encrypted}).encode()
    assert rig.sim.send(Prepared(params, body)).status == 400
    assert rig.bot.calls == []


@pytest.mark.parametrize("mode", ["aes", "raw"])
def test_replayed_nonce_with_another_body_is_refused(
    make_rig: Callable[..., WeChatRig], mode: str
) -> None:
    rig = make_rig(mode)
    first = rig.sim.prepare(rig.sim.message(OPENID, "text", Content="查房本进度"), nonce="424242")
    assert rig.sim.send(first).status == 200
    # An eavesdropper reuses the captured timestamp, nonce and signatures with its own body.
    forged_inner = rig.sim.message(OPENID, "text", Content="我要信访")
    if mode == "aes":
        encrypted = wx_encrypt(TEST_AES_KEY, TEST_APPID, forged_inner)
        ts, nonce = first.params["timestamp"], first.params["nonce"]
        params = {**first.params, "msg_signature": sha1_sorted(TEST_TOKEN, ts, nonce, encrypted)}
        forged = Prepared(params, xml_of({"ToUserName": ACCOUNT, "Encrypt": encrypted}).encode())
    else:
        forged = Prepared(first.params, forged_inner.encode())
    assert rig.sim.send(forged).status == 403
    # The exact same request again (what a retry looks like) is not processed a second time.
    again = rig.sim.send(first)
    assert again.status == 200
    assert [t for _, t in rig.bot.calls] == ["查房本进度"]


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>
<xml><ToUserName>gh</ToUserName><FromUserName>oX</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&d;</Content><MsgId>1</MsgId></xml>"""
XXE = b"""<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>gh</ToUserName><FromUserName>oX</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&x;</Content><MsgId>2</MsgId></xml>"""
UNDECLARED = (
    b"<xml><FromUserName>oX</FromUserName><MsgType>text</MsgType><Content>&x;</Content></xml>"
)


@pytest.mark.parametrize("body", [BILLION_LAUGHS, XXE, UNDECLARED, b"<xml><a>", b"not xml"])
def test_malicious_xml_is_refused_before_the_bot(
    make_rig: Callable[..., WeChatRig], body: bytes
) -> None:
    for mode in ("raw", "aes"):
        rig = make_rig(mode)
        valid = rig.sim.prepare("<xml/>")
        if mode == "aes":
            # Hidden inside a correctly signed and encrypted envelope.
            ts, nonce = valid.params["timestamp"], valid.params["nonce"]
            encrypted = wx_encrypt(TEST_AES_KEY, TEST_APPID, body.decode())
            params = {
                **valid.params,
                "msg_signature": sha1_sorted(TEST_TOKEN, ts, nonce, encrypted),
            }
            prepared = Prepared(
                params, xml_of({"ToUserName": ACCOUNT, "Encrypt": encrypted}).encode()
            )
        else:
            prepared = Prepared(valid.params, body)
        reply = rig.sim.send(prepared)
        assert reply.status == 400, (mode, reply.body)
        assert "passwd" not in reply.body and "root:" not in reply.body
        assert rig.bot.calls == []


def test_oversize_body_is_refused(make_rig: Callable[..., WeChatRig]) -> None:
    rig = make_rig("raw", max_body_bytes=4096)
    big = rig.sim.message(OPENID, "text", Content="房" * 3000)
    assert rig.sim.send(rig.sim.prepare(big)).status == 413
    assert rig.bot.calls == []


def test_parse_xml_refuses_dtds_and_keeps_cdata() -> None:
    fields = parse_xml(b"<xml><Content><![CDATA[a<b>&c]]></Content><N>1</N></xml>")
    assert fields == {"Content": "a<b>&c", "N": "1"}
    for bad in (BILLION_LAUGHS, XXE, b"<root/>", "<xml>".encode("utf-16")):
        with pytest.raises(WeChatProtocolError):
            parse_xml(bad)
    with pytest.raises(WeChatProtocolError):
        parse_xml(b"<xml>" + b"a" * 70_000 + b"</xml>")


def test_unconfigured_channel_answers_503(make_rig: Callable[..., WeChatRig]) -> None:
    rig = make_rig("raw", token="", encoding_aes_key="")
    assert rig.sim.verify("1").status_code == 503
    assert rig.sim.text(OPENID, "你好").status == 503


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_messages_are_limited_per_openid_not_per_address(
    make_rig: Callable[..., WeChatRig], backend: str
) -> None:
    """All WeChat traffic comes from Tencent's addresses: the limit is per resident (openid).
    Past it the resident gets a polite reply and the bot is not run; another resident, from
    the very same address, is answered as usual. In Redis the replicas share the count."""
    import uuid

    from wechat_double.harness import redis_url_for_tests

    from channels.wechat import RATE_LIMITED_REPLY
    from channels.wechat_store import RedisStore

    store = None
    if backend == "redis":
        url = redis_url_for_tests()
        assert url is not None, "Redis on 127.0.0.1:6379 is part of this machine"
        store = RedisStore(url, f"wechat-rate-{uuid.uuid4().hex[:8]}:")
    rig = make_rig("aes", store=store, rate_per_openid=3)
    if int(time.time()) % 60 > 55:
        time.sleep(61 - int(time.time()) % 60)  # the four messages within one minute
    replies = [rig.sim.text(OPENID, f"你好{i}").content for i in range(4)]
    assert RATE_LIMITED_REPLY not in replies[:3] and replies[3] == RATE_LIMITED_REPLY
    assert [t for _, t in rig.bot.calls] == ["你好0", "你好1", "你好2"]
    other = "oFbZt5x1Yz-AnotherResident0"
    assert rig.sim.text(other, "你好").content != RATE_LIMITED_REPLY
    assert len(rig.bot.calls) == 4
