"""The OPC UA source's inbox: bounded, oldest dropped first and counted, converted in order."""
from data_sources.notification_inbox import NotificationInbox


def make_inbox(max_items: int):
    converted: list[tuple[object, int]] = []
    dropped: list[int] = []
    inbox = NotificationInbox(max_items, lambda items, ms: converted.extend((i, ms) for i in items), dropped.append)
    return inbox, converted, dropped


def test_items_are_converted_in_order_with_their_receive_time():
    inbox, converted, dropped = make_inbox(100)
    inbox.put([1, 2, 3], 1000)
    inbox.put([4, 5], 2000)
    assert inbox.convert_now(limit=2) == 2 and len(inbox) == 3
    assert inbox.convert_now() == 3 and len(inbox) == 0
    assert converted == [(1, 1000), (2, 1000), (3, 1000), (4, 2000), (5, 2000)] and dropped == []


def test_when_full_the_oldest_go_first_and_are_counted():
    inbox, converted, dropped = make_inbox(4)
    inbox.put([1, 2, 3], 1000)
    inbox.convert_now(limit=1)
    inbox.put([4, 5, 6], 2000)  # 5 waiting > 4: the rest of the first message goes
    assert dropped == [2] and len(inbox) == 3
    inbox.convert_now()
    assert [item for item, _ in converted] == [1, 4, 5, 6]
