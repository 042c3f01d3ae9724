"""Parameter sweeps and walk-forward selection (docs/research.md, "Sweeps").

A sweep runs one deterministic backtest per combination of the given values (the Cartesian
grid), each in its own process with its own ledger, so the combinations use every core. Each is
summarised alone; the table is sorted by mean CLV (the measure of skill that converges first),
then ROI.

Walk-forward (`--train SPAN --test SPAN`): the combination is chosen on the bets placed in the
train span only (highest mean CLV, then ROI), and only its bets placed in the test span are
reported. Strategies do not fit to data, so one run over both spans, split by placement time,
is the same as separate runs except for state carried across the boundary (risk limits, the
bankroll's drawdown): the report says so.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from bot.research.backtest import BacktestError
from bot.research.records import BetRecord


def parse_assignment(text: str) -> tuple[str, Any]:
    """`name=value` (value read as a YAML scalar or list: 0.03, true, [pinnacle]).
    Raises BacktestError on a missing `=`."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise BacktestError(f"{text!r}: expected name=value (e.g. min_edge=0.03)")
    return name.strip(), yaml.safe_load(value)


def parse_grid(sweeps: Sequence[str]) -> list[dict[str, Any]]:
    """`["min_edge=0.02,0.03", "devig=multiplicative,shin"]` -> every combination as a dict, in
    grid order. A list value is written in brackets (`sharp_books=[pinnacle],[bet365]`)."""
    axes: list[tuple[str, list[Any]]] = []
    for text in sweeps:
        name, sep, values = text.partition("=")
        if not sep or not values:
            raise BacktestError(f"--sweep {text!r}: expected name=v1,v2,... (e.g. min_edge=0.02,0.03)")
        loaded = yaml.safe_load(f"[{values}]")
        axes.append((name.strip(), list(loaded)))
    return [dict(zip([a for a, _ in axes], combo, strict=True)) for combo in itertools.product(*(v for _, v in axes))]


@dataclass(frozen=True, slots=True)
class Span:
    """A half-open UTC time span [start, end)."""

    start: datetime
    end: datetime
    text: str

    def __contains__(self, at: datetime) -> bool:
        return self.start <= at < self.end


def parse_span(text: str) -> Span:
    """`2023`, `2019-2022` (whole calendar years) or `2023-08-01..2024-06-30` (days, both
    included), UTC. Raises BacktestError naming the accepted forms."""
    try:
        if ".." in text:
            a, b = text.split("..", 1)
            start = datetime.fromisoformat(a).replace(tzinfo=UTC)
            end = datetime.fromisoformat(b).replace(tzinfo=UTC)
            return Span(start, end + timedelta(days=1), text)
        first, _, last = text.partition("-")
        y0, y1 = int(first), int(last or first)
        return Span(datetime(y0, 1, 1, tzinfo=UTC), datetime(y1 + 1, 1, 1, tzinfo=UTC), text)
    except ValueError:
        raise BacktestError(f"span {text!r}: expected YEAR, YEAR-YEAR or YYYY-MM-DD..YYYY-MM-DD") from None


@dataclass(frozen=True)
class Job:
    """One combination's backtest, as a worker process runs it."""

    paths: tuple[Path, ...]
    config: Path
    fmt: str | None
    params: dict[str, Any]


def run_job(job: Job) -> tuple[list[BetRecord], list[str]]:
    """Run one combination on a temporary ledger; returns its bets and its failures (one line
    each, e.g. a damaged file). Runs in a worker process."""
    from bot.config.settings import load_settings
    from bot.engine.logs import setup_logging
    from bot.research.backtest import backtest_settings, classify, load_records, run

    base = load_settings(job.config)
    with tempfile.TemporaryDirectory(prefix="bot-sweep-") as tmp:
        settings = backtest_settings(base, classify(job.paths, job.fmt), Path(tmp), params=job.params,
                                     log_level="ERROR", progress=False)
        setup_logging(settings, console=True)
        stats = run(settings, job.config.resolve().parent)
        return load_records(settings.db_path), list(stats.failed)


def run_grid(jobs: Sequence[Job], workers: int | None = None) -> list[tuple[list[BetRecord], list[str]]]:
    """Every job, across `workers` processes (default: every core), results in job order."""
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(jobs) == 1:
        return [run_job(j) for j in jobs]
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        return list(pool.map(run_job, jobs))


def rank_key(summary: dict[str, Any]) -> tuple[float, float]:
    """Sort key, best first: mean CLV, then ROI (missing figures last)."""
    clv = summary.get("clv", {}).get("mean")
    roi = summary.get("roi")
    return (-(clv if clv is not None else float("-inf")), -(roi if roi is not None else float("-inf")))


def within(bets: Sequence[BetRecord], span: Span) -> list[BetRecord]:
    """The bets placed in `span`."""
    return [b for b in bets if b.placed_at in span]
