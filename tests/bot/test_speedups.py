"""The hot-path fixes: Rasa's action-response validation (same verdicts, prepared once) and the
action server's pooled api client."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import httpx
import jsonschema
import pytest
import respx
import speedups
from rasa.core.actions.action import RemoteAction

from actions.clients import api
from privacy.tracker_store import RedactingTrackerStore

from .conftest import API

async_test = pytest.mark.asyncio

RESPONSES: list[dict[str, Any]] = [
    {"events": [], "responses": []},
    {
        "events": [
            {"event": "slot", "name": "lookup_result", "value": "unit", "timestamp": None},
            {"event": "active_loop", "name": None},
            {"event": "followup", "name": "action_listen"},
        ],
        "responses": [{"text": "好的", "buttons": [{"title": "是", "payload": "是"}]}],
    },
    {"events": [{"event": "slot", "name": "x"}], "responses": []},  # slot without a value
    {"events": [{"event": "no_such_event"}], "responses": []},
    {"events": "slot", "responses": []},
    {"events": [], "responses": ["just text"]},
    {"events": [{"event": "user", "text": 12}], "responses": []},
]


def _rasa_original(result: dict[str, Any]) -> str | None:
    """What Rasa 3.6's own `_validate_action_result` decides: None (valid) or the error message."""
    try:
        jsonschema.validate(result, RemoteAction.action_response_format_spec())
    except jsonschema.ValidationError as error:
        return error.message
    return None


@pytest.mark.parametrize("result", RESPONSES)
def test_prepared_validation_decides_as_rasa_does(result: dict[str, Any]) -> None:
    speedups.install_speedups()
    action = RemoteAction("action_lookup_status", None)
    expected = _rasa_original(result)
    if expected is None:
        assert action._validate_action_result(result) is True
    else:
        with pytest.raises(jsonschema.ValidationError) as raised:
            action._validate_action_result(result)
        assert raised.value.message.startswith(expected)
        assert "Failed to validate Action server response" in raised.value.message


def test_both_outcomes_are_covered() -> None:
    verdicts = [_rasa_original(r) is None for r in RESPONSES]
    assert True in verdicts and False in verdicts


def test_the_tracker_store_installs_it_once() -> None:
    RedactingTrackerStore(backend="memory")
    assert RemoteAction._validate_action_result.__module__ == "speedups"
    assert speedups.install_speedups() is False


@async_test
async def test_api_client_is_pooled_per_loop_and_follows_settings(monkeypatch) -> None:
    first = api._client()
    assert api._client() is first
    assert str(first.base_url).rstrip("/") == api.settings.api_url
    monkeypatch.setattr(api, "settings", dataclasses.replace(api.settings, api_timeout=0.7))
    second = api._client()
    assert second is not first and second.timeout.read == 0.7
    assert api._client() is second


@async_test
async def test_one_client_carries_consecutive_calls() -> None:
    seen: list[int] = []

    with respx.mock:
        respx.get(f"{API}/api/v1/projects/QS001/status").mock(
            return_value=httpx.Response(200, json={"project": {"code": "QS001"}})
        )
        for _ in range(3):
            seen.append(id(api._client()))
            assert (await api.project_status("s", "QS001"))["project"]["code"] == "QS001"
    assert len(set(seen)) == 1


def test_each_event_loop_gets_its_own_client() -> None:
    async def grab() -> httpx.AsyncClient:
        return api._client()

    one = asyncio.run(grab())
    two = asyncio.run(grab())
    assert one is not two
