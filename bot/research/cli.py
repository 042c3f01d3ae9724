"""`bot backtest` (docs/research.md): historical odds or a recording through the whole
pipeline, then the research report: closing line value, ROI with intervals, drawdown,
breakdowns, the HTML report with plots; parameter sweeps and walk-forward selection.

Light at import (typer and the standard library, bot/cli.py): each command imports what it runs.
"""

from __future__ import annotations

import sys
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bot.config.options import DEFAULT_CONFIG, ConfigOpt, fail, load_or_exit

if TYPE_CHECKING:
    from bot.config.settings import Settings
    from bot.research.records import BetRecord

def backtest(
    paths: Annotated[list[Path], typer.Argument(help="odds files (historical CSVs or one recording) and results "
                                                "files, told apart by their headers")],
    config: ConfigOpt = DEFAULT_CONFIG,
    fmt: Annotated[str | None, typer.Option("--format", help="odds format of every CSV (default: told by its "
                                            "header): odds_csv, oddsapi_changes, football_data, pinnacle_mlb")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the figures as JSON")] = False,
    out: Annotated[Path | None, typer.Option(help="folder for report.html, the plots (PNG) and the ledger")] = None,
    sets: Annotated[list[str] | None, typer.Option("--set", help="strategy param: name=value on every strategy, "
                                                   "strategy.name=value on one")] = None,
    sweeps: Annotated[list[str] | None, typer.Option("--sweep", help="sweep a param: name=v1,v2,... (repeat for "
                                                     "a grid)")] = None,
    train: Annotated[str | None, typer.Option(help="walk-forward: choose on bets placed in this span "
                                              "(2019-2022, 2023, 2023-08-01..2024-06-30)")] = None,
    test: Annotated[str | None, typer.Option(help="walk-forward: report bets placed in this span")] = None,
    jobs: Annotated[int | None, typer.Option(help="sweep processes (default: every core)")] = None,
    bankroll: Annotated[str | None, typer.Option(help="bankroll for drawdown % and Sharpe (default: the "
                                                 "strategies' bankroll param)")] = None,
    resamples: Annotated[int, typer.Option(help="bootstrap resamples for the intervals")] = 10_000,
) -> None:
    """Backtest the config's strategies on historical odds and report closing line value, ROI
    with 95 % intervals, drawdown and breakdowns; --sweep runs a parameter grid across processes."""
    from bot.research.backtest import BacktestError, classify
    from bot.research.sweep import parse_assignment, parse_grid, parse_span

    if (train is None) != (test is None):
        fail("--train and --test go together: choose on one span, report the other")
    try:
        inputs = classify(paths, fmt)
        params = dict(parse_assignment(s) for s in sets or [])
        grid = parse_grid(sweeps) if sweeps else []
        spans = (parse_span(train), parse_span(test)) if train and test else None
    except BacktestError as exc:
        fail(str(exc))
    base = load_or_exit(config)
    money = _bankroll(base, bankroll)
    if grid or spans:
        _sweep(paths, config, fmt, params, grid or [{}], spans, jobs, money, resamples, as_json, out)
        return
    records = _single(base, inputs, config, params, out)
    _report(records, money, resamples, as_json, out, title=", ".join(p.name for p in paths))


def _bankroll(base: Settings, given: str | None) -> Decimal:
    from decimal import InvalidOperation

    if given is not None:
        try:
            value = Decimal(given)
        except InvalidOperation:
            fail(f"--bankroll {given!r}: not a number (e.g. --bankroll 10000)")
        if value <= 0:
            fail(f"--bankroll {given}: must be positive")
        return value
    found = [Decimal(str(s.params["bankroll"])) for s in base.strategies if s.enabled and "bankroll" in s.params]
    return max(found) if found else Decimal(10_000)


def _single(base: Settings, inputs: Any, config: Path, params: dict[str, Any], out: Path | None) -> list[BetRecord]:
    from loguru import logger

    from bot.engine.logs import setup_logging
    from bot.engine.wiring import BuildError
    from bot.research.backtest import BacktestError, backtest_settings, load_records, run

    state = (out / "ledger") if out is not None else Path(tempfile.mkdtemp(prefix="bot-backtest-"))
    if out is not None and (state / "bot.db").exists():
        fail(f"{state / 'bot.db'} exists: a backtest writes a fresh ledger; choose another --out or remove it")
    try:
        settings = backtest_settings(base, inputs, state, params=params, progress=sys.stderr.isatty())
    except BacktestError as exc:
        fail(str(exc))
    except ValueError as exc:  # a param the strategy's model refuses surfaces at build; the rest here
        fail(f"--set: {exc}")
    setup_logging(settings)
    try:
        stats = run(settings, config.resolve().parent)
    except BuildError as exc:
        fail(str(exc))
    if stats.failed:
        fail(*stats.failed, code=1)
    logger.bind(stage="backtest").info("backtest finished: {} events, ledger {}", stats.events, settings.db_path)
    return load_records(settings.db_path)


def _report(records: list[BetRecord], bankroll: Decimal, resamples: int, as_json: bool, out: Path | None,
            *, title: str) -> None:
    import orjson
    from rich.console import Console

    from bot.research.stats import breakdowns as breakdowns_of
    from bot.research.stats import summarise
    from bot.research.tables import render

    summary = summarise(records, bankroll, resamples=resamples)
    breakdowns = breakdowns_of(records)
    if out is not None:
        from bot.research.html import write_report

        page = write_report(out, summary, breakdowns, records, title=f"Backtest: {title}")
        print(f"report: {page}", file=sys.stderr)
    if as_json:
        sys.stdout.write(orjson.dumps({"summary": summary, "breakdowns": breakdowns},
                                      option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n")
    else:
        render(summary, breakdowns, Console())


def _sweep(paths: list[Path], config: Path, fmt: str | None, params: dict[str, Any], grid: list[dict[str, Any]],
           spans: Any, jobs: int | None, bankroll: Decimal, resamples: int, as_json: bool, out: Path | None) -> None:
    import orjson
    from rich.console import Console
    from rich.table import Table

    from bot.research.stats import summarise
    from bot.research.sweep import Job, rank_key, run_grid, within

    work = [Job(tuple(paths), config, fmt, {**params, **combo}) for combo in grid]
    print(f"sweep: {len(work)} combination(s) on {jobs or 'every'} core(s)", file=sys.stderr)
    results = run_grid(work, jobs)
    failed = [line for _, lines in results for line in lines]
    if failed:
        fail(*failed, code=1)
    rows: list[dict[str, Any]] = []
    for job, (records, _) in zip(work, results, strict=True):
        chosen_on = within(records, spans[0]) if spans else records
        rows.append({"params": job.params, "summary": summarise(chosen_on, bankroll, resamples=resamples),
                     "records": records})
    rows.sort(key=lambda r: rank_key(r["summary"]))
    verdict: dict[str, Any] = {"grid": [{"params": r["params"], "summary": r["summary"]} for r in rows]}
    if spans:
        best = rows[0]
        test_bets = within(best["records"], spans[1])
        verdict["walk_forward"] = {"train": spans[0].text, "test": spans[1].text, "chosen": best["params"],
                                   "test_summary": summarise(test_bets, bankroll, resamples=resamples)}
    if as_json:
        sys.stdout.write(orjson.dumps(verdict, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n")
    else:
        console = Console()
        table = Table(title="sweep" + (f" (figures on the train span {spans[0].text})" if spans else ""))
        for column in ("params", "bets", "mean CLV", "CLV 95% CI", "p (CLV>0)", "ROI", "ROI 95% CI", "PnL"):
            table.add_column(column)
        for r in rows:
            s = r["summary"]
            table.add_row(*_sweep_cells(r["params"], s))
        console.print(table)
        if spans:
            wf = verdict["walk_forward"]
            test_table = Table(title=f"walk-forward: chosen on {wf['train']}, reported on {wf['test']} only")
            for column in ("params", "bets", "mean CLV", "CLV 95% CI", "p (CLV>0)", "ROI", "ROI 95% CI", "PnL"):
                test_table.add_column(column)
            test_table.add_row(*_sweep_cells(wf["chosen"], wf["test_summary"]))
            console.print(test_table)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "sweep.json").write_bytes(orjson.dumps(verdict, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))


def _sweep_cells(params: dict[str, Any], s: dict[str, Any]) -> list[str]:
    def pct(x: Any) -> str:
        return "-" if x is None else f"{x:+.2%}"

    def ci(pair: Any) -> str:
        return "-" if not pair else f"[{pct(pair[0])}, {pct(pair[1])}]"

    clv = s.get("clv", {})
    p = clv.get("p_value")
    return [", ".join(f"{k}={v}" for k, v in params.items()) or "(config)", str(s.get("bets", 0)),
            pct(clv.get("mean")), ci(clv.get("ci95")), "-" if p is None else f"{p:.3g}", pct(s.get("roi")),
            ci(s.get("roi_ci95")), str(s.get("pnl", "-"))]
