"""Tick-to-order latency of the live bot: from a BoltOdds frame read off the socket to the last byte
of the ABP placement request it caused (docs/architecture.md, Invariants > Hot path lean).

Three processes on loopback: the local ABP server (`bot abp serve`, bot/sim/abp_server.py) and the
local BoltOdds server (`bot feeds serve-boltodds`, bot/sim/bolt_server.py) as subprocesses, and
the bot in this process, in live mode, built from a config.yaml by `load_settings` and
`bot.engine.wiring.build_engine` as `bot run` builds it (logging set up as `bot run` does, console
at WARNING). The stamps are the bot's own (bot/latency.py): the BoltOdds feed stamps each frame
at socket read, the executor records per order and per frame until httpx reports the
place-orders request body written, into `engine.executor.latency`; nothing is patched.

The frames are real: the three DraftKings NFL `initial_state` frames of
tests/data/boltodds/message_samples.json (1,887 outcomes), then `line_update` frames re-pricing
1-5 of their moneyline / spread / total / team-total game outcomes at a time (a frame's outcomes
are of one game; each keeps its real key and fields, its American odds move to a value within
+-15 % of the real decimal price that this selection has not had before, so risk's
DUPLICATE_SIGNAL never fires). Before them, about `abp.emergency_wait_seconds` + 0.5 s of
frames repeat a real price unchanged (nothing to place) while the bot's ABP stream settles its
emergency state, which an order would otherwise wait for. The server sends one frame every
`--interval` seconds, by default slow enough for the bot to keep up (its run time is printed beside
the serving time): a bot that falls behind reads frames late, which a stamp taken at read does not
count, and the server's WebSocket keepalive may drop it. Every re-priced selection is mapped to an ABP instrument (explicit
`selections:` of a mapping file, keys from the bot's own BoltOdds decoder), and its book to an
ABP slug (`abp.bookmakers`). A user strategy (written into a `strategy_dirs` folder) backs each
selection whose price changed at that price with the minimum stake; risk limits are wide, so
every signal becomes an order, and a frame's orders leave in one place-orders request.

Printed: orders, frames, frames with several orders and the place-orders requests the server
received; p50 / p99 / max in ms per order and per frame (`TickToOrder.summary`); the commit
floor, the median cost of one single-row insert + commit on SQLite in WAL with synchronous=FULL
in the state dir's filesystem, with commits `--interval` apart as the frames' intent commits are
(an fsync after an idle gap costs 2-3x one back to back, which is printed beside it); the order
intent's durable commit is on the hot path, so the latency cannot go below it; the goal line
with MET / NOT MET for p50 and p99 per order against that floor. Exit 0 once the run completed,
whatever the figures.

    python bench/tick_to_order.py [--orders 1000] [--quick] [--interval 0.1] [--seed 7] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import re
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

from bot.config.settings import load_settings
from bot.engine.core import Engine
from bot.engine.logs import setup_logging
from bot.engine.wiring import build_engine
from bot.feeds.base import FeedStats
from bot.feeds.boltodds_decode import BoltOddsDecoder
from bot.latency import Percentiles, TickToOrder
from bot.types import OddsUpdate, Selection

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "tests" / "data" / "boltodds" / "message_samples.json"
ABP_KEY, BOLT_KEY = "tick-abp-key", "tick-bolt-key"
FEED_BOOK, ABP_BOOK = "draftkings", "pinnacle"
MARKETS = {"moneyline", "spread", "total", "team_total"}  # game period only
PER_FRAME = (1, 2, 3, 4, 5)  # outcomes re-priced per frame, with these weights
PER_FRAME_WEIGHTS = (30, 25, 20, 15, 10)
DRIFT = 0.15  # a new price stays within +-15 % of the real decimal price
MAX_AMERICAN = 1000  # outcomes priced beyond +-1000 are not re-priced
EMERGENCY_WAIT = 0.5  # abp.emergency_wait_seconds
GOAL_P50_MS, GOAL_P99_MS, GOAL_FLOOR_RATIO = 1.0, 3.0, 1.5
QUICK_ORDERS = 100
IDLE_SECONDS = 5.0  # no new order for this long after the last frame: the run is over

STRATEGY = '''"""Backs every selection whose price changed, at that price (bench/tick_to_order.py)."""

from decimal import Decimal
from typing import Any

from pydantic import Field

from bot.strategy import Strategy, StrategyParams
from bot.types import OddsUpdate, Signal


class BackEveryChange(Strategy):
    class Params(StrategyParams):
        stake: Decimal = Field(Decimal(1), gt=0)

    def on_start(self, **kwargs: Any) -> None:
        self.seen: dict[tuple[str, str], float] = {}

    def on_odds(self, *, update: OddsUpdate, **kwargs: Any) -> list[Signal]:
        key = (update.selection.key, update.bookmaker)
        before = self.seen.get(key)
        if update.price is None:
            return []
        self.seen[key] = update.price
        if before is None or before == update.price:  # a first sighting is no change
            return []
        return [self.ctx.signal(update.selection, stake=self.params.stake, price=update.price,
                                bookmakers=(update.bookmaker,), reason="price changed")]
'''


@dataclass
class Plan:
    """The frames to serve (samples JSON: {action: [frames]}), the mapping of every re-priced
    selection, and what the re-priced frames should cause."""

    samples: dict[str, list[dict[str, Any]]]
    mapping: list[dict[str, Any]]
    orders: int = 0  # signals the re-priced frames cause (one per re-priced outcome)
    frames: int = 0  # re-priced frames
    several: int = 0  # re-priced frames with more than one outcome
    warmup: int = 0  # frames repeating a real price

    def serving(self, interval: float) -> float:
        """Seconds the server takes to send every frame."""
        return (len(self.samples["initial_state"]) + self.warmup + self.frames) * interval


@dataclass
class _Candidate:
    """One real outcome the bench re-prices: its game's message header, its key and outcome."""

    header: dict[str, Any]
    key: str
    outcome: dict[str, Any]
    selection: Selection
    prices: list[int] = field(default_factory=list)  # unused American odds, in the order to use them


def _american_to_decimal(american: int) -> float:
    return 1 + (american / 100 if american > 0 else 100 / -american)


def _nearby(american: int, rng: random.Random) -> list[int]:
    """American odds other than `american` whose decimal price is within DRIFT of its, shuffled
    (|american| <= MAX_AMERICAN)."""
    real = _american_to_decimal(american)
    low, high = max(real * (1 - DRIFT), _american_to_decimal(-MAX_AMERICAN)), real * (1 + DRIFT)
    # decimal 1 + 100/-a for a <= -100, 1 + a/100 for a >= 100
    negatives = range(-math.floor(100 / (low - 1)), -99) if low < 2 else range(0)
    positives = range(max(100, math.ceil((low - 1) * 100)), math.floor((high - 1) * 100) + 1)
    found = [a for a in (*negatives, *positives) if a != american and low <= _american_to_decimal(a) <= high]
    rng.shuffle(found)
    return found


def _candidates(initial: list[dict[str, Any]], rng: random.Random) -> list[_Candidate]:
    """The outcomes of the real frames that the bot reads as game-period moneyline, spread, total
    or team total with a price; each decoded alone by the bot's decoder for its selection."""
    decoder = BoltOddsDecoder("boltodds", FeedStats("boltodds"))
    now = datetime.now(UTC)
    found = []
    for frame in initial:
        header = {k: v for k, v in frame["data"].items() if k != "outcomes"}
        for key, outcome in frame["data"]["outcomes"].items():
            message = {"timestamp": frame["timestamp"], "action": "line_update",
                       "data": {**header, "outcomes": {key: outcome}}}
            events = decoder.decode(orjson.dumps(message), now)
            update = events[0] if len(events) == 1 and type(events[0]) is OddsUpdate else None
            if update is None or update.american is None or abs(update.american) > MAX_AMERICAN \
                    or update.selection.market.period != "game" or update.selection.market.type not in MARKETS:
                continue
            found.append(_Candidate(header, key, outcome, update.selection, _nearby(update.american, rng)))
    return found


def _line_update(at: datetime, picked: list[tuple[_Candidate, int]]) -> dict[str, Any]:
    header = picked[0][0].header
    outcomes = {c.key: {**c.outcome, "odds": f"{odds:+d}"} for c, odds in picked}
    return {"timestamp": at.isoformat(timespec="microseconds"), "action": "line_update",
            "data": {**header, "outcomes": outcomes}}


def plan_frames(orders: int, interval: float, seed: int) -> Plan:
    """The real initial frames, the warm-up, then re-priced frames until they cause `orders`
    signals. Raises ValueError when the real outcomes cannot be re-priced that often."""
    samples = orjson.loads(SAMPLES.read_bytes())
    initial = [f for f in samples["initial_state"] if f["data"]["sportsbook"] == FEED_BOOK]
    rng = random.Random(seed)
    candidates = _candidates(initial, rng)
    by_game: dict[str, list[_Candidate]] = {}
    for c in candidates:
        by_game.setdefault(c.header["game"], []).append(c)
    fixture_ids = {game: f"id14000099900{n:05d}" for n, game in enumerate(sorted(by_game), 1)}
    mapping = [{"selection": c.selection.key, "fixture_id": fixture_ids[c.header["game"]], "outcome_id": 90000 + n}
               for n, c in enumerate(candidates)]
    plan = Plan({"initial_state": initial}, mapping)
    at = datetime.fromisoformat(max(f["timestamp"] for f in initial)) + timedelta(seconds=1)
    updates: list[dict[str, Any]] = []
    steady = candidates[0]
    plan.warmup = math.ceil((EMERGENCY_WAIT + 0.5) / interval)
    for _ in range(plan.warmup):
        at += timedelta(milliseconds=10)
        updates.append(_line_update(at, [(steady, int(steady.outcome["odds"]))]))
    games = sorted(by_game)
    while plan.orders < orders:
        game = rng.choices(games, weights=[len(by_game[g]) for g in games])[0]
        open_ = [c for c in by_game[game] if c.prices]
        if not open_:
            games.remove(game)
            if not games:
                raise ValueError(f"the real outcomes can be re-priced only {plan.orders} times")
            continue
        k = min(rng.choices(PER_FRAME, weights=PER_FRAME_WEIGHTS)[0], orders - plan.orders, len(open_))
        at += timedelta(milliseconds=10)
        updates.append(_line_update(at, [(c, c.prices.pop()) for c in rng.sample(open_, k)]))
        plan.orders += k
        plan.frames += 1
        plan.several += k > 1
    plan.samples["line_update"] = updates
    return plan


# -- the bot's config and the servers ----------------------------------------------------------


def write_config(folder: Path, plan: Plan, abp_url: str, bolt_url: str) -> Path:
    """config.yaml (live, BoltOdds feed, ABP venue), mapping.yaml and the strategy folder."""
    strategies = folder / "strategies"
    strategies.mkdir(parents=True, exist_ok=True)
    (strategies / "tick_bench.py").write_text(STRATEGY)
    (folder / "mapping.yaml").write_text(yaml.safe_dump({"selections": plan.mapping}))
    wide = 10**9
    cfg = {
        "mode": "live", "instance": "tick", "state_dir": str(folder / "state"), "strategy_dirs": [str(strategies)],
        "feeds": {"boltodds": {"url": bolt_url, "rest_url": bolt_url.replace("ws://", "http://", 1),
                               "api_key": BOLT_KEY, "sportsbooks": [FEED_BOOK], "check_filters": False}},
        "strategies": [{"name": "tick", "path": "tick_bench.py:BackEveryChange", "params": {"stake": 1}}],
        "risk": {"min_stake": 1, "max_stake": 100, "min_price": 1.01, "max_price": 1000,
                 "max_exposure_selection": wide, "max_exposure_fixture": wide, "max_exposure_bookmaker": wide,
                 "max_exposure_strategy": wide, "max_exposure_total": wide, "max_orders_per_window": wide},
        "execution": {"currency": "USD"},
        "mapping": {"file": str(folder / "mapping.yaml"), "use_abp_markets": False},
        "abp": {"base_url": abp_url, "ws_url": abp_url.replace("http://", "ws://", 1) + "/ws", "api_key": ABP_KEY,
                "bookmakers": {FEED_BOOK: ABP_BOOK}, "emergency_wait_seconds": EMERGENCY_WAIT,
                "requests_per_second": 1000},
        "logging": {"level": "WARNING", "progress": False},
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@dataclass
class Server:
    """A `bot ...` server subprocess; its stdout is read until it names its URL, then drained."""

    proc: asyncio.subprocess.Process
    url: str
    drain: asyncio.Task[bytes]

    @classmethod
    async def start(cls, args: list[str], url_pattern: str, log: Path) -> Server:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "250"}
        with log.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", *args, cwd=ROOT, env=env,
                                                        stdin=asyncio.subprocess.DEVNULL,
                                                        stdout=asyncio.subprocess.PIPE, stderr=err)
        assert proc.stdout is not None
        seen = b""
        async with asyncio.timeout(60):  # a safety limit: the server prints its URL once listening
            while (found := re.search(url_pattern.encode(), seen)) is None:
                line = await proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"bot {args[0]} {args[1]} exited: {log.read_text()[-2000:]}")
                seen += line
        return cls(proc, found.group(0).decode(), asyncio.create_task(proc.stdout.read()))

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                async with asyncio.timeout(10):
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        await self.drain


async def _until_done(engine: Engine, run: asyncio.Task[Any], target: int, deadline: float) -> None:
    """Until the bot has placed `target` orders, or placed nothing new for IDLE_SECONDS."""
    latency: TickToOrder = engine.executor.latency
    count, last_change = 0, time.monotonic()
    while len(latency.per_order) < target and time.monotonic() < deadline and not run.done():
        await asyncio.sleep(0.05)
        if len(latency.per_order) != count:
            count, last_change = len(latency.per_order), time.monotonic()
        elif count and time.monotonic() - last_change > IDLE_SECONDS:
            return


@dataclass
class Outcome:
    latency: TickToOrder
    requests: list[int]  # orders per place-orders request the server received
    reasons: Counter[str]
    signals: int
    seconds: float  # from the engine's start until the last order (or the idle timeout)


async def run_bot(folder: Path, plan: Plan, interval: float) -> Outcome:
    recording = folder / "frames.json"
    recording.write_bytes(orjson.dumps(plan.samples))
    abp = await Server.start(["abp", "serve", "--port", "0", "--api-key", ABP_KEY, "--bookmakers", ABP_BOOK,
                              "--max-stake", "1000000"], r"http://127\.0\.0\.1:\d+", folder / "abp_server.log")
    bolt = None
    try:
        bolt = await Server.start(["feeds", "serve-boltodds", str(recording), "--port", "0", "--key", BOLT_KEY,
                                   "--interval", str(interval), "--ping-interval", "3600"],
                                  r"ws://127\.0\.0\.1:\d+/api", folder / "bolt_server.log")
        settings = load_settings(write_config(folder, plan, abp.url, bolt.url))
        setup_logging(settings)  # as `bot run` does: console at WARNING, the JSON log file
        engine = await build_engine(settings, config_dir=folder)
        started = time.monotonic()
        run = asyncio.create_task(engine.run())
        await _until_done(engine, run, plan.orders, started + 60 + 3 * plan.serving(interval))
        seconds = time.monotonic() - started
        engine.request_stop("bench over")
        async with asyncio.timeout(30):
            await run
        async with httpx.AsyncClient(base_url=abp.url) as client:
            received = (await client.get("/_admin/requests")).json()
        requests = [len(r["body"]["orders"]) for r in received if r["path"] == "/place-orders"]
        return Outcome(engine.executor.latency, requests, Counter(engine.stats.by_reason), engine.stats.signals,
                       seconds)
    finally:
        for server in (bolt, abp):
            if server is not None:
                await server.stop()


def commit_floor(folder: Path, n: int, gap: float = 0.0) -> list[int]:
    """ns of each of `n` single-row insert + commit on a new SQLite file in `folder`, WAL,
    synchronous=FULL (every commit fsync'd), `gap` seconds apart. Spaced as the frames are, a
    commit costs what the intent commit meets (after an idle gap the disk path is cold: on this
    project's machine 0.35-0.46 ms at 10-100 ms against 0.15 ms back to back)."""
    path = folder / f"commit_floor_{gap:g}.db"
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")
        con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        body = "x" * 400  # about an order row
        spent = []
        for _ in range(n):
            if gap:
                time.sleep(gap)  # the idle time between two frames' commits, not a wait for an event
            start = time.perf_counter_ns()
            con.execute("BEGIN")
            con.execute("INSERT INTO t (body) VALUES (?)", (body,))
            con.execute("COMMIT")
            spent.append(time.perf_counter_ns() - start)
        return spent
    finally:
        con.close()


# -- the report ----------------------------------------------------------------------------------


def _figures(name: str, p: Percentiles | None) -> str:
    if p is None:
        return f"{name}: no samples"
    return f"{name}: n={p.count} p50 {p.p50:.3f} ms  p99 {p.p99:.3f} ms  max {p.max:.3f} ms"


def _verdict(name: str, value: float, goal: float, floor_ms: float) -> str:
    bound = GOAL_FLOOR_RATIO * floor_ms
    if value <= goal:
        return f"  {name} {value:.3f} ms: MET (<= {goal:g} ms)"
    if value <= bound:
        return f"  {name} {value:.3f} ms: MET (<= {GOAL_FLOOR_RATIO}x commit floor = {bound:.3f} ms)"
    return f"  {name} {value:.3f} ms: NOT MET (> {goal:g} ms and > {GOAL_FLOOR_RATIO}x commit floor = {bound:.3f} ms)"


def report(plan: Plan, out: Outcome, floors: tuple[list[int], list[int]], interval: float,
           folder: Path) -> list[str]:
    """The printed lines; `floors`: commit ns back to back, and `interval` apart (the verdict's)."""
    per_order = TickToOrder.summary(out.latency.per_order)
    per_frame = TickToOrder.summary(out.latency.per_frame)
    tight_ns, floor_ns = floors
    floor_ms = statistics.median(floor_ns) / 1e6
    several = sum(n > 1 for n in out.requests)
    rejected = ", ".join(f"{k} {v}" for k, v in out.reasons.most_common()) or "none"
    frames = (f"frames: {len(plan.samples['initial_state'])} real initial_state + {plan.warmup} warm-up + "
              f"{plan.frames} re-priced line_update ({plan.several} of them with several outcomes), "
              f"one every {interval * 1000:g} ms; served in {plan.serving(interval):.1f} s, the bot's run "
              f"{out.seconds:.1f} s")
    orders = (f"orders: {len(out.latency.per_order)} placed (target {plan.orders}); signals {out.signals}, "
              f"rejected: {rejected}")
    requests = (f"frames with several orders: {several}; place-orders requests received: {len(out.requests)} "
                f"for {len(out.latency.per_frame)} frames with orders ({sum(out.requests)} orders)")
    floor = (f"commit floor: median {floor_ms:.3f} ms, max {max(floor_ns) / 1e6:.3f} ms over {len(floor_ns)} "
             f"single-row insert+commit {interval * 1000:g} ms apart, as the frames are (back to back: median "
             f"{statistics.median(tight_ns) / 1e6:.3f} ms over {len(tight_ns)}; SQLite WAL, synchronous=FULL, "
             f"in {folder})")
    goal = (f"goal: p50 <= {GOAL_P50_MS:g} ms and p99 <= {GOAL_P99_MS:g} ms per order, or within "
            f"{GOAL_FLOOR_RATIO}x of the commit floor")
    lines = [frames, orders, requests, _figures("per order", per_order), _figures("per frame", per_frame), floor,
             goal]
    if per_order is not None:
        lines += [_verdict("p50 per order", per_order.p50, GOAL_P50_MS, floor_ms),
                  _verdict("p99 per order", per_order.p99, GOAL_P99_MS, floor_ms)]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000, help="orders to place (one per re-priced outcome)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ORDERS} orders (CI)")
    parser.add_argument("--interval", type=float, default=0.1,
                        help="seconds between served frames (> 0; slow enough for the bot to keep up)")
    parser.add_argument("--seed", type=int, default=7, help="which outcomes are re-priced, and to what")
    parser.add_argument("--commits", type=int, default=200,
                        help="commits timed back to back for the floor; a quarter of them --interval apart")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a new temporary folder")
    args = parser.parse_args()
    if args.interval <= 0:
        parser.error("--interval must be > 0 (the warm-up is timed in frames)")
    orders = QUICK_ORDERS if args.quick else args.orders
    folder = (args.workdir or Path(tempfile.mkdtemp(prefix="tick-to-order-"))).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    print(f"tick-to-order: live bot (ABP venue) <- `bot feeds serve-boltodds`, -> `bot abp serve`, on loopback; "
          f"workdir {folder}", flush=True)
    plan = plan_frames(orders, args.interval, args.seed)
    outcome = asyncio.run(run_bot(folder, plan, args.interval))
    commits = 50 if args.quick else args.commits
    floors = (commit_floor(folder / "state", commits),
              commit_floor(folder / "state", max(10, commits // 4), gap=args.interval))
    print("\n".join(report(plan, outcome, floors, args.interval, folder / "state")))


if __name__ == "__main__":
    main()
