"""The `scraping:` section and the HTTP feeds' `transport` switch: validated at load, checked by
preflight, wired into the feed's client (bot/engine/wiring.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.clock import WallClock
from bot.config.errors import ConfigError
from bot.config.preflight import preflight
from bot.config.settings import Settings, load_settings
from bot.engine.wiring import BuildError, build_feeds
from bot.feeds.oddsapi import OddsApiFeed
from bot.feeds.scraping import ScrapingTransport


def _settings(tmp_path: Path, oddsapi: dict[str, object], scraping: dict[str, object] | None = None) -> Settings:
    return Settings.model_validate({
        "state_dir": str(tmp_path / "state"),
        "feeds": {"oddsapi": {"api_key": "target", **oddsapi}},
        **({"scraping": scraping} if scraping is not None else {}),
    })


def test_the_switch_puts_the_feed_on_the_relay_with_its_geo_and_agent(tmp_path: Path) -> None:
    scraping = {"api_key": "s-key", "base_url": "http://127.0.0.1:9", "geo": ["de", "AT"], "agent": ["de1"]}
    settings = _settings(tmp_path, {"transport": "scraping"}, scraping)
    [feed] = build_feeds(settings, WallClock(), tmp_path)
    assert isinstance(feed, OddsApiFeed)
    transport = feed._client._transport
    assert isinstance(transport, ScrapingTransport)
    assert (transport.geo, transport.agent) == (("DE", "AT"), ("de1",))
    assert transport.relay.fetch_url == "http://127.0.0.1:9/fetch"

    own = _settings(tmp_path, {"transport": "scraping", "scraping_geo": ["us"], "scraping_agent": []}, scraping)
    [feed] = build_feeds(own, WallClock(), tmp_path)
    assert isinstance(feed, OddsApiFeed) and isinstance(feed._client._transport, ScrapingTransport)
    assert (feed._client._transport.geo, feed._client._transport.agent) == (("US",), ())

    [direct] = build_feeds(_settings(tmp_path, {}, scraping), WallClock(), tmp_path)
    assert isinstance(direct, OddsApiFeed) and not isinstance(direct._client._transport, ScrapingTransport)


def test_scraping_without_a_key_is_one_line_at_preflight_and_build(tmp_path: Path) -> None:
    settings = _settings(tmp_path, {"transport": "scraping"})
    lines = [line for line in preflight(settings, tmp_path) if "scraping" in line]
    assert lines == [("config error: feeds.oddsapi.transport: scraping needs a Scraping API key (scraping.api_key); "
                      "fix: set BOT_SCRAPING__API_KEY, or transport: direct")]
    with pytest.raises(BuildError, match="scraping.api_key"):
        build_feeds(settings, WallClock(), tmp_path)
    assert not [line for line in preflight(_settings(tmp_path, {}), tmp_path) if "scraping" in line]


@pytest.mark.parametrize(("yaml", "expected"), [
    ("scraping:\n  geo: [Germany]\n", "scraping.geo"),
    ("scraping:\n  agent: ['de 1']\n", "scraping.agent"),
    ("scraping:\n  max_attempts: 0\n", "scraping.max_attempts"),
    ("feeds:\n  oddsapi:\n    api_key: k\n    transport: proxy\n", "feeds.oddsapi.transport"),
    ("feeds:\n  oddsapi:\n    api_key: k\n    via_scrapping: true\n", "feeds.oddsapi.via_scrapping"),
])
def test_mistakes_stop_the_load_naming_the_field(tmp_path: Path, yaml: str, expected: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert len(caught.value.lines) == 1 and f"config error: {expected}" in caught.value.lines[0]
    assert "fix:" in caught.value.lines[0]
