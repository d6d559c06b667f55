"""What the server granted: slower sampling, smaller queues and slower publishing are counted and described."""
from __future__ import annotations

from asyncua import ua

from data_sources.opcua_items import Granted, note_granted, subscription_parameters
from data_sources.opcua_plan import ItemSettings


def outcome(sampling_ms: float, queue_size: int) -> ua.MonitoredItemCreateResult:
    return ua.MonitoredItemCreateResult(RevisedSamplingInterval=sampling_ms, RevisedQueueSize=queue_size)


def test_what_was_asked_is_not_reported():
    granted = Granted()
    note_granted(granted, ItemSettings(handle=0, sampling_interval_ms=100, queue_size=10), outcome(100, 10))
    note_granted(granted, ItemSettings(handle=1, sampling_interval_ms=100, queue_size=10), outcome(50, 20))
    assert (granted.items, granted.sampling_slower, granted.queue_smaller) == (2, 0, 0)
    assert granted.describe() == ""


def test_fastest_possible_sampling_takes_whatever_the_server_picks():
    granted = Granted()
    note_granted(granted, ItemSettings(handle=0, sampling_interval_ms=0, queue_size=10), outcome(250, 10))
    assert granted.sampling_slower == 0


def test_slower_sampling_and_smaller_queues_are_counted_and_described():
    granted = Granted()
    note_granted(granted, ItemSettings(handle=0, sampling_interval_ms=10, queue_size=100), outcome(50, 100))
    note_granted(granted, ItemSettings(handle=1, sampling_interval_ms=10, queue_size=100), outcome(200, 1))
    other = Granted(subscriptions=1, publishing_slower=1)
    granted.add(other)
    assert (granted.sampling_slower, granted.slowest_sampling_ms, granted.queue_smaller) == (2, 200, 1)
    assert granted.describe() == ("server revised: publishing slower on 1 subscriptions,"
                                  " sampling slower on 2 items (slowest 200 ms), smaller queues on 1 items")


def test_keep_alives_come_at_least_twice_per_stale_after():
    params = subscription_parameters(publishing_interval_ms=250, stale_after_s=5.0)
    assert params.RequestedMaxKeepAliveCount * 250 <= 2500
    assert params.RequestedLifetimeCount >= 3 * params.RequestedMaxKeepAliveCount
