"""Parsing helpers and the sealed references kept in slots."""

from __future__ import annotations

import pytest

from actions import text
from actions.sensitive import is_sealed, seal, unseal

VALID_ID = "11010519491231002X"


def test_valid_id_number_checks_the_check_digit() -> None:
    assert text.valid_id_number(VALID_ID)
    assert not text.valid_id_number("110105194912310021")
    assert not text.valid_id_number("11010519491231002")


def test_find_id_number_in_text_with_full_width_digits() -> None:
    assert text.find_id_number("我的身份证是１１０１０５１９４９１２３１００２ｘ") == VALID_ID


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("138 1234 5678", "13812345678"), ("+86-13812345678", "13812345678"), ("12345678901", None)],
)
def test_clean_phone(raw: str, expected: str | None) -> None:
    assert text.clean_phone(raw) == expected


def test_petition_number_is_normalised() -> None:
    assert text.find_petition_number("编号xf20261123 0007") == "XF-20261123-0007"
    assert text.find_petition_number("XF-2026112-0007") is None


def test_name_from_text() -> None:
    assert text.name_from_text("我叫李桂兰。") == "李桂兰"
    assert text.name_from_text("你们这个破系统到底管不管用") is None
    assert text.name_from_text("13812345678") is None


def test_mask_numbers_hides_ids_and_phones() -> None:
    masked = text.mask_numbers(f"我电话13812345678，身份证{VALID_ID}")
    assert "13812345678" not in masked and VALID_ID not in masked
    assert "138****5678" in masked and masked.endswith("002X")


def test_seal_round_trip_hides_the_value() -> None:
    token = seal(VALID_ID)
    assert is_sealed(token) and VALID_ID not in token
    assert unseal(token) == VALID_ID
    assert seal(token) == token
    assert seal(VALID_ID) != token  # Fernet tokens are randomised


def test_unseal_refuses_tampered_or_foreign_values() -> None:
    token = seal("13812345678")
    assert unseal(token[:-4] + "AAAA") is None
    assert unseal("13812345678") is None
    assert unseal(None) is None


@pytest.mark.parametrize(
    ("typed", "junk"),
    [
        ("了吗呢吧啊", True),
        ("的的的的的", True),
        ("哈哈哈", True),
        ("嗯嗯", False),
        ("好的", False),
        ("王秀英", False),
        ("好好好", False),
        ("111", False),
        ("101", False),
    ],
)
def test_gibberish_is_particles_only(typed: str, junk: bool) -> None:
    assert text.is_gibberish(typed) is junk


def test_the_read_back_summary_keeps_the_residents_punctuation() -> None:
    """The petition read-back shows what was typed: Chinese commas stay Chinese."""
    assert text.summary("交房六年了，房本办不下来。") == "交房六年了，房本办不下来。"
    assert text.summary("交房六年了，" * 10, limit=10) == "交房六年了，交房六…"
