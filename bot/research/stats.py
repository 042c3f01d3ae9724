"""Statistics over a backtest's bets: ROI and CLV with bootstrap intervals, a one-sided CLV
t-test, drawdown, losing runs, daily Sharpe, and breakdowns by strategy, book, market, sport,
odds band and month (docs/research.md, "Statistics").

Conventions (every public function):
- money is `Decimal`, summed exactly and written to JSON as a string rounded half-even to the cent;
  ratios (ROI, hit rate, CLV, drawdown share) are floats as fractions (0.018 = 1.8 %);
- times are UTC; a naive datetime is read as UTC;
- a bet's settlement time is `settled_at`, else `start_time`, else `placed_at`; ties are broken by
  `bet_id`, so every figure is independent of the input order (the bootstrap resamples a
  canonical order too);
- a malformed bet (price not a finite number > 1, stake not > 0, a non-finite pnl or CLV) is
  skipped, counted in `skipped_malformed` and logged at WARNING.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import numpy as np
from loguru import logger
from scipy import stats as sps  # type: ignore[import-untyped]  # scipy ships no stubs

from bot.research.records import BetRecord

BREAKDOWNS: tuple[str, ...] = ("strategy", "bookmaker", "market", "sport", "side", "odds_band", "month")

# Lower edges of the odds bands; the last band is open-ended. Prices in (1, 1.01) get their own band.
ODDS_BAND_EDGES: tuple[float, ...] = (1.01, 1.5, 2.0, 3.0, 5.0, 10.0)

WINS = frozenset({"WON", "HALF_WON"})
LOSSES = frozenset({"LOST", "HALF_LOST"})
VOID_PUSH = frozenset({"VOID", "PUSH"})
# Above this many bets the BCa jackknife (O(n^2)) is too slow; the percentile interval is used.
BCA_MAX_N = 5_000
_CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class EquityPoint:
    """The bankroll just after one settled bet: `equity` = bankroll + cumulative pnl, `peak` the
    running maximum of equity (starting at the bankroll), so `peak - equity` is the drawdown."""

    at: datetime
    bet_id: int
    equity: Decimal
    peak: Decimal

    @property
    def drawdown(self) -> Decimal:
        return self.peak - self.equity


def money(value: Decimal) -> str:
    """`value` rounded half-even to the cent, as a string ("12.30")."""
    return str(value.quantize(_CENT, rounding=ROUND_HALF_EVEN))


def utc(moment: datetime) -> datetime:
    """`moment` in UTC; a naive datetime is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def settlement_time(bet: BetRecord) -> datetime:
    """When the bet settled (UTC): `settled_at`, else `start_time`, else `placed_at`."""
    return utc(bet.settled_at or bet.start_time or bet.placed_at)


def _problem(bet: BetRecord) -> str | None:
    """Why a bet cannot be counted, or None when it is well formed."""
    if not isinstance(bet.price, int | float) or not math.isfinite(bet.price) or bet.price <= 1.0:
        return f"price {bet.price!r} is not decimal odds > 1"
    if not isinstance(bet.stake, Decimal) or not bet.stake.is_finite() or bet.stake <= 0:
        return f"stake {bet.stake!r} is not a positive Decimal"
    if bet.pnl is not None and (not isinstance(bet.pnl, Decimal) or not bet.pnl.is_finite()):
        return f"pnl {bet.pnl!r} is not a finite Decimal"
    if bet.clv is not None and (not isinstance(bet.clv, int | float) or not math.isfinite(bet.clv)):
        return f"clv {bet.clv!r} is not a finite number"
    return None


def clean(bets: Iterable[BetRecord]) -> tuple[list[BetRecord], int]:
    """The well-formed bets in canonical order (settlement time, then bet_id) and how many were
    skipped; each skipped bet is logged at WARNING with its id and the reason."""
    good: list[BetRecord] = []
    skipped = 0
    for bet in bets:
        reason = _problem(bet)
        if reason is None:
            good.append(bet)
        else:
            skipped += 1
            logger.warning("research stats: bet {} skipped: {}", getattr(bet, "bet_id", "?"), reason)
    good.sort(key=_order_key)
    return good, skipped


def _order_key(bet: BetRecord) -> tuple[datetime, int, datetime, float, Decimal, str]:
    return (settlement_time(bet), bet.bet_id, utc(bet.placed_at), bet.price, bet.stake, bet.selection)


def _settled(bets: Sequence[BetRecord]) -> list[tuple[BetRecord, Decimal]]:
    """The settled bets of an already-cleaned list, with their pnl (typed as present)."""
    return [(b, b.pnl) for b in bets if b.pnl is not None]


def _equity(bets: Sequence[BetRecord], bankroll: Decimal) -> list[EquityPoint]:
    points: list[EquityPoint] = []
    equity = peak = bankroll
    for bet, pnl in _settled(bets):
        equity += pnl
        peak = max(peak, equity)
        points.append(EquityPoint(settlement_time(bet), bet.bet_id, equity, peak))
    return points


def equity_curve(bets: Sequence[BetRecord], bankroll: Decimal) -> list[EquityPoint]:
    """One point per settled bet in settlement order: bankroll + cumulative pnl and its running
    peak (Decimal, ledger currency). Unsettled and malformed bets are not on the curve."""
    return _equity(clean(bets)[0], bankroll)


def _daily(bets: Sequence[BetRecord]) -> list[tuple[date, Decimal]]:
    days: dict[date, Decimal] = defaultdict(Decimal)
    for bet, pnl in _settled(bets):
        days[settlement_time(bet).date()] += pnl
    return sorted(days.items())


def daily_pnl(bets: Sequence[BetRecord]) -> list[tuple[date, Decimal]]:
    """Exact pnl per UTC settlement day, over the days with at least one settlement, in date order."""
    return _daily(clean(bets)[0])


def _ratio(pnl: np.ndarray, stake: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.asarray(pnl.sum(axis=axis) / stake.sum(axis=axis))


def _mean(values: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.asarray(values.mean(axis=axis))


def bootstrap_ci(
    data: tuple[np.ndarray, ...],
    statistic: Callable[..., np.ndarray],
    *,
    resamples: int,
    seed: int,
) -> tuple[list[float] | None, str]:
    """95 % two-sided bootstrap interval of `statistic` over the rows of `data` (paired: row i of
    every array is resampled together), with the method used. scipy.stats.bootstrap, BCa up to
    BCA_MAX_N rows and percentile beyond (BCa's jackknife is quadratic in n); BCa falls back to
    percentile when it is undefined (all resampled statistics equal). None with fewer than 2 rows.
    The generator is seeded with `seed`, so equal inputs give equal intervals."""
    n = len(data[0])
    if n < 2:
        return None, "none"
    method = "BCa" if n <= BCA_MAX_N else "percentile"
    batch = max(1, 4_000_000 // n)  # bounds memory at ~32 MB per array per batch
    for attempt in (method, "percentile"):
        with warnings.catch_warnings():
            # Degenerate data (every value equal) makes BCa NaN with a warning: handled below.
            warnings.simplefilter("ignore")
            result = sps.bootstrap(
                data,
                statistic,
                n_resamples=resamples,
                batch=batch,
                vectorized=True,
                paired=len(data) > 1,
                confidence_level=0.95,
                method=attempt,
                rng=np.random.default_rng(seed),
            )
        low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
        if math.isfinite(low) and math.isfinite(high):
            return [low, high], attempt
    return None, "none"


def one_sided_p(values: np.ndarray) -> float | None:
    """p-value of H0: mean <= 0 against H1: mean > 0, one-sample t-test
    (scipy.stats.ttest_1samp, alternative="greater"). None with < 2 values or zero variance."""
    if len(values) < 2 or float(np.ptp(values)) == 0.0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # near-constant data: scipy warns about precision
        p = float(sps.ttest_1samp(values, 0.0, alternative="greater").pvalue)
    return p if math.isfinite(p) else None


def _max_drawdown(points: Sequence[EquityPoint]) -> tuple[Decimal, Decimal | None]:
    """Largest peak-to-trough fall in money and the peak it fell from (the first such fall)."""
    worst, at_peak = Decimal(0), None
    for point in points:
        if point.drawdown > worst:
            worst, at_peak = point.drawdown, point.peak
    return worst, at_peak


def _longest_losing_run(bets: Sequence[BetRecord]) -> int:
    """LOST and HALF_LOST extend a run; WON, HALF_WON and any other bet with pnl > 0 end it; VOID,
    PUSH and other non-positive results (e.g. a losing cash-out) leave it as it is."""
    longest = run = 0
    for bet, pnl in _settled(bets):
        if bet.status in LOSSES:
            run += 1
            longest = max(longest, run)
        elif bet.status in WINS or pnl > 0:
            run = 0
    return longest


def _sharpe(days: Sequence[tuple[date, Decimal]]) -> float | None:
    if len(days) < 2:
        return None
    values = np.array([float(v) for _, v in days])
    std = float(values.std(ddof=1))
    if std == 0.0:
        return None
    return float(values.mean() / std * math.sqrt(365))


def _clv(bets: Sequence[BetRecord], resamples: int, seed: int) -> dict[str, Any]:
    values = np.array([b.clv for b in bets if b.clv is not None], dtype=float)
    n = len(values)
    ci, method = bootstrap_ci((values,), _mean, resamples=resamples, seed=seed)
    return {
        "n_with_close": n,
        "n_without_close": len(bets) - n,
        "mean": float(values.mean()) if n else None,
        "ci95": ci,
        "ci_method": method,
        "share_beating_close": float((values > 0).mean()) if n else None,
        "p_value": one_sided_p(values),
    }


def _unsettled_row(bet: BetRecord) -> dict[str, Any]:
    return {
        "bet_id": bet.bet_id,
        "strategy": bet.strategy,
        "bookmaker": bet.bookmaker,
        "sport": bet.sport,
        "market": bet.market,
        "selection": bet.selection,
        "placed_at": utc(bet.placed_at).isoformat(),
        "start_time": utc(bet.start_time).isoformat() if bet.start_time else None,
        "price": bet.price,
        "stake": money(bet.stake),
        "status": bet.status,
    }


def summarise(
    bets: Sequence[BetRecord], bankroll: Decimal, *, resamples: int = 10_000, seed: int = 0
) -> dict[str, Any]:
    """Headline figures of a backtest, JSON-ready (money as cent strings, ratios as fractions).

    Keys:
    - `bets`, `settled`, `unsettled`, `void_push`, `skipped_malformed`: counts. Unsettled bets are
      listed in `unsettled_bets` (id, names, placed_at ISO UTC, price, stake), never dropped.
    - `bankroll`, `turnover` (sum of settled stakes, void and push included: they are settled),
      `pnl` (sum of settled pnl): money.
    - `roi` = pnl / turnover; `roi_ci95` [low, high]: bootstrap of sum(pnl) / sum(stake) with the
      settled bets resampled in pairs (`roi_ci_method`: "BCa" or "percentile", see
      `bootstrap_ci`), `resamples` resamples from a generator seeded with `seed`.
    - `hit_rate`: share of decided bets (WON, HALF_WON, LOST, HALF_LOST; not VOID, PUSH or a
      cash-out) that WON or HALF_WON (a half win counts as a hit: the bet made money);
      `implied_hit_rate`: mean of 1/price over the same bets (the break-even hit rate, vig
      included); `avg_odds`: their mean price; `n_decided`: how many.
    - `max_drawdown`: largest fall of bankroll + cumulative settled pnl below its running peak
      (settlement order), money; `max_drawdown_ratio`: that fall over the peak it fell from
      (None when that peak is <= 0); `max_drawdown_peak`: that peak, money.
    - `longest_losing_run`: see `_longest_losing_run` (settlement order).
    - `sharpe_daily`: mean / sample std of daily pnl over UTC days with at least one settlement,
      times sqrt(365) (annualised as if every day had bets; days without settlements are left
      out, which flatters a sparse record); None with < 2 such days or zero spread. `n_days`.
    - `clv`: over every bet with a close, settled or not: `mean`, `ci95` (bootstrap of the mean,
      same seed), `share_beating_close` (clv > 0), `p_value` of H0 mean CLV <= 0 (one-sided
      t-test, scipy.stats.ttest_1samp alternative="greater"; None with < 2 values or all
      equal), `n_with_close`, `n_without_close`.
    - `first_placed`, `last_settled`: ISO UTC or None.

    Raises nothing on bad bets (skipped, counted, logged); `resamples` < 1 raises ValueError.
    """
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    good, skipped = clean(bets)
    settled = _settled(good)
    turnover = sum((b.stake for b, _ in settled), Decimal(0))
    pnl = sum((p for _, p in settled), Decimal(0))
    decided = [b for b, _ in settled if b.status in WINS | LOSSES]
    points = _equity(good, bankroll)
    drawdown, peak = _max_drawdown(points)
    days = _daily(good)
    roi_ci, roi_method = bootstrap_ci(
        (np.array([float(p) for _, p in settled]), np.array([float(b.stake) for b, _ in settled])),
        _ratio,
        resamples=resamples,
        seed=seed,
    )
    unsettled = sorted((b for b in good if b.pnl is None), key=lambda b: (utc(b.placed_at), b.bet_id))
    return {
        "bets": len(good),
        "settled": len(settled),
        "unsettled": len(unsettled),
        "void_push": sum(1 for b, _ in settled if b.status in VOID_PUSH),
        "skipped_malformed": skipped,
        "bankroll": money(bankroll),
        "turnover": money(turnover),
        "pnl": money(pnl),
        "roi": float(pnl / turnover) if turnover else None,
        "roi_ci95": roi_ci,
        "roi_ci_method": roi_method,
        "resamples": resamples,
        "seed": seed,
        "n_decided": len(decided),
        "hit_rate": sum(1 for b in decided if b.status in WINS) / len(decided) if decided else None,
        "implied_hit_rate": float(np.mean([1.0 / b.price for b in decided])) if decided else None,
        "avg_odds": float(np.mean([b.price for b in decided])) if decided else None,
        "max_drawdown": money(drawdown),
        "max_drawdown_ratio": float(drawdown / peak) if peak is not None and peak > 0 else None,
        "max_drawdown_peak": money(peak) if peak is not None else None,
        "longest_losing_run": _longest_losing_run(good),
        "n_days": len(days),
        "sharpe_daily": _sharpe(days),
        "clv": _clv(good, resamples, seed),
        "first_placed": min(utc(b.placed_at) for b in good).isoformat() if good else None,
        "last_settled": settlement_time(settled[-1][0]).isoformat() if settled else None,
        "unsettled_bets": [_unsettled_row(b) for b in unsettled],
    }


def odds_band(price: float) -> str:
    """The band label of a decimal price: "1.00-1.01", "1.01-1.50", "1.50-2.00", "2.00-3.00",
    "3.00-5.00", "5.00-10.00" or "10.00+" (lower edge inclusive)."""
    lower = 1.0
    for edge in ODDS_BAND_EDGES:
        if price < edge:
            return f"{lower:.2f}-{edge:.2f}"
        lower = edge
    return f"{lower:.2f}+"


def odds_band_labels() -> list[str]:
    """Every band label in price order (odds_band)."""
    return [odds_band(1.0), *(odds_band(edge) for edge in ODDS_BAND_EDGES)]


def _group(bet: BetRecord, by: str) -> str:
    if by == "odds_band":
        return odds_band(bet.price)
    if by == "month":
        return utc(bet.placed_at).strftime("%Y-%m")
    return str(getattr(bet, by))


def breakdown(bets: Sequence[BetRecord], by: str) -> list[dict[str, Any]]:
    """Per-group figures, one dict per group with at least one bet:
    `group`, `bets`, `settled`, `turnover` and `pnl` (money over the settled bets), `roi` (pnl /
    turnover, None without turnover), `n_with_close`, `clv_mean` and `share_beating_close` (None
    without a close). Groups: "strategy", "bookmaker", "market", "sport", "side" ("back" and
    "lay"; a lay's turnover is its backer's stake; sorted by name),
    "odds_band" (price order, see odds_band), "month" (YYYY-MM of placed_at, UTC; chronological).
    Raises ValueError for any other `by`."""
    if by not in BREAKDOWNS:
        raise ValueError(f"unknown breakdown {by!r}; expected one of {', '.join(BREAKDOWNS)}")
    return _breakdown(clean(bets)[0], by)


def _breakdown(good: Sequence[BetRecord], by: str) -> list[dict[str, Any]]:
    groups: dict[str, list[BetRecord]] = defaultdict(list)
    for bet in good:
        groups[_group(bet, by)].append(bet)
    if by == "odds_band":
        order = {label: i for i, label in enumerate(odds_band_labels())}
        keys = sorted(groups, key=order.__getitem__)
    else:
        keys = sorted(groups)
    return [_group_row(key, groups[key]) for key in keys]


def _group_row(key: str, bets: Sequence[BetRecord]) -> dict[str, Any]:
    settled = _settled(bets)
    turnover = sum((b.stake for b, _ in settled), Decimal(0))
    pnl = sum((p for _, p in settled), Decimal(0))
    clvs = [b.clv for b in bets if b.clv is not None]
    return {
        "group": key,
        "bets": len(bets),
        "settled": len(settled),
        "turnover": money(turnover),
        "pnl": money(pnl),
        "roi": float(pnl / turnover) if turnover else None,
        "n_with_close": len(clvs),
        "clv_mean": float(np.mean(clvs)) if clvs else None,
        "share_beating_close": sum(1 for c in clvs if c > 0) / len(clvs) if clvs else None,
    }


def breakdowns(bets: Sequence[BetRecord]) -> dict[str, list[dict[str, Any]]]:
    """Every breakdown (BREAKDOWNS) keyed by its name; malformed bets are logged once."""
    good = clean(bets)[0]
    return {by: _breakdown(good, by) for by in BREAKDOWNS}
