"""Masking of ID numbers, mobiles and names in texts and in realistic serialised events."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BOT_DIR = Path(__file__).resolve().parents[2] / "bot"
if str(BOT_DIR) not in sys.path:
    sys.path.insert(0, str(BOT_DIR))

from privacy.redact import (  # noqa: E402
    contains_sensitive,
    mask_text,
    names_in_events,
    redact_events,
)

ID = "37020319800101123X"
PHONE = "13812345678"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (ID, "**************123X"),
        (f"身份证{ID}，查一下", "身份证**************123X，查一下"),
        ("370203 19800101 1234", "****** ******** 1234"),
        ("３７０２０３１９８００１０１１２３４", "**************１２３４"),
        (PHONE, "138****5678"),
        (f"电话{PHONE}谢谢", "电话138****5678谢谢"),
        ("138 1234 5678", "138 **** 5678"),
        ("138-1234-5678", "138-****-5678"),
        ("+8613812345678", "+86138****5678"),
        ("１３８１２３４５６７８", "１３８****５６７８"),
        ("一三八一二三四五六七八", "一三八****五六七八"),
        ("6222021234567890123", "***************0123"),
    ],
)
def test_mask_text_masks_ids_and_mobiles(text: str, expected: str) -> None:
    assert mask_text(text) == expected
    assert len(mask_text(text)) == len(text)


@pytest.mark.parametrize(
    "text",
    [
        "观象山庄3号楼2单元501",
        "观象山庄3-2-501",
        "XF-20261123-0007",
        "合同号HT2019-00123",
        "1381234567",  # ten digits: not a mobile
        "2381234567812",  # thirteen digits, not starting like a mobile
        "enc:gAAAAABl13812345678370203198001011234",
    ],
)
def test_mask_text_leaves_other_text_alone(text: str) -> None:
    assert mask_text(text) == text
    assert not contains_sensitive(text)


def _user_event(text: str, entities: list[dict]) -> dict:
    return {
        "event": "user",
        "timestamp": 1763884800.5,
        "text": text,
        "parse_data": {
            "text": text,
            "intent": {"name": "inform", "confidence": 0.98},
            "entities": entities,
            "intent_ranking": [{"name": "inform", "confidence": 0.98}],
        },
        "input_channel": "rest",
        "message_id": "d2f1c0c5e51a4d3f9c6f0d1b8e4a7c21",
        "metadata": {"wechat": {"from_user": "x", "echo": f"电话{PHONE}"}},
    }


def test_redact_events_masks_user_bot_slot_and_keeps_enc_references() -> None:
    text = f"我叫张建国，身份证{ID}，电话{PHONE}"
    start_id = text.index(ID)
    events = [
        {"event": "action", "name": "action_listen", "timestamp": 1.0},
        _user_event(
            text,
            [
                {"entity": "person_name", "start": 2, "end": 5, "value": "张建国"},
                {"entity": "id_number", "start": start_id, "end": start_id + 18, "value": ID},
                {
                    "entity": "phone",
                    "start": text.index(PHONE),
                    "end": text.index(PHONE) + 11,
                    "value": PHONE,
                },
            ],
        ),
        {"event": "slot", "name": "id_number", "value": ID, "timestamp": 2.0},
        {"event": "slot", "name": "id_number", "value": "enc:gAAAAABkXyZ", "timestamp": 2.1},
        {"event": "slot", "name": "phone", "value": PHONE, "timestamp": 2.2},
        {"event": "slot", "name": "person_name", "value": "张建国", "timestamp": 2.3},
        {"event": "slot", "name": "candidates", "value": [{"owner": "张建国", "tel": PHONE}]},
        {
            "event": "bot",
            "text": f"好的，张建国，我们会打{PHONE}联系您。",
            "data": {"buttons": [{"title": f"不是{PHONE}", "payload": "都不是"}]},
            "metadata": {"utter_action": "utter_ok"},
        },
    ]
    before = json.dumps(events, ensure_ascii=False)
    masked = redact_events(events)
    assert json.dumps(events, ensure_ascii=False) == before  # input not mutated
    dumped = json.dumps(masked, ensure_ascii=False)
    for secret in (ID, PHONE, "张建国", "1234567"):
        assert secret not in dumped
    user = masked[1]
    assert user["text"] == "我叫张**，身份证**************123X，电话138****5678"
    assert user["parse_data"]["text"] == user["text"]
    values = {e["entity"]: e["value"] for e in user["parse_data"]["entities"]}
    assert values == {
        "person_name": "张**",
        "id_number": "**************123X",
        "phone": "138****5678",
    }
    for entity in user["parse_data"]["entities"]:  # offsets still point at the masked span
        assert user["text"][entity["start"] : entity["end"]] == entity["value"]
    assert user["message_id"] == events[1]["message_id"]
    assert user["timestamp"] == events[1]["timestamp"]
    assert masked[3]["value"] == "enc:gAAAAABkXyZ"
    assert masked[2]["value"] == "**************123X"
    assert masked[4]["value"] == "138****5678"
    assert masked[5]["value"] == "张**"
    assert masked[6]["value"] == [{"owner": "张**", "tel": "138****5678"}]
    assert masked[7]["text"] == "好的，张**，我们会打138****5678联系您。"
    assert masked[7]["data"]["buttons"][0]["payload"] == "都不是"


def test_name_answer_to_a_form_question_is_masked_through_the_slot() -> None:
    # The form asked for the name; the answer carries no entity, only a from_text slot.
    events = [
        _user_event("李秀兰", []),
        {"event": "slot", "name": "person_name", "value": "李秀兰"},
    ]
    assert names_in_events(events) == {"李秀兰"}
    masked = redact_events(events)
    assert masked[0]["text"] == "李**"
    assert masked[1]["value"] == "李**"


def test_name_slot_holding_a_reference_reveals_nothing_and_is_kept() -> None:
    events = [{"event": "slot", "name": "person_name", "value": "enc:abc"}]
    assert names_in_events(events) == set()
    assert redact_events(events) == events


def test_name_slot_can_keep_its_value_while_texts_are_masked() -> None:
    events = [
        _user_event(
            "我叫李秀兰", [{"entity": "person_name", "start": 2, "end": 5, "value": "李秀兰"}]
        ),
        {"event": "slot", "name": "person_name", "value": "李秀兰"},
        {"event": "bot", "text": "李秀兰您好", "data": {}},
    ]
    masked = redact_events(events, mask_name_slots=False)
    assert masked[0]["text"] == "我叫李**"
    assert masked[0]["parse_data"]["entities"][0]["value"] == "李**"
    assert masked[1]["value"] == "李秀兰"
    assert masked[2]["text"] == "李**您好"


def test_typed_answer_to_the_name_question_is_masked_even_when_the_slot_is_sealed() -> None:
    events = [
        {"event": "slot", "name": "requested_slot", "value": "person_name"},
        {"event": "bot", "text": "请问您怎么称呼（姓名）？", "data": {}},
        {"event": "action", "name": "action_listen"},
        _user_event("刘桂芳", []),
        {"event": "slot", "name": "person_name", "value": "enc:gAAAAABsealed"},
        {"event": "slot", "name": "requested_slot", "value": "phone"},
        _user_event("我姓刘", []),  # no longer the name question: kept
    ]
    masked = redact_events(events)
    assert masked[3]["text"] == "刘**"
    assert masked[3]["parse_data"]["text"] == "刘**"
    assert masked[4]["value"] == "enc:gAAAAABsealed"
    assert masked[6]["text"] == "我姓刘"


def test_longer_answer_to_the_name_question_is_masked_only_where_it_was_typed() -> None:
    events = [
        {"event": "slot", "name": "requested_slot", "value": "person_name"},
        _user_event("我叫欧阳建国", []),
        {"event": "slot", "name": "person_name", "value": "enc:x"},
        {"event": "bot", "text": "我叫小帮手，我叫欧阳建国的话…", "data": {}},
    ]
    masked = redact_events(events)
    assert masked[1]["text"] == "我*****"
    assert masked[3]["text"] == events[3]["text"]  # not a bare name: not masked elsewhere
