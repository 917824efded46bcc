"""Masks ID numbers and mobiles in every log record of the process (Rasa, Sanic, actions)."""

from __future__ import annotations

import logging
from typing import Any

from privacy.redact import mask_text


def _masking_factory(base: Any) -> Any:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the caller's bug, leave it to logging
            return record
        masked = mask_text(message)
        if masked != message:
            record.msg = masked
            record.args = None
        return record

    factory._fangben_masking = True  # type: ignore[attr-defined]
    return factory


def install_log_redaction() -> None:
    """Wrap the log record factory once, so even records of libraries are masked when made.

    Checked on the factory itself, not a flag: a library that sets its own factory later
    (TensorFlow and Rasa's test tools do) must not leave records unmasked.
    """
    current = logging.getLogRecordFactory()
    if getattr(current, "_fangben_masking", False):
        return
    logging.setLogRecordFactory(_masking_factory(current))
