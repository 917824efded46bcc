"""One running helpdesk (api, action server, Rasa) shared by the end-to-end tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from e2e_stack import Stack, running_stack  # noqa: E402


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """api on a temp SQLite with the demo ledger, actions, Rasa with the in-memory store."""
    with running_stack(tracker="memory") as running:
        yield running
