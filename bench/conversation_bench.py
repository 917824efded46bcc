"""Conversation suite as a benchmark: share of turns passing, reply lengths.

    bot/.venv/bin/python bench/conversation_bench.py

Starts the whole helpdesk on free loopback ports (as the conversation tests do), talks through
every case of tests/conversations/cases/ and prints: conversations and turns passing, the
share of turns passing, reply length p50/p95/max in characters (all bubbles and button
titles), and the failed turns.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
sys.path.insert(0, str(ROOT / "tests" / "conversations"))

from conftest import SUITE_LIMITS  # noqa: E402
from e2e_stack import running_stack  # noqa: E402
from runner import load_cases, run_conversation  # noqa: E402


def _percentile(values: list[int], share: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def main() -> int:
    """Run every case once and print the figures."""
    cases = load_cases()
    turns = passed = conversations_passed = 0
    lengths: list[int] = []
    status_lengths: list[int] = []  # first status answers: the ones with the 详细原因 button
    failed: list[str] = []
    started = time.monotonic()
    with (
        running_stack(tracker="memory", extra_env=SUITE_LIMITS) as stack,
        httpx.Client(timeout=60) as client,
    ):
        for case in cases:
            results = run_conversation(stack.webhook, stack.api_url, case, client)
            ok = True
            for index, result in enumerate(results, start=1):
                turns += 1
                lengths.append(result.chars)
                titles = [b.get("title") for r in result.replies for b in r.get("buttons") or []]
                if "详细原因" in titles:
                    status_lengths.append(result.chars)
                if result.failures:
                    ok = False
                    failed.append(f"{case['id']} turn {index}: {'; '.join(result.failures)}")
                else:
                    passed += 1
            conversations_passed += ok
    seconds = time.monotonic() - started
    print(f"conversations: {conversations_passed}/{len(cases)} pass")
    print(f"turns: {passed}/{turns} pass ({passed / max(turns, 1):.1%})")
    print(
        f"reply length (chars): p50 {_percentile(lengths, 0.5)}, "
        f"p95 {_percentile(lengths, 0.95)}, max {max(lengths, default=0)}"
    )
    if status_lengths:
        p50, p95 = _percentile(status_lengths, 0.5), _percentile(status_lengths, 0.95)
        print(
            f"first status answers ({len(status_lengths)}): p50 {p50}, p95 {p95}, "
            f"max {max(status_lengths)} chars"
        )
    print(f"mean reply length: {statistics.mean(lengths):.0f} chars; run took {seconds:.0f} s")
    for line in failed:
        print(f"  failed: {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
