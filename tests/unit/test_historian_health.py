"""judge_historian_health: every state from the heartbeat hash, and the operator's line for each."""
from __future__ import annotations

import pytest

from historian.heartbeat import HistorianState, HistorianStatus, read_heartbeat, write_heartbeat
from web.historian_health import (
    BEHIND_AFTER_ENTRIES, HEARTBEAT_TIMEOUT_MS, HistorianHealthState as S, behind_after_ms, bytes_text, clock_text,
    historian_figures, historian_health_json, historian_health_note, historian_health_text, judge_historian_health,
    read_historian_health, unreadable_health,
)

NOW = 1_796_222_400_000  # 2026-12-02 14:40:00 UTC


def heartbeat(**fields) -> dict[str, str]:
    """The hash as read_heartbeat returns it: a healthy historian that wrote a second ago, changed by fields."""
    status = HistorianStatus(heartbeat_ms=NOW - 1_000, cursor=f"{NOW - 2_000}-0", behind_entries=12,
                             buffered_samples=300, last_flush_ms=NOW - 1_500, last_compaction_ms=NOW - 30_000,
                             disk_bytes=5_000_000)
    raw = {k: str(v) for k, v in status.as_fields().items()}
    raw.update({k: str(v) for k, v in fields.items()})
    return raw


def test_a_fresh_heartbeat_writing_on_time_is_running():
    health = judge_historian_health(heartbeat(), NOW)
    assert health.state is S.RUNNING and health.is_running
    assert health.heartbeat_age_ms == 1_000 and health.last_flush_age_ms == 1_500
    assert (health.behind_entries, health.buffered_samples, health.disk_bytes) == (12, 300, 5_000_000)
    assert historian_health_text(health, NOW) == "Historian running: history is written to disk"
    assert historian_health_note(health, NOW) is None


def test_bytes_keys_and_values_as_redis_returns_them_are_read():
    raw = {k.encode(): v.encode() for k, v in heartbeat(dropped_samples=7).items()}
    health = judge_historian_health(raw, NOW)
    assert health.state is S.RUNNING and health.dropped_samples == 7


@pytest.mark.parametrize("status", [None, {}, {"state": "ok"}, heartbeat(heartbeat_ms=0),
                                    heartbeat(heartbeat_ms="-5"), heartbeat(heartbeat_ms="soon"),
                                    heartbeat(heartbeat_ms="")])
def test_no_usable_heartbeat_is_never_running(status):
    health = judge_historian_health(status, NOW)
    assert health.state is S.NOT_RUNNING and health.heartbeat_ms is None and health.heartbeat_age_ms is None
    assert historian_health_text(health, NOW) == ("No historian has run: history is kept only in the short "
                                                  "recent store (Redis)")
    # A plant without a historian: trends come from Redis alone, as before, without a note.
    assert historian_health_note(health, NOW) is None


def test_a_heartbeat_older_than_the_timeout_is_not_running_whatever_it_says():
    edge = judge_historian_health(heartbeat(heartbeat_ms=NOW - HEARTBEAT_TIMEOUT_MS), NOW)
    assert edge.state is S.RUNNING  # exactly at the timeout: still fresh
    for state in ("ok", "disk_failing", "redis_lost"):
        health = judge_historian_health(heartbeat(heartbeat_ms=NOW - 12 * 60_000, state=state), NOW)
        assert health.state is S.NOT_RUNNING and health.heartbeat_age_ms == 12 * 60_000
    text = historian_health_text(health, NOW)
    assert text == ("History is not being written to disk since 14:28 UTC (12 min ago): the historian is "
                    "not running — older trends may be incomplete")
    assert historian_health_note(health, NOW) == text


def test_a_clock_slightly_ahead_of_ours_is_age_zero_not_stopped():
    health = judge_historian_health(heartbeat(heartbeat_ms=NOW + 800, last_flush_ms=NOW + 500), NOW)
    assert health.state is S.RUNNING and health.heartbeat_age_ms == 0 and health.last_flush_age_ms == 0


def test_a_clean_stop_is_stopped_at_any_age():
    for age_ms in (500, 3 * 3_600_000):
        health = judge_historian_health(heartbeat(heartbeat_ms=NOW - age_ms, state="stopped",
                                                  buffered_samples=0), NOW)
        assert health.state is S.STOPPED and not health.is_running
    assert historian_health_text(health, NOW) == ("History is not being written to disk: the historian was "
                                                  "stopped at 11:40 UTC — older trends may be incomplete")
    yesterday = judge_historian_health(heartbeat(heartbeat_ms=NOW - 86_400_000, state="stopped"), NOW)
    assert "stopped at 2026-12-01 14:40 UTC" in historian_health_text(yesterday, NOW)


def test_disk_failing_says_since_when_why_and_how_much_is_held_or_lost():
    health = judge_historian_health(heartbeat(state="disk_failing", last_flush_ms=NOW - 38 * 60_000,
                                              buffered_samples=1_250_000, dropped_samples=0,
                                              last_error="disk: cannot write to /data: [Errno 28] No space"), NOW)
    assert health.state is S.DISK_FAILING and health.last_flush_age_ms == 38 * 60_000
    text = historian_health_text(health, NOW)
    assert text == ("History is not being written to disk since 14:02 UTC (38 min ago): disk: cannot write to "
                    "/data: [Errno 28] No space; 1,250,000 samples held in memory — older trends may be incomplete")
    assert historian_health_note(health, NOW) == text
    lost = judge_historian_health(heartbeat(state="disk_failing", last_flush_ms=0, dropped_samples=4_000), NOW)
    assert lost.last_flush_ms is None and lost.dropped_samples == 4_000
    assert "since the historian started" in historian_health_text(lost, NOW)
    assert "; 4,000 samples LOST" in historian_health_text(lost, NOW)


def test_dropped_samples_after_a_recovery_are_still_said_while_running():
    health = judge_historian_health(heartbeat(dropped_samples=4_000, last_error="disk: full"), NOW)
    assert health.state is S.RUNNING and health.last_error == "disk: full"
    assert "4,000 samples were lost since it started" in historian_health_text(health, NOW)


def test_behind_when_buffered_samples_wait_for_several_flush_intervals():
    limit = behind_after_ms(2.0)
    assert limit == 10_000 and behind_after_ms(5.0) == 15_000  # 3 flush intervals, at least 10 s
    assert judge_historian_health(heartbeat(last_flush_ms=NOW - limit), NOW).state is S.RUNNING
    late = judge_historian_health(heartbeat(last_flush_ms=NOW - limit - 1), NOW)
    assert late.state is S.BEHIND and late.reason == "no write to disk for 10 s"
    assert historian_health_text(late, NOW) == ("History is written to disk late (no write to disk for 10 s): the "
                                                "newest part of long trends may be missing for a while")
    assert judge_historian_health(heartbeat(last_flush_ms=NOW - 12_000), NOW, flush_interval_s=5.0).state \
        is S.RUNNING
    # Nothing buffered: a quiet plant with nothing to write is not behind, however old the last write.
    assert judge_historian_health(heartbeat(last_flush_ms=NOW - 3_600_000, buffered_samples=0), NOW).state \
        is S.RUNNING
    # No write since the start: the flush age is not known, so it says nothing.
    assert judge_historian_health(heartbeat(last_flush_ms=0), NOW).state is S.RUNNING


def test_behind_when_many_feed_entries_are_not_on_disk_and_unknown_counts_are_not():
    assert judge_historian_health(heartbeat(behind_entries=BEHIND_AFTER_ENTRIES), NOW).state is S.RUNNING
    health = judge_historian_health(heartbeat(behind_entries=BEHIND_AFTER_ENTRIES + 1), NOW)
    assert health.state is S.BEHIND and health.reason == "2,501 feed entries not on disk"
    unknown = judge_historian_health(heartbeat(behind_entries=-1), NOW)  # right after a start or backfill
    assert unknown.state is S.RUNNING and unknown.behind_entries is None


def test_redis_lost_with_a_fresh_heartbeat_is_behind_catching_up():
    health = judge_historian_health(heartbeat(state="redis_lost", last_error="redis: Connection refused"), NOW)
    assert health.state is S.BEHIND and health.reported_state == "redis_lost"
    assert "catching up after losing the data server" in historian_health_text(health, NOW)


@pytest.mark.parametrize("state", ["", "exploded", "OK "])
def test_an_unrecognised_state_with_a_fresh_heartbeat_is_unknown_never_running(state):
    health = judge_historian_health(heartbeat(state=state), NOW)
    expected = S.RUNNING if state.strip() == "ok" else S.UNKNOWN
    assert health.state is expected
    if expected is S.UNKNOWN:
        assert historian_health_note(health, NOW) is None
        assert historian_health_text(health, NOW).startswith("Historian state unknown (unrecognised state")


def test_malformed_figures_are_left_out_not_guessed():
    health = judge_historian_health(heartbeat(buffered_samples="many", last_flush_ms="x", disk_bytes="",
                                              dropped_samples="1e3"), NOW)
    assert health.state is S.RUNNING
    assert health.buffered_samples is None and health.last_flush_ms is None and health.disk_bytes is None
    assert health.dropped_samples == 1_000


def test_unreadable_is_unknown_and_the_json_carries_the_thresholds():
    health = unreadable_health("Redis unreachable")
    assert health.state is S.UNKNOWN
    assert historian_health_text(health, NOW) == ("Historian state unknown (Redis unreachable): history may "
                                                  "not be written to disk")
    body = historian_health_json(judge_historian_health(heartbeat(), NOW), NOW, 2.0)
    assert body["state"] == "running" and body["running"] is True and body["heartbeat_age_ms"] == 1_000
    assert body["heartbeat_timeout_ms"] == HEARTBEAT_TIMEOUT_MS and body["behind_after_ms"] == 10_000
    assert body["behind_after_entries"] == BEHIND_AFTER_ENTRIES and body["text"].startswith("Historian running")


def test_clock_text_names_the_day_only_when_it_is_not_today():
    assert clock_text(NOW - 60_000, NOW) == "14:39 UTC"
    assert clock_text(NOW - 15 * 3_600_000, NOW) == "2026-12-01 23:40 UTC"


async def test_read_from_a_real_redis(redis_client):
    assert (await read_historian_health(redis_client, NOW)).state is S.NOT_RUNNING
    await write_heartbeat(redis_client, HistorianStatus(heartbeat_ms=NOW - 200, last_flush_ms=NOW - 900,
                                                        state=HistorianState.DISK_FAILING, last_error="disk: x"))
    assert (await read_heartbeat(redis_client))["state"] == "disk_failing"
    health = await read_historian_health(redis_client, NOW)
    assert health.state is S.DISK_FAILING and health.heartbeat_age_ms == 200 and health.last_error == "disk: x"


def test_bytes_in_words():
    assert [bytes_text(n) for n in (0, 999, 1_000, 12_345_678, 4_100_000_000, 7 * 10**15)] == [
        "0 B", "999 B", "1.0 kB", "12.3 MB", "4.1 GB", "7000.0 TB"]


def test_the_sources_page_figures_mark_what_is_wrong():
    running = historian_figures(judge_historian_health(heartbeat(last_error="disk: full once"), NOW))
    by_name = {f.name: f for f in running}
    assert [f.name for f in running] == ["state", "last_write", "heartbeat", "waiting", "disk", "dropped",
                                         "last_error"]
    assert by_name["state"].text == "running" and not any(f.marked for f in running)  # an old error, recovered
    assert by_name["last_write"].text == "1 s ago" and by_name["disk"].text == "5.0 MB"
    assert by_name["waiting"].text == "12 feed entries, 300 samples in memory"
    failing = {f.name: f for f in historian_figures(judge_historian_health(
        heartbeat(state="disk_failing", dropped_samples=9, last_error="disk: full"), NOW))}
    assert failing["state"].text == "disk failing" and failing["state"].marked
    assert failing["dropped"].marked and failing["dropped"].text == "9" and failing["last_error"].marked
    never = {f.name: f for f in historian_figures(judge_historian_health({}, NOW))}
    assert never["heartbeat"].text == "none" and never["heartbeat"].marked
    assert never["last_write"].text == "none since its start" and never["disk"].text == "unknown"
    assert never["waiting"].text == "unknown" and never["dropped"].text == "unknown"
    stale = {f.name: f for f in historian_figures(judge_historian_health(heartbeat(heartbeat_ms=NOW - 60_000), NOW))}
    assert stale["heartbeat"].text == "60 s ago" and stale["heartbeat"].marked
