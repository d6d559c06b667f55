"""Keep protocol libraries' logs useful: a lost connection is reported once by the source, not as tracebacks."""
from __future__ import annotations

import asyncio
import logging

# Errors that only mean "the peer went away"; the source itself reports the loss and the retries.
_CONNECTION_LOSS = (ConnectionError, OSError, TimeoutError, asyncio.TimeoutError, asyncio.CancelledError)


class DropConnectionLossTracebacks(logging.Filter):
    """Drop asyncua's records whose exception is a lost connection; everything else passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("asyncua") or record.exc_info is None or record.exc_info[1] is None:
            return True
        return not isinstance(record.exc_info[1], _CONNECTION_LOSS)


def quiet_library_loggers(debug: bool) -> None:
    """asyncua logs every request at INFO and a traceback per dropped connection; keep its real warnings.

    Call after logging is configured: the filter goes on the root handlers, which see every record.
    """
    if debug:
        return
    logging.getLogger("asyncua").setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        handler.addFilter(DropConnectionLossTracebacks())
