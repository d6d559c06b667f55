"""The plant file's `historian:` block: defaults, and errors that name the key path."""
from pathlib import Path

import pytest

from domain.config_loading import ConfigError, parse_config

BASE = """
sources:
  broker: {kind: mqtt}
tags:
  - {name: t1, source: broker, topic: a/b}
"""


def parse(extra: str = ""):
    return parse_config(BASE + extra, Path("plant.yaml"), {})


def test_the_defaults_keep_a_month_and_lose_at_most_two_seconds():
    settings = parse().historian
    assert settings.retention_days >= 30
    assert settings.flush_interval_s == 2.0
    assert settings.compaction_grace_s == 300
    assert settings.max_buffer_samples >= 100_000


def test_settings_are_read_from_the_plant_file():
    settings = parse("historian: {retention_days: 400, flush_interval_s: 0.5, compaction_interval_s: 30,"
                     " compaction_grace_s: 60, max_buffer_samples: 50000}\n").historian
    assert (settings.retention_days, settings.flush_interval_s, settings.compaction_interval_s,
            settings.compaction_grace_s, settings.max_buffer_samples) == (400, 0.5, 30, 60, 50_000)


@pytest.mark.parametrize(("block", "expected"), [
    ("{retention_days: 0.5}", "historian.retention_days: Input should be greater than or equal to 1"),
    ("{flush_interval_s: 0}", "historian.flush_interval_s: Input should be greater than or equal to 0.05"),
    ("{max_buffer_samples: 10}", "historian.max_buffer_samples: Input should be greater than or equal to 10000"),
    ("{retention_days: forever}",
     "historian.retention_days: Input should be a valid number, unable to parse string as a number"),
    ("{retension_days: 40}", "historian.retension_days: Extra inputs are not permitted"),
    ("{flush_interval_s: 10, compaction_interval_s: 5}",
     "historian: compaction_interval_s (5.0) must not be shorter than flush_interval_s (10.0)"),
])
def test_bad_settings_are_rejected_with_the_key_path(block, expected):
    with pytest.raises(ConfigError) as caught:
        parse(f"historian: {block}\n")
    assert caught.value.problems == [expected]
