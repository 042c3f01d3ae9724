"""A live bot restarted on its ledger does not bet again what it holds (docs/architecture.md,
"Invariants > Runs never re-bet"): real BoltOdds frames from the local BoltOdds server, orders
to the local ABP server over HTTP and WebSocket on loopback, the same frames streamed to both
runs. The second run places no order on a selection and bookmaker the first one holds."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import yaml

from bot.config.settings import load_settings
from bot.engine.core import Engine
from bot.engine.wiring import build_engine
from bot.sim.abp_server import LocalAbpServer
from bot.sim.bolt_server import BoltServer, load_frames
from bot.types import Selection

SAMPLES = Path(__file__).parents[1] / "data" / "boltodds" / "message_samples.json"
BOLT_KEY, ABP_KEY = "bolt-local-key", "abp-local-key"
TEMPLATE = [{"name": "tmpl", "path": "template", "params": {"min_price": 2.5, "stake": 5, "bookmakers": ["draftkings"]}}]


def _settings(state: Path, bolt: BoltServer, **extra: Any) -> Any:
    return load_settings(
        None, state_dir=state, logging={"json_file": False, "progress": False}, strategies=TEMPLATE,
        feeds={"boltodds": {"url": bolt.url, "rest_url": bolt.rest_url, "api_key": BOLT_KEY,
                            "sportsbooks": ["draftkings"], "check_filters": False}},
        risk={"max_orders_per_window": 1000, "max_price": 50}, **extra)


async def _run_until(engine: Engine, bolt: BoltServer, done: Any) -> None:
    run = asyncio.create_task(engine.run())
    try:
        async with asyncio.timeout(30):  # a safety limit, not a timing assertion
            while not (bolt.finished.is_set() and done()):
                await asyncio.sleep(0.05)
    finally:
        engine.request_stop("test over")
        async with asyncio.timeout(10):
            await run


async def _paper_signals(tmp_path: Path) -> tuple[int, set[str]]:
    """One paper run over the frames: how many outcome updates they hold, and the selections
    they make orders on."""
    async with BoltServer(load_frames(SAMPLES), api_key=BOLT_KEY, ping_interval=None) as bolt:
        engine = await build_engine(_settings(tmp_path / "paper", bolt), config_dir=tmp_path)
        seen: list[int] = []

        def settled() -> bool:  # the counts hold still once the stream is consumed
            seen.append(engine.stats.odds_updates)
            return len(seen) > 10 and seen[-1] == seen[-10] > 0 and engine.stats.signals > 5
        await _run_until(engine, bolt, settled)
    return engine.stats.odds_updates, {o.selection for o in engine.ledger.orders()}


def _mapping(path: Path, selections: set[str]) -> Path:
    rows = [{"selection": key, "fixture_id": f"id14000031900{i:05d}", "outcome_id": 100 + i}
            for i, key in enumerate(sorted(selections))]
    path.write_text(yaml.safe_dump({"selections": rows}))
    return path


async def test_a_live_restart_places_nothing_on_what_it_holds(tmp_path: Path) -> None:
    updates, selections = await _paper_signals(tmp_path)
    assert updates > 100 and selections
    mapping = _mapping(tmp_path / "mapping.yaml", selections)
    abp = LocalAbpServer(api_key=ABP_KEY, bookmakers=["pinnacle"])
    base_url = await abp.start()
    state = tmp_path / "live"
    live = {"mode": "live", "mapping": {"file": str(mapping), "use_abp_markets": False},
            "abp": {"api_key": ABP_KEY, "base_url": base_url, "ws_url": base_url.replace("http", "ws") + "/ws",
                    "requests_per_second": 1000, "emergency_wait_seconds": 0.5,
                    "bookmakers": {"draftkings": "pinnacle"}}}
    try:
        orders_by_run = []
        for _ in range(2):
            async with BoltServer(load_frames(SAMPLES), api_key=BOLT_KEY, ping_interval=None) as bolt:
                engine = await build_engine(_settings(state, bolt, **live), config_dir=tmp_path)
                await _run_until(engine, bolt, lambda e=engine: e.stats.odds_updates >= updates)
            orders_by_run.append([o for o in engine.ledger.orders()])
        first, both = orders_by_run
        assert first and all(o.fixture_id for o in first)  # mapped and sent to the ABP server
        held = {(o.selection, o.bookmakers) for o in first}
        second = both[len(first):]
        assert [o for o in second if (o.selection, o.bookmakers) in held] == []
        assert len(abp.venue.all_orders()) == len(first)  # nothing new reached the ABP server
        assert {Selection.parse(o.selection).fixture.sport for o in first} == {"NFL"}
    finally:
        await abp.stop()
