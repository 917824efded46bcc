"""The resident-side conversation suite, against the real running stack (slow)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_stack import Stack
from runner import load_cases, run_conversation, transcript

CASES = load_cases()
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
_RESULTS: list[dict[str, Any]] = []


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    """One HTTP client for all conversations."""
    with httpx.Client(timeout=60) as http:
        yield http
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "conversations.json").write_text(
        json.dumps(_RESULTS, ensure_ascii=False, indent=1), encoding="utf-8"
    )


def test_there_are_enough_cases_and_every_turn_asserts_something() -> None:
    """At least 80 multi-turn conversations, unique ids, an assertion on every turn."""
    ids = [case["id"] for case in CASES]
    assert len(ids) >= 80
    assert len(ids) == len(set(ids))
    for case in CASES:
        assert len(case["turns"]) >= 2, case["id"]
        for turn in case["turns"]:
            assert ("say" in turn) != ("tap" in turn), case["id"]
            expect = turn.get("expect") or {}
            own = set(expect) - {"details", "max_chars"}
            assert own or "max_chars" in expect, f"{case['id']}: a turn without assertions"


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_conversation(
    stack: Stack, client: httpx.Client, case: dict[str, Any], request: pytest.FixtureRequest
) -> None:
    """Every turn of the conversation passes its own checks and the checks of every turn."""
    needs_staff = bool((case.get("setup") or {}).get("answer"))
    token = request.getfixturevalue("staff_token") if needs_staff else None
    results = run_conversation(stack.webhook, stack.api_url, case, client, staff_token=token)
    _RESULTS.append(
        {
            "id": case["id"],
            "turns": [{"said": r.said, "chars": r.chars, "failures": r.failures} for r in results],
        }
    )
    failed = [r for r in results if r.failures]
    assert not failed, f"{case['about']}\n{transcript(results)}"
