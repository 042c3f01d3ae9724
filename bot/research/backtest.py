"""One backtest: historical odds (or a recording) through the whole pipeline in backtest mode,
on a ledger of its own, and the bets it made as `BetRecord`s (docs/research.md).

The strategies, risk limits and settlement policy are the config's: a backtest tests what would
run live. Only what a backtest must own is overridden: `mode: backtest`, the feeds (the given
files, nothing live), `state_dir` (a fresh folder per run, so runs never mix and a sweep's runs
run side by side), MQTT off, and the results files when any are given.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from loguru import logger

from bot.config.settings import Settings
from bot.engine.core import EngineStats
from bot.feeds.history.base import READERS, HistoryError, detect, header_of
from bot.ledger.store import Ledger
from bot.research.records import BetRecord
from bot.sim.results import is_results_header
from bot.types import Selection

RECORDING_SUFFIXES = (".jsonl", ".jsonl.gz")


class BacktestError(ValueError):
    """Inputs or parameters a backtest cannot run on; `str()` is one line naming the file or
    parameter and the fix."""


@dataclass(frozen=True, slots=True)
class Inputs:
    """What the given paths hold: historical odds files (with their formats), or one recording
    (ours, or The Odds API snapshot JSONL), and results files. One file may be both odds and
    results (football-data.co.uk season files)."""

    history: tuple[tuple[Path, str], ...] = ()
    recording: Path | None = None
    results: tuple[Path, ...] = ()


def classify(paths: Sequence[Path], fmt: str | None = None) -> Inputs:
    """Sort `paths` into odds and results by their headers (`fmt` forces the odds format of
    every CSV). Raises BacktestError: a missing file, a file that is neither, several
    recordings, or a recording mixed with historical files."""
    history: list[tuple[Path, str]] = []
    recordings: list[Path] = []
    results: list[Path] = []
    for given in paths:
        if not given.is_file():
            raise BacktestError(f"{given}: no such file")
        path = given.resolve()  # the config's relative paths start at its folder; the command line's here
        if path.name.endswith(RECORDING_SUFFIXES):
            recordings.append(path)
            continue
        header = header_of(path)
        odds = detect(path)
        is_results = is_results_header(header) or odds == "betfair_stream"  # its final market definitions
        if fmt is not None and odds != fmt and not (is_results and odds is None):
            _header_error(path, header, fmt)
        if odds is not None:
            history.append((path, odds))
        if is_results:
            results.append(path)
        if odds is None and not is_results:
            _header_error(path, header, None)
    if len(recordings) > 1:
        raise BacktestError(f"one recording per backtest (got {len(recordings)}); run them one by one")
    if recordings and history:
        raise BacktestError(f"{recordings[0]}: a recording cannot be merged with historical files; run them apart")
    if not recordings and not history:
        raise BacktestError("no odds file among the paths (only results); add the odds file")
    return Inputs(tuple(history), recordings[0] if recordings else None, tuple(results))


def _header_error(path: Path, header: list[str], fmt: str | None) -> NoReturn:
    """Raise the one line that says why `header` is not an odds file (of `fmt`): for a header
    close to the generic odds CSV (or `--format odds_csv`), the missing columns by name."""
    from bot.feeds.history.odds_csv import OPTIONAL, PRICES, REQUIRED, SPEC, columns

    names = {c.strip().lower() for c in header}
    if fmt == "odds_csv" or (fmt is None and len(names & set(REQUIRED)) >= len(REQUIRED) // 2):
        try:
            columns(path, header, REQUIRED, PRICES, OPTIONAL, f"{', '.join(REQUIRED)} and {' or '.join(PRICES)} ({SPEC})")
        except HistoryError as exc:
            raise BacktestError(str(exc)) from None
    if fmt is not None:
        raise BacktestError(f"{path}: line 1: the header is not {fmt}'s; see docs/reference/historical-data.md")
    raise BacktestError(f"{path}: line 1: header matches no odds format ({', '.join(READERS)}) and no results "
                        "format; see docs/reference/historical-data.md, or pass --format")


def backtest_settings(base: Settings, inputs: Inputs, state_dir: Path, *, params: Mapping[str, Any] | None = None,
                      log_level: str = "WARNING", progress: bool = True) -> Settings:
    """`base` made into this backtest's settings (see the module docstring). `params` set
    strategy params: `name=value` on every strategy, `strategy.name=value` on one.

    Raises:
        BacktestError: a `strategy.name` names no configured strategy.
    """
    data = base.model_dump()
    data.update(mode="backtest", state_dir=state_dir.resolve())
    feeds = data["feeds"]
    for live in ("boltodds", "oddsapi", "history"):
        feeds[live] = None
    if inputs.recording is not None:
        replay = feeds.get("replay") or {}
        feeds["replay"] = {**replay, "path": inputs.recording, "speed": 0}
    else:
        feeds["replay"] = None
        formats = {f for _, f in inputs.history}
        feeds["history"] = {"paths": [p for p, _ in inputs.history],
                            "format": formats.pop() if len(formats) == 1 else "auto"}
    data["mqtt"]["enabled"] = False
    if inputs.results:
        data["settlement"].update(results=list(inputs.results), nfl_results=None, football_data_results=None)
    data["logging"].update(level=log_level, progress=progress)
    names = {s["name"] for s in data["strategies"]}
    for key, value in (params or {}).items():
        owner, _, param = key.rpartition(".")
        if owner and owner not in names:
            raise BacktestError(f"--set/--sweep {key}: no strategy named {owner!r} (configured: {', '.join(sorted(names))})")
        for spec in data["strategies"]:
            if not owner or spec["name"] == owner:
                spec["params"] = {**spec["params"], param: value}
    return Settings.model_validate(data)


def run(settings: Settings, config_dir: Path) -> EngineStats:
    """Run the engine over the inputs to their end. Raises BuildError on a config that cannot
    run (one line per problem)."""
    from bot.engine.wiring import build_engine

    async def go() -> EngineStats:
        engine = await build_engine(settings, config_dir=config_dir)
        return await engine.run()

    return asyncio.run(go())


def load_records(db_path: Path) -> list[BetRecord]:
    """Every bet of a ledger with its order, settlement and closing line, by bet id. Money in
    the ledger currency (`BetRow.placed_stake`, `SettlementRow.pnl`)."""
    ledger = Ledger(db_path, read_only=True)
    try:
        orders = {o.request_uuid: o for o in ledger.orders()}
        settled = {s.bet_id: s for s in ledger.settlements()}
        records = []
        for bet in ledger.bets():
            order = orders.get(bet.request_uuid)
            if order is None:  # cannot be attributed to a strategy or selection: named, not dropped silently
                logger.warning("backtest report: bet {} has no order {} in the ledger; left out (bot report "
                               "names it)", bet.bet_id, bet.request_uuid)
                continue
            try:
                selection: Selection | None = Selection.parse(order.selection)
            except ValueError:
                selection = None
            settlement = settled.get(bet.bet_id)
            placed_at = bet.placed_at or order.created_at
            if placed_at is None:  # never stored so (both are set on every write)
                logger.warning("backtest report: bet {} has no placement time; left out", bet.bet_id)
                continue
            records.append(BetRecord(
                bet_id=bet.bet_id, strategy=order.strategy, bookmaker=bet.bookmaker, sport=order.sport,
                market=selection.market.type if selection else "", selection=order.selection,
                placed_at=placed_at, start_time=selection.fixture.start_time
                if selection else None, price=bet.placed_price, stake=bet.placed_stake,
                status=settlement.status if settlement else bet.settlement_status,
                pnl=settlement.pnl if settlement else None, settled_at=settlement.at if settlement else None,
                closing_price=bet.closing_price, closing_probability=bet.closing_probability, clv=bet.clv,
                side="back" if order.back else "lay",
            ))
        return records
    finally:
        ledger.close()
