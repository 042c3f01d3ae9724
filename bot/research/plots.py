"""The report's plots as PNG bytes (docs/research.md, "Report"): equity curve with drawdown,
CLV histogram, ROI and CLV by odds band, PnL by month.

Drawn with matplotlib's object API (`Figure` rendered by the Agg canvas) rather than pyplot: no
GUI backend is ever loaded, no global figure registry is touched (nothing leaks between calls or
threads), and importing this module changes no process-wide backend setting. The same input
gives the same bytes. Empty input draws an explicit "no data" figure rather than raising.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from datetime import UTC
from decimal import Decimal

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import date2num
from matplotlib.figure import Figure

from bot.research.records import BetRecord
from bot.research.stats import breakdown, clean, equity_curve

PLOT_FILES = ("equity.png", "clv_hist.png", "odds_bands.png", "monthly_pnl.png")
_SIZE = (9.0, 4.5)  # inches at _DPI: 900 x 450 px
_DPI = 100
_GREEN, _RED, _BLUE, _GREY = "#2e7d32", "#c62828", "#1565c0", "#9e9e9e"


def _figure() -> tuple[Figure, Axes]:
    fig = Figure(figsize=_SIZE, dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    # No "Software" text chunk: the bytes then depend on the drawing only.
    fig.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    return buffer.getvalue()


def _no_data(ax: Axes, title: str, why: str) -> None:
    ax.set_title(title)
    ax.text(0.5, 0.5, f"no data\n{why}", ha="center", va="center", fontsize=16, color=_GREY, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def equity_png(bets: Sequence[BetRecord], bankroll: Decimal) -> bytes:
    """Bankroll + cumulative settled pnl against settlement time (UTC), the running peak, and the
    drawdown (peak - equity) shaded red; title gives n settled and the max drawdown."""
    fig, ax = _figure()
    points = equity_curve(bets, bankroll)
    title = "Equity (bankroll + settled PnL)"
    if not points:
        _no_data(ax, title, "no settled bets")
        return _png(fig)
    # Step before the first settlement at the starting bankroll.
    times = date2num([points[0].at, *(p.at for p in points)])
    equity = [float(bankroll), *(float(p.equity) for p in points)]
    peak = [float(bankroll), *(float(p.peak) for p in points)]
    worst = max(points, key=lambda p: p.drawdown)
    ax.plot(times, equity, color=_BLUE, linewidth=1.4, label="equity", drawstyle="steps-post")
    ax.plot(times, peak, color=_GREY, linewidth=0.8, linestyle="--", label="running peak", drawstyle="steps-post")
    ax.fill_between(times, equity, peak, step="post", color=_RED, alpha=0.25, linewidth=0, label="drawdown")
    ax.axhline(float(bankroll), color="black", linewidth=0.6)
    ax.set_title(f"{title}: n = {len(points)} settled, max drawdown {worst.drawdown:,.2f}")
    ax.xaxis_date(tz=UTC)
    ax.set_xlabel("settled (UTC)")
    ax.set_ylabel("money")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    return _png(fig)


def clv_hist_png(bets: Sequence[BetRecord]) -> bytes:
    """Histogram of CLV in percent over the bets with a close, with the mean (solid) and zero
    (dashed) marked; title gives n and the mean."""
    fig, ax = _figure()
    values = [b.clv * 100 for b in clean(bets)[0] if b.clv is not None]
    title = "Closing line value (expected value per unit stake at the close)"
    if not values:
        _no_data(ax, title, "no bet has a closing price")
        return _png(fig)
    mean = sum(values) / len(values)
    bins = max(10, min(60, round(math.sqrt(len(values)) * 2)))
    ax.hist(values, bins=bins, color=_BLUE, alpha=0.75, edgecolor="white")
    ax.axvline(0.0, color="black", linestyle="--", linewidth=0.8)
    ax.axvline(mean, color=_GREEN if mean > 0 else _RED, linewidth=2, label=f"mean {mean:+.2f} %")
    ax.set_title(f"{title}: n = {len(values)}")
    ax.set_xlabel("CLV (%)")
    ax.set_ylabel("bets")
    ax.legend(loc="upper right")
    ax.grid(alpha=0.3)
    return _png(fig)


def odds_bands_png(bets: Sequence[BetRecord]) -> bytes:
    """ROI and mean CLV in percent per odds band (stats.odds_band) side by side; each band's tick
    label carries its n (settled bets for ROI, bets with a close for CLV)."""
    fig, ax = _figure()
    rows = breakdown(bets, "odds_band")
    title = "ROI and mean CLV by odds band"
    if not rows:
        _no_data(ax, title, "no bets")
        return _png(fig)
    xs = list(range(len(rows)))
    roi = [(r["roi"] or 0.0) * 100 for r in rows]
    clv = [(r["clv_mean"] or 0.0) * 100 for r in rows]
    width = 0.38
    ax.bar([x - width / 2 for x in xs], roi, width, color=_BLUE, label="ROI (%)")
    ax.bar([x + width / 2 for x in xs], clv, width, color=_GREEN, label="mean CLV (%)")
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.set_xticks(xs, [f"{r['group']}\nn={r['settled']} / {r['n_with_close']}" for r in rows])
    ax.set_title(f"{title} (n = settled / with close)")
    ax.set_ylabel("%")
    ax.legend(loc="best")
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def monthly_pnl_png(bets: Sequence[BetRecord]) -> bytes:
    """Settled PnL per month placed (UTC), green above zero and red below, n settled per bar."""
    fig, ax = _figure()
    rows = [r for r in breakdown(bets, "month") if r["settled"]]
    title = "PnL by month placed (UTC)"
    if not rows:
        _no_data(ax, title, "no settled bets")
        return _png(fig)
    pnl = [float(Decimal(r["pnl"])) for r in rows]
    bars = ax.bar(range(len(rows)), pnl, color=[_GREEN if v >= 0 else _RED for v in pnl])
    ax.bar_label(bars, labels=[f"n={r['settled']}" for r in rows], fontsize=8, padding=2)
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.set_xticks(range(len(rows)), [r["group"] for r in rows], rotation=45 if len(rows) > 8 else 0)
    ax.set_title(title)
    ax.set_ylabel("money")
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def render_all(bets: Sequence[BetRecord], bankroll: Decimal) -> dict[str, bytes]:
    """Every plot keyed by its file name (PLOT_FILES order); malformed bets are logged once."""
    good = clean(bets)[0]
    return {
        "equity.png": equity_png(good, bankroll),
        "clv_hist.png": clv_hist_png(good),
        "odds_bands.png": odds_bands_png(good),
        "monthly_pnl.png": monthly_pnl_png(good),
    }
