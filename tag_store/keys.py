"""Every Redis key and stream Stacklight uses, in one place (see docs/redis-keys.md)."""
from __future__ import annotations

PREFIX = "sl:"

# Hash: tag name -> encoded latest TagValue (JSON).
LATEST = PREFIX + "latest"
# Stream: one entry per published batch, field "b" = JSON {tag: encoded value}. Fan-out feed.
CHANGES = PREFIX + "changes"
# Stream: one entry per written batch with EVERY sample of it (CHANGES keeps only the newest per tag),
# field "s" = JSON [[tag, encoded value], ...]. The historian's feed; capped, it follows by cursor.
SAMPLES = PREFIX + "samples"

# Both feeds are capped by the samples they hold (for CHANGES: tag changes), not by their entries:
# an entry is one written batch, 1 to 5,000 samples, and a cap in entries made Redis memory depend on
# how the sources batch (1,000 tags, OPC UA publishes of 1,000 samples: 1.26 GB for the two feeds at
# caps of 10,000 and 5,000 entries). The writer gives every XADD the approximate MAXLEN that keeps
# the newest entries whose samples fit the budget (tag_store/writer.py FeedCap; for entries all of one
# size that is feed_maxlen below). At 80-100 B a sample each budget is 16-19 MB of Redis.
# 200,000 samples is 200 s of a plant of 1,000 tags changing every second (20 s at 10,000 samples/s):
# a restart of the alarm engine or the historian of a few tens of seconds resumes from the feed
# instead of re-judging the current values (alarm engine) or backfilling from sl:hist:<tag>
# (historian); the historian reads ~20,000 samples at a time, a tenth of it.
CHANGES_BUDGET_SAMPLES = 200_000
SAMPLES_BUDGET_SAMPLES = 200_000
# However large its entries, a feed keeps at least this many (readers count in entries); above
# budget / FEED_MIN_ENTRIES samples an entry (4,000) a feed may hold a little more than its budget.
FEED_MIN_ENTRIES = 50


def feed_maxlen(budget_samples: int, samples_in_entry: int) -> int:
    """The entries a feed holds when every entry holds samples_in_entry samples."""
    return max(FEED_MIN_ENTRIES, budget_samples // max(samples_in_entry, 1))


# The most entries each feed ever holds (entries of one sample each), for readers that count entries.
CHANGES_MAXLEN = feed_maxlen(CHANGES_BUDGET_SAMPLES, 1)
SAMPLES_MAXLEN = feed_maxlen(SAMPLES_BUDGET_SAMPLES, 1)

# Hash per source: state, detail, heartbeat_ms (see source_status.py).
SOURCE_STATUS_PATTERN = PREFIX + "source:*"
# Stream: alarm engine operator commands (acknowledge ...), answered in ACTION_RESULT.
ALARM_COMMANDS = PREFIX + "alarm:commands"
# Hash: alarm id -> encoded AlarmRecord (JSON). Authoritative alarm state, written by the engine only.
ALARMS = PREFIX + "alarms"
# Stream: every alarm transition and operator action (the alarm journal).
ALARM_JOURNAL = PREFIX + "alarm:journal"
# String: the last CHANGES entry id the alarm engine has evaluated (resume point after restart).
ALARM_ENGINE_CURSOR = PREFIX + "alarm:cursor"
# Hash: the alarm engine's heartbeat: heartbeat_ms, lag_ms (how far behind CHANGES), alarms (count).
ALARM_ENGINE_STATUS = PREFIX + "alarm:engine"
# Stream: append-only audit trail of logins, writes, acknowledgements.
AUDIT = PREFIX + "audit"
# Stream: device alarm events (OPC UA Alarms & Conditions) from the data sources, field "e" = JSON;
# the alarm engine reads it in its consumer group (see tag_store/device_alarms.py).
DEVICE_ALARMS = PREFIX + "device_alarms"
DEVICE_ALARMS_MAXLEN = 100_000
# Hash: tag name -> JSON Tag definition of a tag a source discovered (see tag_store/tag_catalog.py),
# and a counter raised whenever that hash changes.
TAG_CATALOG = PREFIX + "tag_catalog"
TAG_CATALOG_VERSION = PREFIX + "tag_catalog:version"
# Hash per user: role, password_hash.
USER_PATTERN = PREFIX + "user:*"


def history(tag: str) -> str:
    """Stream of recent samples of one tag, capped at history_samples_per_tag."""
    return f"{PREFIX}hist:{tag}"


def source_status(source: str) -> str:
    return f"{PREFIX}source:{source}"


def write_requests(source: str) -> str:
    """Stream of write requests for one data source; its consumer group is WRITE_GROUP."""
    return f"{PREFIX}writes:{source}"


WRITE_GROUP = "data_sources"


def device_acks(source: str) -> str:
    """Stream of acknowledge requests for one source's device alarms; its consumer group is WRITE_GROUP."""
    return f"{PREFIX}device_acks:{source}"


def action_result(request_id: str) -> str:
    """List holding the one answer (JSON) to a write request or alarm command; expires."""
    return f"{PREFIX}result:{request_id}"


ACTION_RESULT_TTL_S = 3600


def user(name: str) -> str:
    return f"{PREFIX}user:{name}"


def session(session_id: str) -> str:
    return f"{PREFIX}session:{session_id}"


# Sorted set: session id -> when it ends if unused (ms); hash: session id -> owner JSON (web/session_expiry.py).
SESSION_DEADLINES = PREFIX + "session_deadlines"
SESSION_OWNERS = PREFIX + "session_owners"


def pending_write(nonce_hash: str) -> str:
    """String (JSON): a prepared setpoint write awaiting its Confirm or approval; short TTL, single use."""
    return f"{PREFIX}pending_write:{nonce_hash}"


def api_token(token_hash: str) -> str:
    """Hash: one API token's record (user, label, id, created_ms, expires_ms, last_used_ms, account),
    keyed by the SHA-256 of the token (the token itself is never stored); expires with the token."""
    return f"{PREFIX}api_token:{token_hash}"


def api_tokens_of(user: str) -> str:
    """Hash: a user's API tokens, public token id -> token hash (for listing and revoking)."""
    return f"{PREFIX}api_tokens_of:{user}"


def api_token_failures(client_ip: str) -> str:
    """Counter of refused bearer tokens from one client address; expires with its window."""
    return f"{PREFIX}api_token_failures:{client_ip}"


def api_token_refusal_noted(hash_prefix: str) -> str:
    """Marker: a refused token (by hash prefix) was audited recently; expires after a minute."""
    return f"{PREFIX}api_token_refused:{hash_prefix}"


def kiosk_view_noted(client_ip: str) -> str:
    """Marker: the kiosk view from this client address was audited recently; expires after an hour."""
    return f"{PREFIX}kiosk_seen:{client_ip}"
