"""The policy catalogue in policies/: valid, complete, cross-checked, and loud when broken."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from app.core.config import REPO_DIR
from app.policy import catalogue as catalogue_module
from app.policy.catalogue import (
    BLOCKER_CODES,
    FAQ_CODES,
    Catalogue,
    CatalogueError,
    get_catalogue,
    load_catalogue,
    reload_catalogue,
)

POLICIES = REPO_DIR / "policies"
CJK = "\u4e00-\u9fff\u3000-\u303f\uff00-\uffef"


@pytest.fixture(scope="module")
def cat() -> Catalogue:
    """The repository's catalogue, loaded straight from policies/."""
    return load_catalogue(POLICIES)


def _resident_texts(cat: Catalogue) -> list[tuple[str, str]]:
    texts: list[tuple[str, str]] = []
    for code, b in cat.blockers.items():
        texts += [(f"blockers.{code}.explanation", b.explanation), (code, b.time_limit)]
        texts += [(f"blockers.{code}.resident_next_steps", s) for s in b.resident_next_steps]
    for code, t in cat.faq.items():
        texts += [(f"faq.{code}.title", t.title), (f"faq.{code}.answer", t.answer)]
    texts += [(f"policies.{p.code}", p.summary) for p in cat.policies.values()]
    return texts


def test_every_contract_code_is_in_the_catalogue(cat: Catalogue) -> None:
    """All 19 blocker codes and all 8 FAQ topics of DESIGN.md, and nothing else."""
    assert set(cat.blockers) == set(BLOCKER_CODES) and len(BLOCKER_CODES) == 19
    assert set(cat.faq) == set(FAQ_CODES) and len(FAQ_CODES) == 8


def test_blockers_reference_known_departments_and_policies(cat: Catalogue) -> None:
    """Each blocker names existing departments (default first) and existing policies."""
    for code, blocker in cat.blockers.items():
        assert blocker.departments, code
        assert all(d in cat.departments for d in blocker.departments), code
        assert all(p in cat.policies for p in blocker.policies), code
        assert cat.default_department(code).code == blocker.departments[0]
        assert blocker.resident_next_steps and blocker.staff_next_steps, code


def test_only_the_buyers_own_tax_is_the_buyers_fault(cat: Catalogue) -> None:
    """Developer-side blockers never blame the buyer."""
    at_fault = {code for code, b in cat.blockers.items() if b.buyer_at_fault}
    assert at_fault == {"buyer_tax_unpaid"}


def test_contract_departments_exist(cat: Catalogue) -> None:
    """The departments DESIGN.md names are found by their Chinese names."""
    for name in ["住建局", "自然资源局", "税务局", "人防办", "不动产登记中心", "征收办", "法院"]:
        assert cat.department_by_name(name) is not None, name


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("住建局", "housing_bureau"),
        ("住房和城乡建设局", "housing_bureau"),
        ("县住房和城乡建设局", "housing_bureau"),
        (" 国土局 ", "natural_resources"),
        ("自然资源和规划局", "natural_resources"),
        ("同江市人民法院", "court"),
        ("房管局", "property_bureau"),
        ("消防", "fire_rescue"),
        ("XX区不动产登记中心", "registry_center"),
        ("环保局", "ecology_bureau"),
        ("tax_bureau", "tax_bureau"),
        ("住建", None),
        ("法院门口的小卖部", None),
        ("", None),
    ],
)
def test_department_by_name(cat: Catalogue, text: str, code: str | None) -> None:
    """Ledger names, aliases and place prefixes resolve; unrelated text does not."""
    found = cat.department_by_name(text)
    assert (found.code if found else None) == code


def test_time_limits_agree_with_the_settings(cat: Catalogue) -> None:
    """Stated day counts appear in their sentence; the notice limit is the legal minimum."""
    for code, blocker in cat.blockers.items():
        if blocker.time_limit_working_days is not None:
            assert str(blocker.time_limit_working_days) in blocker.time_limit, code
    s = cat.settings
    assert s.first_answer_working_days == 5
    assert s.public_notice_working_days >= 15
    assert cat.blockers["developer_uncooperative"].time_limit_working_days == (
        s.public_notice_working_days
    )
    assert cat.blockers["developer_tax_unpaid"].time_limit_working_days == (
        s.tax_opinion_working_days
    )


def test_resident_texts_are_short_and_clean(cat: Catalogue) -> None:
    """Phone-friendly answers, no stray ASCII spaces inside Chinese (folded YAML lines)."""
    for topic in cat.faq.values():
        assert len(topic.answer) <= 220, topic.code
    for where, text in _resident_texts(cat):
        assert not re.search(f"[{CJK}] [{CJK}]", text), where
        assert text == text.strip(), where


def test_guidance_covers_the_bots_follow_ups(cat: Catalogue) -> None:
    """Materials for both registration situations, where to apply, next steps per case."""
    g = cat.guidance
    assert {"transfer_registration", "initial_pending"} <= set(g.materials)
    assert any("身份证" in item for item in g.materials["transfer_registration"].items)
    assert any("不动产登记" in item for item in g.where_to_apply.items)
    assert {"initial_done", "initial_pending"} <= set(g.next_steps)


def test_get_catalogue_is_cached_and_reloadable() -> None:
    """The shared catalogue is loaded once; reload gives a fresh, equal one."""
    first = get_catalogue()
    assert get_catalogue() is first
    try:
        fresh = reload_catalogue()
        assert fresh is not first and get_catalogue() is fresh
        assert set(fresh.blockers) == set(first.blockers)
    finally:
        catalogue_module._cached = first


# --- broken copies --------------------------------------------------------------------------


def _edit_yaml(path: Path, change: Callable[[dict], None]) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def _drop_mortgage(d: dict) -> None:
    del d["blockers"]["mortgage"]


def _unknown_department(d: dict) -> None:
    d["blockers"]["mortgage"]["departments"][0] = "bank_of_mars"


def _unknown_policy(d: dict) -> None:
    d["faq"]["resettlement"]["policies"] = ["free_houses"]


def _extra_field(d: dict) -> None:
    d["faq"]["resettlement"]["audio"] = "x.mp3"


def _wrong_type(d: dict) -> None:
    d["blockers"]["fees_unpaid"]["buyer_at_fault"] = "有时候"


def _short_notice(d: dict) -> None:
    d["public_notice_working_days"] = 10


def _shared_alias(d: dict) -> None:
    d["departments"][1]["aliases"].append("住建局")


def _missing_materials(d: dict) -> None:
    del d["materials"]["initial_pending"]


@pytest.mark.parametrize(
    ("stem", "change", "expected"),
    [
        ("blockers", _drop_mortgage, ["blockers.yml", "mortgage"]),
        ("blockers", _unknown_department, ["blockers.yml", "departments[0]", "bank_of_mars"]),
        ("faq", _unknown_policy, ["faq.yml", "faq.resettlement.policies[0]", "free_houses"]),
        ("faq", _extra_field, ["faq.yml", "faq.resettlement", "audio"]),
        ("blockers", _wrong_type, ["blockers.yml", "fees_unpaid.buyer_at_fault"]),
        ("settings", _short_notice, ["settings.yml", "public_notice_working_days"]),
        ("departments", _shared_alias, ["departments.yml", "住建局", "housing_bureau"]),
        ("guidance", _missing_materials, ["guidance.yml", "materials", "initial_pending"]),
    ],
)
def test_a_broken_copy_fails_naming_file_and_field(
    tmp_path: Path, stem: str, change: Callable[[dict], None], expected: list[str]
) -> None:
    """Each kind of mistake is refused with a message that says where it is."""
    copy = tmp_path / "policies"
    shutil.copytree(POLICIES, copy)
    load_catalogue(copy)  # the untouched copy is fine
    _edit_yaml(copy / f"{stem}.yml", change)
    with pytest.raises(CatalogueError) as err:
        load_catalogue(copy)
    for part in expected:
        assert part in str(err.value), (part, str(err.value))


def test_duplicate_yaml_key_and_missing_file_are_refused(tmp_path: Path) -> None:
    """A code written twice is not silently overwritten; a missing file is named."""
    copy = tmp_path / "policies"
    shutil.copytree(POLICIES, copy)
    faq = copy / "faq.yml"
    again = "  resettlement:\n    title: 重复\n    answer: 重复的回答，不应覆盖前一个。\n"
    faq.write_text(faq.read_text(encoding="utf-8") + again, encoding="utf-8")
    with pytest.raises(CatalogueError, match=r"faq\.yml.*duplicate key 'resettlement'"):
        load_catalogue(copy)
    faq.unlink()
    with pytest.raises(CatalogueError, match=r"faq\.yml: file is missing"):
        load_catalogue(copy)


def test_the_service_refuses_to_start_with_a_broken_catalogue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Starting the app with an invalid policies/ fails with the file and field."""
    from app.core.config import settings
    from app.main import create_app

    copy = tmp_path / "policies"
    shutil.copytree(POLICIES, copy)
    _edit_yaml(copy / "blockers.yml", _unknown_department)
    monkeypatch.setattr(settings, "policies_dir", copy)
    monkeypatch.setattr(catalogue_module, "_cached", None)
    with pytest.raises(CatalogueError, match=r"blockers\.yml.*bank_of_mars"):
        with TestClient(create_app()):
            pass
