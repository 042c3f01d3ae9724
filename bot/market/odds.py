"""Odds maths: American <-> decimal odds, implied probability, overround, no-vig fair prices,
expected value, the Kelly fraction, and what a back or lay bet puts at risk.

Units: `price` is decimal odds (> 1.0, stake included); `american` is American (moneyline) odds
(+150 wins 150 per 100 staked, -200 stakes 200 to win 100); probabilities are in [0, 1].
Every function raises `OddsError` (a ValueError) on input it cannot price.

Plausibility (the one home of the bounds every feed checks its prices against, docs/architecture.md,
"Invariants > Nothing lost, nothing silent"): a quote from a feed is usable only when its decimal
price is finite with PRICE_MIN <= price <= PRICE_MAX (1.0001 <= price <= 10001) and its American
odds have 100 <= |american| <= AMERICAN_MAX (1,000,000; the same interval: -1,000,000 is 1.0001,
+1,000,000 is 10001). Real quotes reach -200000 (1.0005, an in-play favourite) and +15000 (151) in
The Odds API's NFL 2025 season change log (tests/data/oddsapi/README.md; -200000 is in
tests/data/oddsapi/nfl_snapshots_2025-12-07.jsonl.gz), BoltOdds sends "-10000" and "+3300"
(docs/reference/boltodds.md §5), exchanges stop at 1.01 and 1000: the bounds sit a factor five
beyond the widest real quote and reject what no book can mean (1e30, 1e307, inf, nan, 0).
`feed_american` and `feed_decimal` apply them to a feed's value and return both forms.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Literal

DevigMethod = Literal["multiplicative", "additive", "power", "shin"]

_SOLVER_STEPS = 200  # bisection steps: far past float resolution on the brackets used below

PRICE_MIN = 1.0001  # a feed's decimal price lies in [PRICE_MIN, PRICE_MAX] (module docstring)
PRICE_MAX = 10_001.0
AMERICAN_MAX = 1_000_000  # a feed's American odds lie in [-AMERICAN_MAX, -100] or [100, AMERICAN_MAX]


class OddsError(ValueError):
    """Odds or probabilities that cannot be priced (zero, |American| < 100, non-numeric, price <= 1)."""


def american_to_decimal(american: float | str) -> float:
    """American odds -> decimal odds: +A -> 1 + A/100, -A -> 1 + 100/A (+150 -> 2.5, -200 -> 1.5).

    Accepts ints, floats and signed strings as BoltOdds sends them ("+102", "-122";
    docs/reference/boltodds.md §5).

    Raises:
        OddsError: non-numeric, not finite, zero, or |american| < 100.
    """
    if isinstance(american, bool):
        raise OddsError(f"American odds must be a number, got {american!r}")
    try:
        value = float(american)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond float range
        raise OddsError(f"American odds must be a number, got {american!r}") from None
    if not math.isfinite(value) or abs(value) < 100:
        raise OddsError(f"American odds must be finite with |odds| >= 100, got {american!r}")
    return 1.0 + value / 100.0 if value > 0 else 1.0 - 100.0 / value


def feed_american(american: object) -> tuple[float, int]:
    """A feed's American odds (int, float or signed string such as "+102") -> (decimal price,
    American int), both within the plausibility bounds of the module docstring.

    Raises:
        OddsError: not a number, not finite, |american| < 100, or beyond the bounds
            (1e30, "inf", "nan", 0 and "+50" alike).
    """
    if not isinstance(american, int | float | str):
        raise OddsError(f"American odds must be a number or a signed string, got {american!r}")
    price = american_to_decimal(american)  # rejects non-numeric, non-finite and |odds| < 100
    value = float(american)
    if not -AMERICAN_MAX <= value <= AMERICAN_MAX:
        raise OddsError(f"American odds must lie in [-{AMERICAN_MAX}, +{AMERICAN_MAX}], got {american!r}")
    return price, round(value)


def feed_decimal(price: object) -> tuple[float, int]:
    """A feed's decimal price -> (decimal price, American int), within the plausibility bounds
    of the module docstring (PRICE_MIN <= price <= PRICE_MAX).

    Raises:
        OddsError: not a number (bools and strings included), not finite, or out of bounds
            (1e307, inf, nan, 0, 1.0 alike; 100.0 is a legal decimal price).
    """
    if isinstance(price, bool) or not isinstance(price, int | float):
        raise OddsError(f"decimal odds must be a number, got {price!r}")
    try:
        value = float(price)
    except OverflowError:  # an int beyond float range
        raise OddsError(f"decimal odds must lie in [{PRICE_MIN}, {PRICE_MAX}], got {price!r}") from None
    if not PRICE_MIN <= value <= PRICE_MAX:  # False for nan as well
        raise OddsError(f"decimal odds must lie in [{PRICE_MIN}, {PRICE_MAX}], got {price!r}")
    return value, decimal_to_american(value)


def _check_price(price: float) -> float:
    if price.__class__ is float and 1.0 < price < math.inf:  # the usual case, first: the book de-vigs per update
        return price
    if isinstance(price, bool) or not isinstance(price, int | float):
        raise OddsError(f"decimal odds must be a number, got {price!r}")
    if not math.isfinite(price) or price <= 1.0:
        raise OddsError(f"decimal odds must be finite and > 1.0, got {price!r}")
    return float(price)


def _check_probability(probability: float) -> float:
    if not (0.0 <= probability <= 1.0):
        raise OddsError(f"probability must lie in [0, 1], got {probability!r}")
    return float(probability)


def decimal_to_american(price: float) -> int:
    """Decimal odds -> American odds, rounded to the nearest integer (2.5 -> 150, 1.5 -> -200;
    even money 2.0 -> +100).

    Raises:
        OddsError: price not finite or <= 1.0.
    """
    price = _check_price(price)
    if price >= 2.0:
        return round((price - 1.0) * 100.0)
    return round(-100.0 / (price - 1.0))


def implied_probability(price: float) -> float:
    """Probability implied by decimal odds, vig included: 1 / price.

    Raises:
        OddsError: price not finite or <= 1.0.
    """
    return 1.0 / _check_price(price)


def overround(prices: Sequence[float]) -> float:
    """Bookmaker margin of a complete market: sum(1/price) - 1 (0.05 = 5 %; negative = arbitrage).

    Raises:
        OddsError: fewer than two prices, or a price <= 1.0.
    """
    return sum(_implied(prices)) - 1.0


def _implied(prices: Sequence[float]) -> list[float]:
    if len(prices) < 2:
        raise OddsError(f"a market needs at least two outcomes, got {len(prices)}")
    return [implied_probability(p) for p in prices]


def _bisect(f: Callable[[float], float], lo: float, hi: float) -> float:
    """Root of an increasing function f on [lo, hi] (f(lo) <= 0 <= f(hi))."""
    for _ in range(_SOLVER_STEPS):
        mid = (lo + hi) / 2.0
        if f(mid) > 0.0:
            hi = mid
        else:
            lo = mid
        if hi - lo <= 1e-15 * max(1.0, abs(mid)):
            break
    return (lo + hi) / 2.0


def _power(q: list[float]) -> list[float]:
    """Power method: p_i = q_i ** k with k chosen so that sum(p_i) = 1."""
    total = sum(q)
    if total == 1.0:
        return q
    # sum(q**k) falls as k grows (every q < 1); k > 1 removes a margin, k < 1 fills an arbitrage.
    lo, hi = (1.0, 2.0) if total > 1.0 else (0.5, 1.0)
    while sum(x**hi for x in q) > 1.0:
        hi *= 2.0
    while sum(x**lo for x in q) < 1.0:
        lo /= 2.0
    k = _bisect(lambda k: 1.0 - sum(x**k for x in q), lo, hi)
    return [x**k for x in q]


def _shin(q: list[float]) -> list[float]:
    """Shin (1993) method: the insider-trading share z solves sum(p_i(z)) = 1 with
    p_i(z) = (sqrt(z^2 + 4 (1 - z) q_i^2 / S) - z) / (2 (1 - z)), S = sum(q_i).
    A book without margin (S <= 1) has no insider share to remove: it is normalised instead."""
    total = sum(q)
    if total <= 1.0:
        return [x / total for x in q]

    def probs(z: float) -> list[float]:
        return [(math.sqrt(z * z + 4.0 * (1.0 - z) * x * x / total) - z) / (2.0 * (1.0 - z)) for x in q]

    # sum(p(0)) = sqrt(S) > 1 and the sum falls towards its limit < 1 as z -> 1.
    z = _bisect(lambda z: 1.0 - sum(probs(z)), 0.0, 1.0 - 1e-12)
    return probs(z)


def no_vig_probabilities(
    prices: Sequence[float], method: DevigMethod = "multiplicative"
) -> list[float]:
    """Fair (margin-free) probabilities of one complete market's outcomes (2-way or 3-way ...),
    in the order of `prices`; they sum to 1.

    Methods: "multiplicative" (q_i / sum q), "additive" (q_i - margin / n), "power"
    (q_i ** k), "shin" (Shin's insider model). q_i = 1 / price_i.

    Raises:
        OddsError: fewer than two prices, a price <= 1.0, an unknown method, or an additive
            de-vig that would give a longshot a probability <= 0.
    """
    q = _implied(prices)
    total = sum(q)
    if method == "multiplicative":
        fair = [x / total for x in q]
    elif method == "additive":
        cut = (total - 1.0) / len(q)
        fair = [x - cut for x in q]
        if min(fair) <= 0.0:
            raise OddsError(f"additive de-vig gives a probability <= 0 for prices {list(prices)}")
    elif method == "power":
        fair = _power(q)
    elif method == "shin":
        fair = _shin(q)
    else:
        raise OddsError(f"unknown de-vig method {method!r}")
    norm = sum(fair)  # removes the solvers' last rounding so the probabilities sum to 1
    return [x / norm for x in fair]


def fair_prices(prices: Sequence[float], method: DevigMethod = "multiplicative") -> list[float]:
    """No-vig fair decimal odds (1 / fair probability) of one complete market.

    Raises:
        OddsError: as `no_vig_probabilities`.
    """
    return [1.0 / p for p in no_vig_probabilities(prices, method)]


def expected_value(price: float, probability: float) -> float:
    """Expected profit per unit stake of a back bet at `price` with win probability
    `probability`: p * price - 1 (0.05 = +5 % of stake).

    Raises:
        OddsError: price <= 1.0 or probability outside [0, 1].
    """
    return _check_probability(probability) * _check_price(price) - 1.0


def kelly_fraction(price: float, probability: float) -> float:
    """Kelly stake as a fraction of bankroll: (p * price - 1) / (price - 1), floored at 0
    (no bet without an edge).

    Raises:
        OddsError: price <= 1.0 or probability outside [0, 1].
    """
    edge = expected_value(price, probability)
    return max(0.0, edge / (price - 1.0))


def at_risk(back: bool, stake: Decimal, price: float) -> Decimal:
    """What a bet can lose, in stake currency: a back its stake, a lay its liability
    (price - 1) x stake (`stake` being the backer's stake, as an exchange states a lay's size).
    The price goes through str() so the product is exact Decimal arithmetic."""
    return stake if back else (Decimal(str(price)) - 1) * stake
