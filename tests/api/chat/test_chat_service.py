"""Pure helpers of the web chat: masking, neutralising, signing."""

from __future__ import annotations

import pytest

from app.chat import service as chat_service
from app.core.errors import AppError
from app.core.security import mask_personal


def test_mask_personal_masks_ids_and_phones_only() -> None:
    text = "我叫张三，身份证11010119900307123X，电话 13912345678，合同号 HT2019-000123"
    masked = mask_personal(text)
    assert "11010119900307123X" not in masked and "**************123X" in masked
    assert "139****5678" in masked
    assert "HT2019-000123" in masked
    # A 3-2-501 style address and a petition number keep their digits.
    assert mask_personal("观象山庄3-2-501 XF-20261123-0007") == ("观象山庄3-2-501 XF-20261123-0007")


@pytest.mark.parametrize(
    ("typed", "sent"),
    [("/restart", "／restart"), (' /greet{"a":1}', '／greet{"a":1}'), ("a/b", "a/b")],
)
def test_neutralize(typed: str, sent: str) -> None:
    assert chat_service.neutralize(typed) == sent


def test_signed_ids_roundtrip_and_refuse_forgeries() -> None:
    cid, token = chat_service.new_conversation()
    assert chat_service.read_conversation(token) == cid
    for bad in (None, "", cid, token + "x", "x" * 24 + "." + token.split(".", 1)[1]):
        with pytest.raises(AppError) as err:
            chat_service.read_conversation(bad)
        assert err.value.status_code == 403
    assert chat_service.rasa_sender_id(cid) != chat_service.rasa_sender_id(
        chat_service.new_conversation()[0]
    )


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("身份证370202198001011234。", "身份证**************1234。"),
        ("身份证 3702 0219 8001 0112 34", "身份证 **** **** **** **12 34"),
        ("身份证３７０２０２１９８００１０１１２３Ｘ！", "身份证**************１２３Ｘ！"),
        ("电话139 1234 5678", "电话139 **** 5678"),
        ("电话139-1234-5678", "电话139-****-5678"),
        ("打+86 13912345678找我", "打+86 139****5678找我"),
        ("手机１３９１２３４５６７８", "手机１３９****５６７８"),
    ],
)
def test_mask_personal_catches_what_residents_type(typed: str, shown: str) -> None:
    """Spaces, dashes, +86 and full-width digits (issue 13); the length and the resident's own
    punctuation are kept."""
    assert mask_personal(typed) == shown
    assert len(mask_personal(typed)) == len(typed)
