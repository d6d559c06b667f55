"""The web app's process entry refuses a bad start loudly, with exit code 2."""
from __future__ import annotations

import pytest

from app import main
from tag_store.startup import StartupError, resolve_redis_url
from tests.unit.web_plant import small_plant


def test_a_broken_plant_file_stops_the_start_with_the_reason(tmp_path, capsys):
    plant = tmp_path / "plant.yaml"
    plant.write_text("sources: {}\ntags: [{name: x}]\n")
    assert main(["--config", str(plant)]) == 2
    assert f"configuration error in {plant}" in capsys.readouterr().err


def test_without_a_redis_url_the_start_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    plant = tmp_path / "plant.yaml"
    plant.write_text("sources: {}\ntags: []\n")
    assert main(["--config", str(plant)]) == 2
    assert "set REDIS_URL or redis.url" in capsys.readouterr().err


def test_redis_url_comes_from_the_environment_first():
    config = small_plant()
    assert resolve_redis_url(config, {"REDIS_URL": "redis://a:1/0"}) == "redis://a:1/0"
    with pytest.raises(StartupError):
        resolve_redis_url(config, {})
