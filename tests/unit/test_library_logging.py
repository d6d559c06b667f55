"""asyncua's tracebacks for a dropped connection are dropped; its other records and ours pass."""
from __future__ import annotations

import logging
import sys

from data_sources.library_logging import DropConnectionLossTracebacks


def record(name: str, exc: BaseException | None) -> logging.LogRecord:
    exc_info = None
    if exc is not None:
        try:
            raise exc
        except BaseException:  # noqa: BLE001 - building a record as logging.exception would
            exc_info = sys.exc_info()
    return logging.LogRecord(name, logging.ERROR, __file__, 1, "boom", None, exc_info)


def test_connection_loss_tracebacks_of_asyncua_are_dropped():
    keep = DropConnectionLossTracebacks().filter
    assert not keep(record("asyncua.client.client", ConnectionError("Connection is closed")))
    assert not keep(record("asyncua.client.ua_client.UaClient", TimeoutError()))


def test_other_records_pass():
    keep = DropConnectionLossTracebacks().filter
    assert keep(record("asyncua.client.client", ValueError("a real bug")))
    assert keep(record("asyncua.client.client", None))
    assert keep(record("data_sources.opcua_source.plc", ConnectionError("ours")))
