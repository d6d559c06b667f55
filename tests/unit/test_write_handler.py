"""The data source's own re-check of a write request, before anything reaches the device."""
from __future__ import annotations

from domain.quality import BAD_NO_COMMUNICATION, GOOD
from domain.tag_value import TagValue
from data_sources.base import DataSource, WriteResult, now_ms
from data_sources.write_handler import WriteHandler
from tag_store.write_requests import WriteRequest, WriteStatus
from tests.unit.web_plant import small_plant


class _Store:
    def submit(self, tv: TagValue) -> None:
        pass


class _Device(DataSource):
    """Takes every write it is sent, and remembers what it was sent."""

    kind = "fake"

    def __init__(self, tmp_path):
        plant = small_plant()
        tags = [t for t in plant.tags if t.source == "opc"]
        super().__init__("opc", plant.sources["opc"], tags, _Store(), data_dir=tmp_path)
        self.sent: list[tuple[str, object]] = []

    async def run(self) -> None:
        raise NotImplementedError

    async def write(self, tag, value, timeout_s) -> WriteResult:
        self.sent.append((tag.name, value))
        return WriteResult(WriteStatus.DONE, "confirmed by readback", readback=value)


def _request(value: object) -> WriteRequest:
    return WriteRequest.new("T1.setpoint", value, "olga", now_ms(), 5.0)


async def test_a_step_from_an_unknown_current_value_is_refused_and_never_sent(tmp_path):
    device = _Device(tmp_path)
    handler = WriteHandler(redis=None, source=device)  # handle() does not touch Redis

    never_read = await handler.handle(_request(85))  # max_step 20, no value yet
    assert never_read.status is WriteStatus.REJECTED
    assert never_read.reason == "current value unknown (no value): the step limit of 20 % cannot be checked"

    device.publish_value(TagValue("T1.setpoint", 30.0, GOOD, now_ms(), now_ms()))
    device.mark_tag_bad("T1.setpoint", BAD_NO_COMMUNICATION)
    bad = await handler.handle(_request(35))
    assert bad.status is WriteStatus.REJECTED
    assert bad.reason == "current value unknown (BadNoCommunication): the step limit of 20 % cannot be checked"

    # A Bad value that still carries a number does not judge the step either.
    device.publish_value(TagValue("T1.setpoint", 30.0, BAD_NO_COMMUNICATION, now_ms(), now_ms()))
    assert (await handler.handle(_request(35))).status is WriteStatus.REJECTED
    assert device.sent == [] and device.counters.writes_rejected == 3


async def test_a_step_within_max_step_from_a_good_value_is_sent(tmp_path):
    device = _Device(tmp_path)
    handler = WriteHandler(redis=None, source=device)
    device.publish_value(TagValue("T1.setpoint", 30.0, GOOD, now_ms(), now_ms()))
    too_far = await handler.handle(_request(51))
    assert too_far.status is WriteStatus.REJECTED and "step of 21 is larger than the allowed 20" in too_far.reason
    assert (await handler.handle(_request(50))).status is WriteStatus.DONE
    assert device.sent == [("T1.setpoint", 50.0)]
