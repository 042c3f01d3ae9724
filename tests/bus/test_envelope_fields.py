"""MQTT payloads carry a key type's own fields only, never the text it caches."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from bot.bus.envelope import dumps
from bot.types import FixtureKey, MarketKey, Selection


def test_a_selection_payload_after_its_key_was_made() -> None:
    fixture = FixtureKey("NFL", "Home", "Away", datetime(2026, 1, 4, 18, tzinfo=UTC))
    selection = Selection(fixture, MarketKey("moneyline"), "home")
    key = selection.key  # fills the caches of both
    payload = orjson.loads(dumps({"selection": selection, "fixture": fixture}))
    assert payload["selection"]["key"] == key == "NFL|Home vs Away|2026-01-04T18:00Z|moneyline/game|home"
    assert payload["fixture"] == {"sport": "NFL", "home": "Home", "away": "Away", "start_time": "2026-01-04T18:00:00Z"}
    assert payload["selection"]["fixture"] == payload["fixture"]
