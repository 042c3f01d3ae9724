"""Terminal tables of a backtest summary (bot.research.stats.summarise / breakdowns) with a
plain-language verdict on closing line value (docs/research.md, "Statistics"). The row
formatting here is shared with the HTML report, so both show the same figures the same way;
every figure is shown next to the number of bets it is computed over."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

# The evidence rule of `verdict`: one-sided p below this AND the whole 95 % CI above zero.
SIGNIFICANCE = 0.05

BREAKDOWN_TITLES = {
    "strategy": "By strategy",
    "bookmaker": "By bookmaker",
    "market": "By market",
    "sport": "By sport",
    "side": "By side (back / lay)",
    "odds_band": "By odds band (decimal odds)",
    "month": "By month placed (UTC)",
}
BREAKDOWN_COLUMNS = ("Group", "Bets", "Settled", "Turnover", "PnL", "ROI", "With close", "Mean CLV", "Beat close")


def pct(value: float | None, digits: int = 1, *, sign: bool = True) -> str:
    """A fraction as a percentage ("+1.8 %"); "n/a" for None."""
    if value is None:
        return "n/a"
    return f"{value * 100:{'+' if sign else ''}.{digits}f} %"


def interval(ci: Sequence[float] | None, digits: int = 1) -> str:
    """A 95 % interval of fractions in percent ("[0.9, 2.7]"); "" when there is none."""
    if not ci:
        return ""
    return f"[{ci[0] * 100:.{digits}f}, {ci[1] * 100:.{digits}f}]"


def p_value(p: float | None) -> str:
    """ "p = 0.0004", "p < 0.0001" or "p n/a"."""
    if p is None:
        return "p n/a"
    return "p < 0.0001" if p < 0.0001 else f"p = {p:.4f}"


def amount(text: str | None) -> str:
    """A money string from the summary with thousands separators ("-1,234.50")."""
    return "n/a" if text is None else f"{Decimal(text):,.2f}"


def verdict(summary: dict[str, Any]) -> str:
    """One line on closing line value. The rule: "the prices beat the close" only when the
    one-sided p-value of H0 mean CLV <= 0 is below 0.05 AND the 95 % bootstrap interval of the
    mean lies wholly above 0; "the prices are worse than the close" when that interval lies wholly
    below 0; otherwise "no evidence of an edge". E.g.
    "CLV +1.8 % [0.9, 2.7], p = 0.0004 over 612 bets: the prices beat the close"."""
    clv = summary["clv"]
    n = clv["n_with_close"]
    if not n:
        return f"No closing prices for any of the {summary['bets']} bets: CLV cannot be judged."
    ci, p = clv["ci95"], clv["p_value"]
    if p is not None and p < SIGNIFICANCE and ci and ci[0] > 0:
        judgement = "the prices beat the close"
    elif ci and ci[1] < 0:
        judgement = "the prices are worse than the close"
    else:
        judgement = "no evidence of an edge"
    shown = " ".join(part for part in (pct(clv["mean"]), interval(ci)) if part)
    return f"CLV {shown}, {p_value(p)} over {n} bets: {judgement}"


def headline_rows(summary: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(figure, value, n) rows of the headline table, each n saying what the figure is over."""
    clv = summary["clv"]
    settled = f"{summary['settled']} settled"
    decided = f"{summary['n_decided']} decided"
    drawdown = amount(summary["max_drawdown"])
    if summary["max_drawdown_ratio"] is not None:
        drawdown += (
            f" ({pct(summary['max_drawdown_ratio'], sign=False)} of the {amount(summary['max_drawdown_peak'])} peak)"
        )
    roi = " ".join(part for part in (pct(summary["roi"], 2), interval(summary["roi_ci95"], 2)) if part)
    clv_mean = " ".join(part for part in (pct(clv["mean"], 2), interval(clv["ci95"], 2)) if part)
    sharpe = summary["sharpe_daily"]
    return [
        (
            "Bets",
            (
                f"{summary['bets']} ({summary['unsettled']} unsettled, {summary['void_push']} void/push, "
                f"{summary['skipped_malformed']} malformed skipped)"
            ),
            f"{summary['bets']} bets",
        ),
        ("Bankroll", amount(summary["bankroll"]), ""),
        ("Turnover", amount(summary["turnover"]), settled),
        ("PnL", amount(summary["pnl"]), settled),
        ("ROI [95 % CI]", roi, settled),
        (
            "Hit rate vs implied",
            f"{pct(summary['hit_rate'], sign=False)} vs {pct(summary['implied_hit_rate'], sign=False)}",
            decided,
        ),
        ("Average odds", "n/a" if summary["avg_odds"] is None else f"{summary['avg_odds']:.2f}", decided),
        ("Mean CLV [95 % CI]", clv_mean, f"{clv['n_with_close']} with close, {clv['n_without_close']} without"),
        ("CLV > 0 (one-sided t-test)", p_value(clv["p_value"]), f"{clv['n_with_close']} with close"),
        ("Beat the close", pct(clv["share_beating_close"], sign=False), f"{clv['n_with_close']} with close"),
        ("Max drawdown", drawdown, settled),
        ("Longest losing run", f"{summary['longest_losing_run']} bets", settled),
        ("Sharpe (daily, x sqrt 365)", "n/a" if sharpe is None else f"{sharpe:.2f}", f"{summary['n_days']} days"),
    ]


def breakdown_cells(row: dict[str, Any]) -> list[str]:
    """One breakdown row (stats.breakdown) as strings in BREAKDOWN_COLUMNS order."""
    return [
        str(row["group"]),
        str(row["bets"]),
        str(row["settled"]),
        amount(row["turnover"]),
        amount(row["pnl"]),
        pct(row["roi"]),
        str(row["n_with_close"]),
        pct(row["clv_mean"], 2),
        pct(row["share_beating_close"], sign=False),
    ]


def render(summary: dict[str, Any], breakdowns: dict[str, list[dict[str, Any]]], console: Console) -> None:
    """Print the headline table, the verdict line (rule in `verdict`) and one table per breakdown
    (keys of BREAKDOWN_TITLES; other keys are printed under their own name) to `console`."""
    headline = Table(title="Backtest summary", title_justify="left")
    headline.add_column("Figure")
    headline.add_column("Value", justify="right")
    headline.add_column("n", justify="right", style="dim")
    for cells in headline_rows(summary):
        headline.add_row(*map(Text, cells))  # Text: names are never read as rich markup
    console.print(headline)
    console.print(verdict(summary), style="bold", markup=False, highlight=False)
    for key, rows in breakdowns.items():
        table = Table(title=BREAKDOWN_TITLES.get(key, key), title_justify="left")
        for i, column in enumerate(BREAKDOWN_COLUMNS):
            table.add_column(column, justify="left" if i == 0 else "right")
        for row in rows:
            table.add_row(*map(Text, breakdown_cells(row)))
        console.print(table)
