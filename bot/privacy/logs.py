"""Masks ID numbers and mobiles in every log record of the process (Rasa, Sanic, actions)."""

from __future__ import annotations

import logging
from typing import Any

from privacy.redact import mask_text

_installed = False


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

    return factory


def install_log_redaction() -> None:
    """Wrap the log record factory once, so even records of libraries are masked when made."""
    global _installed
    if _installed:
        return
    logging.setLogRecordFactory(_masking_factory(logging.getLogRecordFactory()))
    _installed = True
