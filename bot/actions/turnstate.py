"""What the turn's flows (lookup, petition) may use of the turn: its state and reply."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker

from actions.replies import Reply


class TurnState:
    """The part of actions.converse.Turn that the flow mixins rely on."""

    reply: Reply
    sender_id: str
    message: str
    tracker: Tracker
    intent: str
    confidence: float

    @property
    def understood(self) -> bool:  # pragma: no cover - provided by Turn
        """The NLU is confident about the intent."""
        raise NotImplementedError

    def get(self, name: str) -> Any:  # pragma: no cover - provided by Turn
        """A slot's value as of now in this turn."""
        raise NotImplementedError

    def set(self, name: str, value: Any) -> None:  # pragma: no cover - provided by Turn
        """Set a slot at the end of the turn."""
        raise NotImplementedError

    def ask(self, slot: str, response: str, task: str | None = None) -> None:  # pragma: no cover
        """Ask a question and remember what was asked."""
        raise NotImplementedError

    def end_task(self) -> None:  # pragma: no cover - provided by Turn
        """No task and no pending question any more."""
        raise NotImplementedError

    def offer_human(self) -> None:  # pragma: no cover - provided by Turn
        """Offer a person."""
        raise NotImplementedError

    def reask(self) -> None:  # pragma: no cover - provided by Turn
        """Ask the pending question again."""
        raise NotImplementedError

    def explained(self, blockers: list[dict[str, Any]] | list[str]) -> None:  # pragma: no cover
        """Remember the blockers this conversation explained (sent with a petition)."""
        raise NotImplementedError
