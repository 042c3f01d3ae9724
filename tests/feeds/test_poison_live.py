"""Live feeds run on through poison (docs/architecture.md, "Invariants > Nothing lost, nothing
silent"): BoltOdds over a real loopback WebSocket (bot/sim/bolt_server.py) past poison frames,
The Odds API's poll loop past poison quota headers and bodies (an httpx MockTransport), and the
engine's feed supervision (bot/engine/core.py, `Engine.run`): a live feed that fails is restarted
with backoff and alerted, a replay that fails ends the run with `failed` lines.
"""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from loguru import logger
from pydantic import SecretStr

from bot.clock import ReplayClock, WallClock
from bot.config.settings import load_settings
from bot.engine.core import Engine
from bot.engine.wiring import build_engine
from bot.feeds.base import EmitFn
from bot.feeds.boltodds import BoltOddsFeed
from bot.feeds.config import OddsApiConfig
from bot.feeds.oddsapi import OddsApiFeed, next_quota_reset
from bot.market.book import OddsBook
from bot.sim.bolt_server import BoltServer, load_frames
from bot.types import FeedEvent, FeedStatus, MarketKey, OddsBatch, OddsUpdate, Selection
from tests.engine.conftest import write_config

from .conftest import BOLT_SAMPLES, VIKINGS_GAME, unbatched
from .test_boltodds_loopback import TARGU_UNDER, VIKINGS, VIKINGS_ML, config, until
from .test_oddsapi_replay import FIRST3, snapshots

T0 = datetime(2025, 11, 16, 12, 40, tzinfo=UTC)

# -- BoltOdds over loopback -------------------------------------------------------------------


def _poison_frames() -> tuple[list[str], int]:
    """The real frames with the Vikings initial_state poisoned (an outcome_line of 1e30 and an
    odds of "1e307"), a line_update with a NaN literal line, and a real line_update with one
    price "inf" in front; then the real frames. Returns the frames and the outcomes of the last."""
    real = load_frames(BOLT_SAMPLES)
    vikings = next(orjson.loads(f) for f in real if orjson.loads(f)["data"]["game"] == VIKINGS_GAME)
    outcomes = vikings["data"]["outcomes"]
    line_key = next(k for k, o in outcomes.items() if o["outcome_name"] == "Spread")
    odds_key = next(k for k, o in outcomes.items() if o["outcome_name"] == "Moneyline" and "Bears" in k)
    outcomes[line_key]["outcome_line"] = 1e30
    outcomes[odds_key]["odds"] = "1e307"
    nan_frame = orjson.dumps({**vikings, "action": "line_update",
                              "data": {**vikings["data"], "outcomes": {line_key: {**outcomes[line_key],
                                                                                  "outcome_line": "__nan__"}}}})
    lone = orjson.loads(real[-1])
    lone_key = next(iter(lone["data"]["outcomes"]))
    lone["data"]["outcomes"][lone_key]["odds"] = "inf"
    poison = [orjson.dumps(vikings).decode(), nan_frame.decode().replace('"__nan__"', "NaN"),
              orjson.dumps(lone).decode()]
    return poison + real, len(lone["data"]["outcomes"])


async def test_boltodds_poison_frames_then_good_frames_reach_the_book() -> None:
    frames, lone_outcomes = _poison_frames()
    book = OddsBook(WallClock())
    events: list[FeedEvent] = []

    async def emit(event: FeedEvent) -> None:
        events.extend(unbatched([event]))
        book.apply(event)

    async with BoltServer(frames, ping_interval=None) as server:
        feed = BoltOddsFeed(config(server), WallClock())
        task = asyncio.create_task(feed.run(emit))
        try:
            await until(lambda: server.finished.is_set() and book.quote(TARGU_UNDER, "bovada") is not None,
                        "the good frames after the poison")
            assert not task.done()  # the feed runs on
        finally:
            task.cancel()
        s = feed.stats
        # One connection, no reconnect: four poisoned outcomes dropped, each counted once.
        assert server.connections == 1 and s["reconnects"] == 0
        assert s["bad_outcome"] == 4 and s.bad_total == 4 and s["malformed_json"] == 0
        # The rest of the poisoned frame got through (the Vikings moneyline of the away side) ...
        q = book.quote(VIKINGS_ML, "draftkings")
        assert q is not None and q.usable and q.american == -122
        # ... and the good frames after it: the real Vikings initial_state re-priced the outcome
        # whose odds were poison.
        home = book.quote(Selection(VIKINGS, MarketKey("moneyline"), "home"), "draftkings")
        assert home is not None and home.american == 102
        assert s["updates"] == 1910 + (1784 - 2) + (lone_outcomes - 1)
        assert all(u.price is None or u.price < 10_002 for u in events if isinstance(u, OddsUpdate))
        assert not any(isinstance(u, OddsUpdate) and u.selection.market.line is not None
                       and abs(u.selection.market.line) > Decimal(10_000) for u in events)
        assert not any(isinstance(e, FeedStatus) and e.stale for e in events)


# -- The Odds API poll loop ---------------------------------------------------------------------


class ScriptedOddsApi:
    """An httpx transport answering each poll with the next scripted quota headers (and the
    real first snapshot as the body); `served` is set after `until` responses."""

    def __init__(self, headers: list[dict[str, str]], body: bytes, until: int) -> None:
        self.headers, self.body, self.until = headers, body, until
        self.count = 0
        self.served = asyncio.Event()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        headers = self.headers[self.count % len(self.headers)]
        self.count += 1
        if self.count >= self.until:
            self.served.set()
        return httpx.Response(200, headers=headers, content=self.body)


BAD_REMAINING = ["inf", "-inf", "nan", "NaN", "garbage", "", "-5", "1e30", "12.5", "9" * 40, "0x10"]


async def test_oddsapi_poll_loop_runs_on_through_poison_quota_headers() -> None:
    body = orjson.dumps(snapshots(FIRST3)[0]["data"])
    script = [{"x-requests-remaining": v, "x-requests-last": v} for v in BAD_REMAINING]
    script.append({"x-requests-remaining": "497", "x-requests-last": "3"})  # then a wait of hours
    api = ScriptedOddsApi(script, body, until=len(script))
    client = httpx.AsyncClient(transport=httpx.MockTransport(api))
    feed = OddsApiFeed(OddsApiConfig(api_key=SecretStr("k"), poll_seconds=0.001), ReplayClock(T0), client)
    delays: list[float] = []
    poll_once = feed.poll_once

    async def record_delay(emit: EmitFn) -> float:
        delay = await poll_once(emit)
        delays.append(delay)
        return delay

    feed.poll_once = record_delay  # type: ignore[method-assign]

    async def emit(event: FeedEvent) -> None:
        pass

    task = asyncio.create_task(feed.run(emit))
    async with asyncio.timeout(30):  # a safety limit: the poll loop sets `served`
        await api.served.wait()
        while len(delays) < len(script):
            await asyncio.sleep(0)
    assert not task.done()  # still polling
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Each poison header counted (two headers a response), the quota treated as unknown: the
    # next poll waits poll_seconds, never "until the quota resets".
    assert feed.stats["bad_header"] == 2 * len(BAD_REMAINING) and feed.requests_remaining == 497
    until_reset = (next_quota_reset(T0) - T0).total_seconds()
    assert delays[: len(BAD_REMAINING)] == [0.001] * len(BAD_REMAINING)
    assert delays[len(BAD_REMAINING)] == pytest.approx(until_reset / ((497 - 5) // 3))
    assert feed.stats["snapshots"] == len(delays)


async def test_oddsapi_poison_body_costs_one_bookmaker_section() -> None:
    """A body with a NaN price and a 1e307 decimal price: polling goes on, the other sections are
    read."""
    board = copy.deepcopy(snapshots(FIRST3)[0]["data"])
    for event in board:
        for book in event["bookmakers"]:
            for market in book["markets"]:
                for o in market["outcomes"]:
                    o["price"] = round(1 + 100 / -o["price"] if o["price"] < 0 else 1 + o["price"] / 100, 4)
    board[0]["bookmakers"][0]["markets"][0]["outcomes"][0]["price"] = 1e307
    board[1]["bookmakers"][0]["markets"][0]["outcomes"][0]["price"] = "__nan__"
    body = orjson.dumps(board).decode().replace('"__nan__"', "NaN").encode()
    api = ScriptedOddsApi([{"x-requests-remaining": "inf"}], body, until=3)
    feed = OddsApiFeed(OddsApiConfig(api_key=SecretStr("k"), poll_seconds=0.001, odds_format="decimal"),
                       ReplayClock(T0), httpx.AsyncClient(transport=httpx.MockTransport(api)))
    batches: list[OddsBatch] = []

    async def emit(event: FeedEvent) -> None:
        if isinstance(event, OddsBatch):
            batches.append(event)

    task = asyncio.create_task(feed.run(emit))
    async with asyncio.timeout(30):
        while len(batches) < 3:
            await asyncio.sleep(0)
    task.cancel()
    sections = sum(len(e["bookmakers"]) for e in board)
    assert feed.stats["bad_bookmaker"] == 2 * len(batches) and feed.stats["decoder_error"] == 0
    first = batches[0]
    assert len(first.unconfirmed) == 2
    assert len({(u.selection.fixture, u.bookmaker) for u in first.updates}) == sections - 2


# -- the engine's feed supervision ----------------------------------------------------------------


class FakeBus:
    """Keeps what the engine publishes; `alerted` is set on each alert."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        self.alerted = asyncio.Event()

    async def start(self, controller: object) -> None:
        pass

    async def stop(self) -> None:
        pass

    def publish(self, kind: str, payload: dict[str, Any]) -> None:
        if kind == "alert":
            self.alerts.append(payload)
            self.alerted.set()

    def publish_event(self, event: object) -> None:
        pass


class FlakyFeed:
    """A live feed (the Feed protocol) whose `run` does `behaviours[i]` on its i-th call (the
    last one repeats): "raise", "return", or "serve" (emit a status, then run until cancelled)."""

    def __init__(self, name: str, *behaviours: str) -> None:
        self.name, self.behaviours = name, behaviours
        self.calls = 0
        self.serving = asyncio.Event()

    async def run(self, emit: EmitFn) -> None:
        behaviour = self.behaviours[min(self.calls, len(self.behaviours) - 1)]
        self.calls += 1
        if behaviour == "raise":
            raise RuntimeError(f"boom {self.calls}")
        if behaviour == "return":
            return
        await emit(FeedStatus(self.name, datetime.now(UTC), connected=True, stale=False))
        self.serving.set()
        await asyncio.Event().wait()


class BrokenReplay(FlakyFeed):
    finite = True


async def _engine(tmp_path: Path, feed: object, **feeds: float) -> tuple[Engine, FakeBus]:
    cfg = write_config(tmp_path, feeds=feeds, logging={"level": "WARNING", "json_file": False, "progress": False})
    engine = await build_engine(load_settings(cfg), config_dir=cfg.parent)
    bus = FakeBus()
    engine.feeds, engine.bus = [feed], bus  # type: ignore[list-item]
    return engine, bus


@pytest.fixture
def errors() -> Any:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(m.record["message"]), level="ERROR")
    yield lines
    logger.remove(sink)


async def _until(event: asyncio.Event, limit: float = 30) -> None:
    async with asyncio.timeout(limit):  # a safety limit: the test awaits the event itself
        await event.wait()


async def test_a_live_feed_that_raises_is_restarted_with_backoff_and_alerted(tmp_path: Path,
                                                                               errors: list[str]) -> None:
    feed = FlakyFeed("flaky", "raise", "raise", "return", "serve")
    engine, bus = await _engine(tmp_path, feed, restart_initial_seconds=0.02, restart_max_seconds=1.0)
    run = asyncio.create_task(engine.run())
    await _until(feed.serving)
    assert feed.calls == 4
    # One alert and one error line per failure, with a growing wait (0.02 * 2**n, + jitter).
    assert [a["error"] for a in bus.alerts] == ["RuntimeError: boom 1", "RuntimeError: boom 2",
                                                "RuntimeError: run() returned: a live feed runs until the bot stops"]
    waits = [a["restart_in_seconds"] for a in bus.alerts]
    assert all(w >= 0.02 * 2**n for n, w in enumerate(waits)), waits
    assert all(a["alert"] == "feed_failed" and a["feed"] == "flaky" for a in bus.alerts)
    failures = [e for e in errors if e.startswith("feed flaky failed")]
    assert len(failures) == 3 and "restart 1 in" in failures[0]
    assert engine.stats.events == 1  # the restarted feed's event reached the pipeline
    engine.request_stop("test over")
    stats = await run
    assert stats.failed == []  # the feed was up when the run stopped


async def test_a_live_feed_down_when_the_run_stops_fails_the_run(tmp_path: Path) -> None:
    feed = FlakyFeed("dead", "raise")
    engine, bus = await _engine(tmp_path, feed, restart_initial_seconds=60.0, restart_max_seconds=60.0)
    run = asyncio.create_task(engine.run())
    await _until(bus.alerted)
    engine.request_stop("operator")
    stats = await run
    assert feed.calls == 1
    assert stats.failed == ["feed dead was down when the run stopped: RuntimeError: boom 1"]


async def test_a_replay_that_fails_is_not_restarted_and_fails_the_run(tmp_path: Path, errors: list[str]) -> None:
    feed = BrokenReplay("replay", "raise")
    engine, bus = await _engine(tmp_path, feed, restart_initial_seconds=0.01)
    async with asyncio.timeout(60):
        stats = await engine.run()  # returns on its own: a replay is finite
    assert feed.calls == 1
    assert stats.failed == ["feed replay failed: RuntimeError: boom 1"]
    assert bus.alerts == [{"alert": "feed_failed", "feed": "replay", "error": "RuntimeError: boom 1",
                           "restart_in_seconds": None}]
    # the first line (the masking log patcher, bot/engine/logs.py, may append the traceback)
    assert "feed replay failed: RuntimeError: boom 1" in [e.splitlines()[0] for e in errors]
