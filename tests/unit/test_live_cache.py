"""LiveCache answers each reader with exactly what changed since its version."""
from tag_store.live_cache import RECENT_VERSIONS_KEPT, LiveCache


def cache_with(*batches):
    cache = LiveCache(redis=None, sources=[])
    for batch in batches:
        cache._apply({tag: {"v": value} for tag, value in batch.items()})
    return cache


def test_a_reader_gets_only_what_changed_after_its_version():
    cache = cache_with({"a": 1, "b": 1}, {"b": 2}, {"c": 3})
    assert cache.changes_since(0) == (3, {"a": {"v": 1}, "b": {"v": 2}, "c": {"v": 3}})
    assert cache.changes_since(1) == (3, {"b": {"v": 2}, "c": {"v": 3}})
    assert cache.changes_since(2) == (3, {"c": {"v": 3}})
    assert cache.changes_since(3) == (3, {})


def test_a_reader_older_than_the_kept_log_gets_everything():
    cache = cache_with(*({"t": i} for i in range(RECENT_VERSIONS_KEPT + 10)))
    cache._apply({"u": {"v": 1}})
    version, changed = cache.changes_since(5)
    assert version == cache.version and set(changed) == {"t", "u"}
    assert cache.changes_since(cache.version - 1) == (cache.version, {"u": {"v": 1}})
