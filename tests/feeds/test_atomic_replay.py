"""Every order placed on a replay is at a price the snapshot being processed really had
(docs/architecture.md, Pipeline: a snapshot is applied whole before any strategy runs).

The bot runs as the default config runs it (config.yaml, paper mode, the real engine from
`build_engine`; settlement off, which is not under test), with one more strategy instance that
trades a lot (arbitrage at any margin, every market), so many orders are checked. Each order in the ledger (read with plain
sqlite3) is then checked against the raw data with plain json / csv, independently of the bot's
decoder: the snapshot whose timestamp equals the order's creation time (the replay clock) must
carry that bookmaker's price for that selection, equal to the order price. 0 changed, 0 withdrawn.

A control run feeds the same snapshots the way the feeds did before batches (a "connected"
status, then one update at a time, withdrawals last), so strategies ran on half-applied boards:
the same check finds orders at changed or withdrawn prices there, which shows it can tell.
"""

from __future__ import annotations

import csv
import gzip
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.config.settings import load_settings
from bot.engine.wiring import build_engine
from bot.feeds.base import EmitFn
from bot.types import FeedEvent, FeedStatus, OddsBatch
from tests.engine.conftest import ROOT, write_config

BUNDLED = ROOT / "bot" / "data" / "nfl_raw_snapshots_2025-11-16.jsonl.gz"
DATA = ROOT / "tests" / "data" / "oddsapi"
DEC07 = DATA / "nfl_snapshots_2025-12-07.jsonl.gz"
DEC07_CHANGES = DATA / "nfl_odds_changes_2025-12-07.csv.gz"
EXTRA_STRATEGIES = [{"name": "arb_any", "path": "arbitrage", "params": {"min_margin": 0.0, "total_stake": 50}}]
DEFAULTS = yaml.safe_load((ROOT / "config.yaml").read_text())
STRATEGIES = {spec["name"] for spec in DEFAULTS["strategies"]} | {"arb_any"}  # each must trade


@dataclass(frozen=True)
class Order:
    home: str
    away: str
    market: str  # moneyline | 1x2 | spread | total
    line: float | None
    outcome: str  # home | away | draw | over | under
    bookmaker: str
    price: float
    at: str  # creation time on the replay clock, "YYYY-MM-DDTHH:MM:SSZ"
    strategy: str


def american_to_decimal(american: int) -> float:
    return 1 + american / 100 if american > 0 else 1 + 100 / -american


def ledger_orders(db: Path) -> list[Order]:
    """The orders table read with sqlite3; the selection key is split as text
    ("sport|home vs away|kickoff|type/period@line|outcome")."""
    con = sqlite3.connect(db)
    try:
        rows = con.execute("select selection, bookmakers, order_price, created_at, strategy from orders "
                           "order by id").fetchall()
    finally:
        con.close()
    out = []
    for selection, bookmaker, price, created, strategy in rows:
        _, teams, _, market, outcome = selection.split("|")
        home, away = teams.split(" vs ")
        head, _, line = market.partition("@")
        at = datetime.fromisoformat(created).replace(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        out.append(Order(home, away, head.split("/")[0], float(line) if line else None, outcome, bookmaker,
                         price, at, strategy))
    return out


def _side(name: str, home: str, away: str) -> str:
    return "home" if name == home else "away" if name == away else name.lower()


def _line(market: str, side: str, point: float | None) -> float | None:
    if market == "h2h":
        return None
    assert point is not None
    return -point if market == "spreads" and side == "away" else point  # spreads: the home handicap


def snapshot_prices(path: Path) -> dict[str, dict[tuple, int]]:
    """timestamp -> (home, away, bookmaker, market, line, outcome) -> American price, from the raw
    `{"timestamp", "data"}` lines (h2h is 1x2 when a Draw is offered)."""
    boards: dict[str, dict[tuple, int]] = {}
    with gzip.open(path, "rt") as f:
        for text in f:
            snap = json.loads(text)
            board: dict[tuple, int] = {}
            for e in snap["data"]:
                home, away = e["home_team"], e["away_team"]
                for b in e["bookmakers"]:
                    for m in b["markets"]:
                        names = {o["name"] for o in m["outcomes"]}
                        kind = {"h2h": "1x2" if "Draw" in names else "moneyline", "spreads": "spread",
                                "totals": "total"}[m["key"]]
                        for o in m["outcomes"]:
                            side = _side(o["name"], home, away)
                            line = _line(m["key"], side, o.get("point"))
                            board[(home, away, b["key"], kind, line, side)] = o["price"]
            boards[snap["timestamp"].replace("+00:00", "Z")] = board
    return boards


def changelog_prices(path: Path, times: list[str]) -> dict[str, dict[tuple, int]]:
    """The board at each of `times`, by forward-filling each (event_id, book, market, outcome)
    of the change log (`change` new | update | removed) up to and including that time."""
    with gzip.open(path, "rt", newline="") as f:
        rows = list(csv.DictReader(f))
    kinds = {"h2h": "moneyline", "spreads": "spread", "totals": "total"}
    state: dict[tuple, dict[str, str]] = {}
    boards: dict[str, dict[tuple, int]] = {}
    i = 0
    for t in sorted(set(times)):
        while i < len(rows) and rows[i]["observed_utc"] <= t:
            r = rows[i]
            key = (r["event_id"], r["book"], r["market"], r["outcome"])
            if r["change"] == "removed":
                state.pop(key, None)
            else:
                state[key] = r
            i += 1
        board: dict[tuple, int] = {}
        for r in state.values():
            side = _side(r["outcome"], r["home_team"], r["away_team"])
            line = _line(r["market"], side, float(r["point"]) if r["point"] else None)
            board[(r["home_team"], r["away_team"], r["book"], kinds[r["market"]], line, side)] = int(r["price_american"])
        boards[t] = board
    return boards


def check(orders: list[Order], boards: dict[str, dict[tuple, int]]) -> dict[str, list[Order]]:
    """Orders whose price the board at their time had changed, or did not have at all."""
    bad: dict[str, list[Order]] = {"changed": [], "withdrawn": [], "no_snapshot": []}
    for o in orders:
        board = boards.get(o.at)
        if board is None:
            bad["no_snapshot"].append(o)
            continue
        american = board.get((o.home, o.away, o.bookmaker, o.market, o.line, o.outcome))
        if american is None:
            bad["withdrawn"].append(o)
        elif abs(american_to_decimal(american) - o.price) > 1e-9:
            bad["changed"].append(o)
    return bad


def spelled_out(run: Callable[[EmitFn], Any]) -> Callable[[EmitFn], Any]:
    """A feed's `run` whose batches reach the engine the way feeds sent them before batches:
    a connected status first, then one update at a time, the clears last."""

    async def wrapped(emit: EmitFn) -> None:
        async def one_by_one(event: FeedEvent) -> None:
            if not isinstance(event, OddsBatch):
                await emit(event)
                return
            if event.complete:
                await emit(FeedStatus(event.source, event.received_at, connected=True, stale=False))
            for update in event.updates:
                await emit(update)
            for cleared in event.cleared:
                await emit(cleared)

        await run(one_by_one)

    return wrapped


async def replay(tmp_path: Path, recording: Path, *, old_pipeline: bool = False) -> list[Order]:
    """Run the default config on `recording` with the extra strategies; the ledger's orders."""
    cfg = write_config(tmp_path, feeds={"replay": {"path": str(recording), "format": "auto", "speed": 0}},
                       strategies=DEFAULTS["strategies"] + EXTRA_STRATEGIES,
                       logging={**DEFAULTS["logging"], "progress": False, "level": "WARNING",
                                "json_file": False},
                       settlement={"nfl_results": None})
    engine = await build_engine(load_settings(cfg), config_dir=cfg.parent)
    if old_pipeline:
        [feed] = engine.feeds
        feed.run = spelled_out(feed.run)  # type: ignore[method-assign,assignment]
    stats = await engine.run()
    assert stats.errors == 0
    return ledger_orders(tmp_path / "state" / "bot.db")


async def test_every_order_of_the_bundled_replay_is_at_its_snapshot_price(tmp_path: Path) -> None:
    orders = await replay(tmp_path, BUNDLED)
    boards = snapshot_prices(BUNDLED)
    by_strategy = {o.strategy for o in orders}
    assert len(orders) >= 50 and by_strategy == STRATEGIES, by_strategy
    assert check(orders, boards) == {"changed": [], "withdrawn": [], "no_snapshot": []}


def _dec07_boards() -> dict[str, dict[tuple, int]]:
    with gzip.open(DEC07, "rt") as f:
        times = [json.loads(line)["timestamp"] for line in f]
    return changelog_prices(DEC07_CHANGES, times)


@pytest.mark.parametrize("recording", ["bundled", "dec07"])
async def test_the_check_catches_orders_on_a_half_applied_snapshot(tmp_path: Path, recording: str) -> None:
    path, boards = (BUNDLED, snapshot_prices(BUNDLED)) if recording == "bundled" else (DEC07, _dec07_boards())
    bad = check(await replay(tmp_path, path, old_pipeline=True), boards)
    assert bad["no_snapshot"] == []
    assert len(bad["changed"]) > 0 and len(bad["withdrawn"]) > 0, {k: len(v) for k, v in bad.items()}


async def test_every_order_of_a_season_change_log_day_is_at_its_price(tmp_path: Path) -> None:
    """2025-12-07 (12 games) from the NFL 2025 change log: the snapshots were rebuilt from it
    (tests/data/oddsapi/README.md); the orders are checked against the change log itself."""
    orders = await replay(tmp_path, DEC07)
    assert len(orders) >= 50 and {o.strategy for o in orders} == STRATEGIES
    # every order was made at a snapshot's time: `no_snapshot` is empty
    assert check(orders, _dec07_boards()) == {"changed": [], "withdrawn": [], "no_snapshot": []}
