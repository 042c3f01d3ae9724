"""The self-contained HTML report of a backtest (docs/research.md, "Report"): one report.html
with inline CSS and the plots embedded as base64 PNG data URIs (no external resource, no
JavaScript), plus the same plots as PNG files beside it. The figures and their formatting are
those of the terminal tables (bot.research.tables); every text is HTML-escaped."""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.research.plots import PLOT_FILES, render_all
from bot.research.records import BetRecord
from bot.research.tables import BREAKDOWN_COLUMNS, BREAKDOWN_TITLES, breakdown_cells, headline_rows, verdict

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1100px;
       color: #1b1b1b; background: #fafafa; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 2px solid #1565c0; padding-bottom: .2rem; }
table { border-collapse: collapse; margin: .6rem 0; background: #fff; }
th, td { border: 1px solid #d0d7de; padding: .3rem .6rem; text-align: right; }
th { background: #e8eef6; }
td:first-child, th:first-child { text-align: left; }
tr:nth-child(even) td { background: #f4f6f8; }
.verdict { font-size: 1.1rem; font-weight: 600; padding: .6rem .9rem; border-left: 5px solid #1565c0;
           background: #e8eef6; }
.verdict.edge { border-color: #2e7d32; background: #e8f5e9; }
.verdict.worse { border-color: #c62828; background: #fdecea; }
.n { color: #666; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #d0d7de; background: #fff; }
figcaption { color: #555; font-size: .9rem; }
"""

_CAPTIONS = {
    "equity.png": "Equity: bankroll plus cumulative settled PnL in settlement order; red: drawdown from the peak.",
    "clv_hist.png": "Closing line value of every bet with a close; solid line: mean, dashed: zero.",
    "odds_bands.png": "ROI and mean CLV by odds band; n under each band.",
    "monthly_pnl.png": "Settled PnL by month placed (UTC); n per bar.",
}
_UNSETTLED_COLUMNS = ("Bet", "Strategy", "Bookmaker", "Sport", "Market", "Selection", "Placed (UTC)", "Price", "Stake")


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _table(header: Sequence[str], rows: Iterable[Sequence[object]], *, first_left: bool = True) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _verdict_class(line: str) -> str:
    if line.endswith("the prices beat the close"):
        return "verdict edge"
    if line.endswith("the prices are worse than the close"):
        return "verdict worse"
    return "verdict"


def _unsettled(summary: dict[str, Any]) -> str:
    rows = summary.get("unsettled_bets", [])
    if not rows:
        return "<p>None: every bet is settled.</p>"
    cells = [
        (
            r["bet_id"],
            r["strategy"],
            r["bookmaker"],
            r["sport"],
            r["market"],
            r["selection"],
            r["placed_at"],
            f"{r['price']:.2f}",
            r["stake"],
        )
        for r in rows
    ]
    return f'<p class="n">n = {len(rows)}</p>' + _table(_UNSETTLED_COLUMNS, cells)


def _period(summary: dict[str, Any]) -> str:
    span = f"{summary['first_placed'] or '-'} to {summary['last_settled'] or '-'} (UTC)"
    boot = (
        f"bootstrap: {summary['resamples']} resamples, seed {summary['seed']}, ROI interval {summary['roi_ci_method']}"
    )
    return f'<p class="n">{_e(span)}; {_e(boot)}</p>'


def render_html(
    summary: dict[str, Any], breakdowns: dict[str, list[dict[str, Any]]], images: dict[str, bytes], *, title: str
) -> str:
    """The report as one HTML string; `images` maps PLOT_FILES names to PNG bytes (embedded as
    data URIs, in PLOT_FILES order; missing ones are left out)."""
    line = verdict(summary)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        _period(summary),
        f'<p class="{_verdict_class(line)}">{_e(line)}</p>',
        "<h2>Headline</h2>",
        _table(("Figure", "Value", "n"), headline_rows(summary)),
        "<h2>Plots</h2>",
    ]
    for name in PLOT_FILES:
        if name in images:
            data = base64.b64encode(images[name]).decode("ascii")
            parts.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{_e(name)}" id="{_e(name.removesuffix(".png"))}">'
                f"<figcaption>{_e(_CAPTIONS.get(name, name))}</figcaption></figure>"
            )
    for key, rows in breakdowns.items():
        parts.append(f"<h2>{_e(BREAKDOWN_TITLES.get(key, key))}</h2>")
        parts.append(_table(BREAKDOWN_COLUMNS, [breakdown_cells(r) for r in rows]) if rows else "<p>No bets.</p>")
    parts += ["<h2>Unsettled bets</h2>", _unsettled(summary), "</body></html>"]
    return "\n".join(parts) + "\n"


def write_report(
    out_dir: Path,
    summary: dict[str, Any],
    breakdowns: dict[str, list[dict[str, Any]]],
    bets: Sequence[BetRecord],
    *,
    title: str,
) -> Path:
    """Write equity.png, clv_hist.png, odds_bands.png, monthly_pnl.png and report.html (UTF-8)
    into `out_dir` (created if missing) and return the path of report.html. `summary` and
    `breakdowns` are stats.summarise / stats.breakdowns output for the same `bets`; the equity
    curve starts from `summary["bankroll"]`. Raises OSError when out_dir cannot be written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    images = render_all(bets, Decimal(summary["bankroll"]))
    for name, png in images.items():
        (out_dir / name).write_bytes(png)
    report = out_dir / "report.html"
    report.write_text(render_html(summary, breakdowns, images, title=title), encoding="utf-8")
    return report
