"""The trainer's one error type: its message is short Chinese for the model's record in the
console and never quotes training examples, response bodies or personal data."""

from __future__ import annotations


class TrainerError(RuntimeError):
    """A step of the job failed; `str(error)` is safe to store and to log."""


class Abandoned(TrainerError):
    """The api no longer has the model in training (it was taken as lost, or removed): the
    job stops without retrying or reporting."""


def safe_message(exc: BaseException) -> str:
    """What is reported for `exc`: a TrainerError's own message, otherwise only its type."""
    if isinstance(exc, TrainerError):
        return str(exc)[:300]
    return f"训练任务出错（{type(exc).__name__}）"
