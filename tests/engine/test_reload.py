"""A reload (MQTT `reload` command) through the real engine: params are merged into the current
ones, and an invalid value is refused with the one-line error and changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.bus.auth import CommandRefused
from bot.config.settings import load_settings
from bot.engine.wiring import build_engine
from tests.engine.conftest import write_config


async def test_reload_merges_and_an_invalid_value_is_refused_in_one_line(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path))
    engine = await build_engine(settings, config_dir=tmp_path)
    try:
        strategy = engine.strategies.strategy("value_consensus")
        before = strategy.params
        await engine.reload_params("value_consensus", {"min_edge": 0.05})
        assert strategy.params.min_edge == 0.05
        assert strategy.params.kelly_multiplier == before.kelly_multiplier == 0.25  # kept, not reset
        merged = strategy.params
        with pytest.raises(CommandRefused) as refused:
            await engine.reload_params("value_consensus", {"min_edge": "abc"})
        assert str(refused.value) == "strategy 'value_consensus': params.min_edge: expected a number, got 'abc'"
        assert strategy.params is merged
    finally:
        engine.ledger.close()
