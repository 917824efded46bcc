"""Run the resident-side conversation cases (tests/conversations/cases/*.yml) against a stack.

Each case is a new resident talking to the running helpdesk over Rasa's REST channel; every
turn is checked against its own expectations and against the checks every turn must pass
(a non-empty reply, no repeated sentence or message, at most 700 characters unless the
resident asked for details). Used by tests/conversations/test_conversations.py and by
bench/conversation_bench.py.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

CASES_DIR = Path(__file__).resolve().parent / "cases"
MAX_CHARS = 700
MAX_CHARS_DETAILS = 1000
_SENTENCE = re.compile(r"[^。！？!?\n]+")
_PETITION = re.compile(r"XF-\d{8}-\d{4}")


@dataclass
class TurnResult:
    """One turn: what was sent, what came back, what failed."""

    said: str
    replies: list[dict[str, Any]]
    failures: list[str] = field(default_factory=list)

    @property
    def chars(self) -> int:
        """Characters of the whole reply: all bubbles and button titles."""
        return len(reply_text(self.replies, payloads=False))


def load_cases(directory: Path = CASES_DIR) -> list[dict[str, Any]]:
    """Every conversation of every case file, in file order."""
    cases: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for conversation in data.get("conversations") or []:
            conversation["file"] = path.name
            cases.append(conversation)
    return cases


def reply_text(replies: list[dict[str, Any]], payloads: bool = False) -> str:
    """The reply's texts and button titles joined (what the resident reads)."""
    parts: list[str] = []
    for reply in replies:
        if reply.get("text"):
            parts.append(str(reply["text"]))
        for button in reply.get("buttons") or []:
            parts.append(str(button.get("title") or ""))
            if payloads:
                parts.append(str(button.get("payload") or ""))
    return "\n".join(parts)


def _matches(pattern: str, haystack: str) -> bool:
    if pattern.startswith("re:"):
        return re.search(pattern[3:], haystack) is not None
    return pattern in haystack


def check_turn(expect: dict[str, Any], replies: list[dict[str, Any]]) -> list[str]:
    """The failed expectations of one turn (its own and the ones every turn has)."""
    failures: list[str] = []
    shown = reply_text(replies)
    titles = [str(b.get("title") or "") for r in replies for b in (r.get("buttons") or [])]
    if not shown.strip():
        return ["empty reply"]
    texts = [str(r.get("text") or "") for r in replies if r.get("text")]
    if len(texts) != len(set(texts)):
        failures.append("a message is repeated")
    seen: set[str] = set()
    for text in texts:
        for sentence in _SENTENCE.findall(text):
            key = sentence.strip(" ，,：:·")
            if len(key) >= 4 and key in seen:
                failures.append(f"sentence repeated: {key}")
            seen.add(key)
    limit = MAX_CHARS_DETAILS if expect.get("details") else MAX_CHARS
    limit = min(limit, int(expect.get("max_chars") or limit))
    if len(shown) > limit:
        failures.append(f"reply has {len(shown)} characters (limit {limit})")
    any_of = expect.get("contains_any") or []
    if any_of and not any(_matches(p, shown) for p in any_of):
        failures.append(f"contains none of {any_of}")
    for pattern in expect.get("contains_all") or []:
        if not _matches(pattern, shown):
            failures.append(f"does not contain {pattern!r}")
    for pattern in expect.get("not_contains") or []:
        if _matches(pattern, shown):
            failures.append(f"contains {pattern!r}")
    wanted = expect.get("buttons_any") or []
    if wanted and not any(_matches(p, t) for p in wanted for t in titles):
        failures.append(f"no button like {wanted} (buttons: {titles})")
    if expect.get("no_buttons") and titles:
        failures.append(f"has buttons {titles}")
    if expect.get("petition_number") and not _PETITION.search(shown):
        failures.append("no petition number")
    return failures


def _fill(value: Any, variables: dict[str, str]) -> Any:
    if isinstance(value, str):
        for key, replacement in variables.items():
            value = value.replace("{" + key + "}", replacement)
        return value
    if isinstance(value, list):
        return [_fill(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, variables) for k, v in value.items()}
    return value


def setup_variables(
    api_url: str, setup: dict[str, Any] | None, staff_token: str | None = None
) -> dict[str, str]:
    """Create what a case needs before it starts (a petition, a department's published answer)
    and name it for the turns."""
    variables: dict[str, str] = {}
    petition = (setup or {}).get("petition")
    if petition:
        body = {"consent": True, "channel": "bot", **petition}
        response = httpx.post(f"{api_url}/api/v1/petitions", json=body, timeout=30)
        response.raise_for_status()
        variables["petition_number"] = response.json()["number"]
    answer = (setup or {}).get("answer")
    if answer:
        if not staff_token or not variables.get("petition_number"):
            raise ValueError("setup.answer needs setup.petition and a staff token")
        publish_answer(api_url, variables["petition_number"], answer, staff_token)
    return variables


def publish_answer(api_url: str, number: str, answer: dict[str, str], staff_token: str) -> None:
    """Staff send the petition to the department and record its answer, published to the
    resident at once (through the staff API, as the console does)."""
    headers = {"Authorization": f"Bearer {staff_token}"}
    base = f"{api_url}/api/v1/staff/petitions/{number}"
    with httpx.Client(headers=headers, timeout=30) as staff:
        detail = staff.get(base)
        detail.raise_for_status()
        department = answer["department"]
        assigned = staff.post(
            f"{base}/assign",
            json={"departments": [department], "version": detail.json()["version"]},
        )
        assigned.raise_for_status()
        answered = staff.post(
            f"{base}/answer",
            json={
                "answer": answer["text"],
                "resident_text": answer.get("resident_text") or answer["text"],
                "department": department,
                "version": assigned.json()["version"],
                "publish": True,
            },
        )
        answered.raise_for_status()


def run_conversation(
    webhook: str,
    api_url: str,
    case: dict[str, Any],
    client: httpx.Client,
    staff_token: str | None = None,
) -> list[TurnResult]:
    """Talk through one case; every turn is run and checked (a failure does not stop it)."""
    variables = setup_variables(api_url, case.get("setup"), staff_token)
    sender = f"conv-{case['id']}-{uuid.uuid4().hex[:8]}"
    results: list[TurnResult] = []
    previous: list[dict[str, Any]] = []
    for turn in case["turns"]:
        turn = _fill(turn, variables)
        failures: list[str] = []
        if "tap" in turn:
            buttons = [b for r in previous for b in (r.get("buttons") or [])]
            chosen = next((b for b in buttons if turn["tap"] in str(b.get("title"))), None)
            if chosen is None:
                results.append(TurnResult(f"[tap {turn['tap']}]", [], ["no such button to tap"]))
                continue
            message = str(chosen.get("payload") or chosen.get("title"))
            said = f"[tap {chosen.get('title')}]"
        else:
            message = str(turn["say"])
            said = message
        response = client.post(webhook, json={"sender": sender, "message": message})
        replies = list(response.json()) if response.status_code == 200 else []
        if response.status_code != 200:
            failures.append(f"HTTP {response.status_code}")
        failures += check_turn(turn.get("expect") or {}, replies)
        results.append(TurnResult(said, replies, failures))
        previous = replies
    return results


def transcript(results: list[TurnResult]) -> str:
    """The conversation as text, failures marked, for a test's failure message."""
    lines = []
    for result in results:
        lines.append(f"居民: {result.said}")
        for line in reply_text(result.replies).splitlines():
            lines.append(f"  机器人: {line}")
        for failure in result.failures:
            lines.append(f"  !! {failure}")
    return "\n".join(lines)
