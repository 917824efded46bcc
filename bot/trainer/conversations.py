"""The resident-side conversation suite (tests/conversations/cases/) against one model in the
sandbox, with the suite's own runner (tests/conversations/runner.py: what a passing case is
stays defined in one place)."""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from trainer.data import files_hash
from trainer.errors import TrainerError
from trainer.sandbox import Sandbox

log = logging.getLogger("trainer")


@lru_cache(maxsize=4)
def load_runner(directory: Path) -> ModuleType:
    """tests/conversations/runner.py (or the one in `directory`) as a module."""
    path = directory / "runner.py"
    if not path.is_file():
        raise TrainerError("找不到对话测试的运行器（tests/conversations/runner.py）")
    spec = importlib.util.spec_from_file_location("fangben_conversation_runner", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def cases_hash(cases_dir: Path) -> str:
    """Hash of the case files (which suite a result belongs to)."""
    return files_hash(sorted(cases_dir.glob("*.yml")), cases_dir)


HEARTBEAT_EVERY = 20


def run_suite(
    conversations_dir: Path,
    cases_dir: Path,
    box: Sandbox,
    webhook: str,
    heartbeat: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Every case once: `{passed, total, failed: [case ids], skipped: [case ids]}`. A case
    that needs staff (a published answer) without a staff token in the sandbox is skipped.
    `heartbeat` is called every HEARTBEAT_EVERY cases (the job's progress report)."""
    runner = load_runner(conversations_dir)
    cases = runner.load_cases(cases_dir)
    if not cases:
        raise TrainerError("没有对话测试用例")
    failed: list[str] = []
    skipped: list[str] = []
    passed = 0
    with httpx.Client(timeout=60) as client:
        for number, case in enumerate(cases, 1):
            if heartbeat is not None and number % HEARTBEAT_EVERY == 0:
                heartbeat()
            needs_staff = bool((case.get("setup") or {}).get("answer"))
            if needs_staff and not box.staff_token:
                skipped.append(case["id"])
                continue
            try:
                results = runner.run_conversation(
                    webhook, box.api_url, case, client, staff_token=box.staff_token
                )
                ok = not any(r.failures for r in results)
            except (httpx.HTTPError, ValueError) as exc:
                log.warning(
                    "conversation case %s could not run (%s)", case["id"], type(exc).__name__
                )
                ok = False
            if ok:
                passed += 1
            else:
                failed.append(case["id"])
    return {
        "passed": passed,
        "total": len(cases) - len(skipped),
        "failed": failed,
        "skipped": skipped,
        "cases_hash": cases_hash(cases_dir),
    }
