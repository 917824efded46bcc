"""Rasa 3.6 hot-path fixes that change no behaviour, installed when Rasa loads our tracker store.

`RemoteAction._validate_action_result` calls `jsonschema.validate(result, schema)` for every
custom-action response, and `validate` first checks the schema itself against the JSON Schema
meta-schema. Profiling a conversation (py-spy, bench/bot_bench.py) put ~40 % of Rasa's time per
message there: a form turn runs two or three custom actions. The schema is a constant, so it is
checked once here and the response is validated by a prepared validator: same draft, same errors,
same message.
"""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_installed = False


def _make_validate_action_result() -> Any:
    from jsonschema import ValidationError
    from jsonschema.exceptions import best_match
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.constants import DOCS_BASE_URL

    schema = RemoteAction.action_response_format_spec()
    validator_class = validator_for(schema)
    validator_class.check_schema(schema)  # once, instead of once per action response
    validator = validator_class(schema)

    def _validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
        # What `jsonschema.validate` raises: the best match among the errors.
        error = best_match(validator.iter_errors(result))
        if error is None:
            return True
        assert isinstance(error, ValidationError)
        error.message += (
            ". Failed to validate Action server response from API, "
            "make sure your response from the Action endpoint is valid. "
            "For more information about the format visit "
            f"{DOCS_BASE_URL}/custom-actions"
        )
        raise error

    return _validate_action_result


def install_speedups() -> bool:
    """Patch Rasa once per process; returns True the first time."""
    global _installed
    with _lock:
        if _installed:
            return False
        from rasa.core.actions.action import RemoteAction

        RemoteAction._validate_action_result = _make_validate_action_result()  # type: ignore[method-assign]
        _installed = True
        return True
