"""The running helpdesk (api, action server, Rasa) the conversation cases talk to."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "e2e"))

from e2e_stack import Stack, running_stack  # noqa: E402

# The suite plays some 200 residents within a minute through one action server; the api's
# per-IP limits (meant for one caller, not the bot) would otherwise refuse most of them.
SUITE_LIMITS = {"LOOKUP_RATE_PER_IP": "100000", "PETITION_RATE_PER_IP": "100000"}


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """api on a temp SQLite with the demo ledger, actions, Rasa with the in-memory store."""
    with running_stack(tracker="memory", extra_env=SUITE_LIMITS) as running:
        yield running
