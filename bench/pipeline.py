"""Pipeline throughput: the default replay through the whole bot vs the feed alone.

The whole pipeline is `bot run` with the default config.yaml (paper mode, the bundled NFL replay,
as fast as possible), built as the CLI builds it (`bot.engine.wiring.build_engine`) on a fresh
ledger in a temporary state dir each round, timed from the "engine started" log line until
`Engine.run` returns (replay, strategies, risk, orders, ledger, end-of-replay settlement,
shutdown). The feed alone is the same file through `ReplayFeed` (decode) into an `OddsBook`
(apply; an `OddsBatch` whole, as the engine does; docs/architecture.md, Pipeline): no strategies,
risk or ledger. Rates are outcome updates per second (EngineStats.odds_updates; the file's
snapshots are few and large). Rounds are interleaved and the best of each side counts, so a busy
machine skews both alike. Goal: pipeline >= 0.5x feed-only and >= 30,000 updates/s.

    python bench/pipeline.py [--rounds 5] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from loguru import logger

from bot.clock import ReplayClock
from bot.config.settings import Settings, load_settings
from bot.engine.wiring import build_engine
from bot.feeds.replay import ReplayFeed
from bot.market.book import OddsBook
from bot.types import FeedEvent, OddsBatch, OddsUpdate

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config.yaml"
READY = "engine started: mode="
GOAL_RATIO, GOAL_RATE = 0.5, 30_000


def _mark(marks: dict[str, float], message: str) -> None:
    """Note when the engine logs that it started (start-up ends, the run begins)."""
    if READY in message:
        marks.setdefault("ready", time.perf_counter())


def settings(state_dir: Path) -> Settings:
    loaded = load_settings(CONFIG, state_dir=str(state_dir))
    quiet = loaded.logging.model_copy(update={"progress": False, "json_file": False})
    return loaded.model_copy(update={"logging": quiet})


async def pipeline(state_dir: Path) -> tuple[int, int, float]:
    """(feed events, outcome updates, seconds) of one whole run on a fresh ledger."""
    marks: dict[str, float] = {}
    sink = logger.add(lambda m: _mark(marks, m), level="INFO", format="{message}")
    try:
        engine = await build_engine(settings(state_dir), config_dir=ROOT)
        stats = await engine.run()
        end = time.perf_counter()
    finally:
        logger.remove(sink)
    return stats.events, stats.odds_updates, end - marks["ready"]


async def feed_only(cfg: Settings) -> tuple[int, int, float]:
    """(feed events, outcome updates, seconds) of the replay decoded into an OddsBook alone."""
    replay = cfg.feeds.replay
    assert replay is not None  # the default config replays a file
    clock = ReplayClock()
    book = OddsBook(clock, stale_after=timedelta(seconds=cfg.feeds.stale_after_seconds))
    feed = ReplayFeed(replay.path if replay.path.is_absolute() else ROOT / replay.path, clock, fmt=replay.format,
                      speed=0, odds_format=replay.odds_format)
    counts = [0, 0]

    async def emit(event: FeedEvent) -> None:
        counts[0] += 1
        if type(event) is OddsBatch:
            book.apply_batch(event)
            counts[1] += len(event.updates)
        else:
            book.apply(event)
            counts[1] += type(event) is OddsUpdate

    start = time.perf_counter()
    await feed.run(emit)
    return counts[0], counts[1], time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 rounds")
    args = parser.parse_args()
    rounds = 2 if args.quick else args.rounds
    logger.remove()
    whole: list[tuple[int, int, float]] = []
    alone: list[tuple[int, int, float]] = []
    with tempfile.TemporaryDirectory(prefix="pipeline-") as tmp:
        cfg = settings(Path(tmp) / "unused")
        for n in range(rounds):
            whole.append(asyncio.run(pipeline(Path(tmp) / f"round{n}")))
            alone.append(asyncio.run(feed_only(cfg)))
    events, updates, best_whole = whole[0][0], whole[0][1], min(r[2] for r in whole)
    feed_events, feed_updates, best_alone = alone[0][0], alone[0][1], min(r[2] for r in alone)
    rate_whole, rate_alone = updates / best_whole, feed_updates / best_alone
    print(f"replay: {events} feed events, {updates:,} outcome updates through the pipeline "
          f"({feed_events} events, {feed_updates:,} updates feed-only); best of {rounds} interleaved rounds")
    print(f"whole pipeline: {best_whole:.3f} s, {rate_whole:,.0f} outcome updates/s, {events / best_whole:,.1f} events/s")
    print(f"feed only (decode + OddsBook): {best_alone:.3f} s, {rate_alone:,.0f} outcome updates/s, "
          f"{feed_events / best_alone:,.1f} events/s")
    ratio = rate_whole / rate_alone
    met = ratio >= GOAL_RATIO and rate_whole >= GOAL_RATE
    print(f"ratio pipeline / feed-only: {ratio:.3f} (goal >= {GOAL_RATIO}, and >= {GOAL_RATE:,} updates/s): "
          f"{'MET' if met else 'NOT MET'}")


if __name__ == "__main__":
    main()
