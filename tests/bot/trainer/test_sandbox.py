"""The conversation step against a given sandbox api (TRAINER_SANDBOX_API_URL, how compose
runs it: no api environment on the bot image): the trainer starts only the action server and
Rasa, logs in as the sandbox's clerk for the cases that publish a department's answer, and
counts passes and failures with the suite's own runner (slow: real servers)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml
from trainer import config, conversations, sandbox

from ..conftest import running_api
from .conftest import REPO, newest_model

pytestmark = pytest.mark.slow

STAFF_CASE = "loop_check_shows_the_department_answer"


def _cases(target: Path) -> Path:
    """One case that needs a clerk, one that does not, and one that must fail."""
    target.mkdir()
    loop = yaml.safe_load((REPO / "tests/conversations/cases/loop.yml").read_text("utf-8"))
    staff = next(c for c in loop["conversations"] if c["id"] == STAFF_CASE)
    status = yaml.safe_load((REPO / "tests/conversations/cases/status.yml").read_text("utf-8"))
    plain = status["conversations"][0]
    broken: dict[str, Any] = {
        "id": "trainer_test_expects_the_impossible",
        "about": "a case no model passes",
        "turns": [
            {"say": "你好", "expect": {"contains_all": ["这句话机器人永远不会说"]}},
            {"say": "谢谢", "expect": {"contains_any": ["不客气", "不用谢", "客气"]}},
        ],
    }
    document = {"conversations": [staff, plain, broken]}
    (target / "cases.yml").write_text(yaml.safe_dump(document, allow_unicode=True), "utf-8")
    return target


def test_the_suite_runs_against_a_given_sandbox_api(tmp_path: Path) -> None:
    """Against the real api (fresh SQLite, demo ledger) started apart: the staff case runs
    with the clerk's login, the impossible one fails, nothing is skipped."""
    token = secrets.token_urlsafe(24)
    password = secrets.token_urlsafe(16)
    with running_api(extra_env={"SERVICE_TOKEN": token, "PETITION_RATE_PER_IP": "1000"}) as api:
        api.cli(
            "-m",
            "app.staff.cli",
            "create-user",
            "--username",
            "sandbox_clerk",
            "--role",
            "clerk",
            f"--password={password}",
        )
        settings = config.load(
            {
                "TRAINER_SANDBOX_API_URL": api.url,
                "TRAINER_SANDBOX_SERVICE_TOKEN": token,
                "TRAINER_SANDBOX_STAFF_USERNAME": "sandbox_clerk",
                "TRAINER_SANDBOX_STAFF_PASSWORD": password,
                "TRAINER_CASES_DIR": str(_cases(tmp_path / "cases")),
            }
        )
        with sandbox.backend(settings, tmp_path / "sandbox") as box:
            assert "api" not in box.procs  # the given api, none of its own
            assert box.staff_token
            with sandbox.rasa_server(box, newest_model(), "live") as webhook:
                result = conversations.run_suite(
                    settings.conversations_dir, settings.cases_dir, box, webhook
                )
    assert result["skipped"] == []
    assert result["total"] == 3
    assert result["failed"] == ["trainer_test_expects_the_impossible"], result
    assert result["passed"] == 2
