"""The bot's test payloads (tests/bot/payloads.py) hold to the api's OpenAPI schema.

The bot reads one spelling of each field; its unit tests mock the api with these payloads. Each
payload is validated against the response schema the api publishes, with unknown fields refused,
so a renamed or misspelt field fails here rather than in a resident's conversation.
"""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from app.main import app

PAYLOADS_FILE = Path(__file__).resolve().parents[2] / "bot" / "payloads.py"


def _payloads() -> Any:
    spec = importlib.util.spec_from_file_location("bot_payloads", PAYLOADS_FILE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _closed(schema: Any) -> Any:
    """The schema with every object closed to fields it does not name."""
    if isinstance(schema, dict):
        schema = {k: _closed(v) for k, v in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_closed(v) for v in schema]
    return schema


@pytest.fixture(scope="module")
def components() -> dict[str, Any]:
    """The api's OpenAPI component schemas, closed."""
    return _closed(copy.deepcopy(app.openapi()["components"]["schemas"]))


def _errors(components: dict[str, Any], name: str, payload: Any) -> list[str]:
    root = {"$ref": f"#/components/schemas/{name}", "components": {"schemas": components}}
    validator = Draft202012Validator(root, format_checker=FormatChecker())
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(payload)]


P = _payloads()


@pytest.mark.parametrize(
    ("schema", "payload"),
    [
        ("LookupRead", P.unit_match()),
        ("LookupRead", P.unit_match(done=True, transfer="done")),
        ("LookupRead", P.AMBIGUOUS),
        ("LookupRead", P.NONE),
        ("ProjectStatusRead", P.status()),
        ("ProjectStatusRead", P.status(done=True)),
        ("GuidanceRead", P.GUIDANCE),
        ("PetitionStatusRead", P.PETITION_STATUS),
        ("PetitionLookupList", P.PETITION_LIST),
        ("PetitionStatusRead", P.PETITION_ANSWERED),
        ("PetitionStatusRead", P.PETITION_CLOSED),
        ("PetitionCreate", P.PETITION_CREATE),
        ("TurnOut", P.TURN_BOT),
        ("TurnOut", P.TURN_STAFF),
        ("TurnOut", P.TURN_FEEDBACK),
        ("HandoffOut", P.HANDOFF_OPEN),
        ("HandoffOut", P.HANDOFF_CLOSED),
        ("FeedbackRead", P.FEEDBACK_REVIEW),
        ("FeedbackRead", P.FEEDBACK_CLOSED),
    ],
)
def test_bot_payload_matches_the_published_schema(components, schema: str, payload: Any) -> None:
    """Every field the bot's tests feed it exists in the api's schema, with the right type."""
    assert _errors(components, schema, payload) == []


def test_a_misspelt_field_is_caught(components) -> None:
    """The check refuses a field the api does not send (so it can fail)."""
    wrong = P.unit_match()
    wrong["status"]["initial_registration_done"] = True
    assert _errors(components, "LookupRead", wrong)
