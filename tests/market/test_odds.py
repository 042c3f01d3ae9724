"""Odds maths: concrete conversions and hypothesis properties (round trips, de-vig sums,
monotonicity)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.market.odds import (
    OddsError,
    american_to_decimal,
    decimal_to_american,
    expected_value,
    fair_prices,
    implied_probability,
    kelly_fraction,
    no_vig_probabilities,
    overround,
)

METHODS = ["multiplicative", "additive", "power", "shin"]
american = st.one_of(st.integers(100, 100_000), st.integers(-100_000, -101))
price = st.floats(1.01, 50.0)


@pytest.mark.parametrize(
    ("given_odds", "decimal"),
    [(150, 2.5), ("+150", 2.5), (-200, 1.5), ("-200", 1.5), (100, 2.0), (-100, 2.0), ("+102", 2.02)],
)
def test_american_to_decimal_concrete(given_odds: int | str, decimal: float) -> None:
    assert american_to_decimal(given_odds) == pytest.approx(decimal)


def test_vikings_price_to_four_places() -> None:
    assert round(american_to_decimal("-122"), 4) == 1.8197


@pytest.mark.parametrize("bad", [0, "0", 99, -99, 50.5, "abc", "", None, "nan", float("inf"), True, [150]])
def test_american_rejects_unpriceable(bad: object) -> None:
    with pytest.raises(OddsError):
        american_to_decimal(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(("decimal", "odds"), [(2.5, 150), (1.5, -200), (2.0, 100), (1.8197, -122)])
def test_decimal_to_american_concrete(decimal: float, odds: int) -> None:
    assert decimal_to_american(decimal) == odds


@pytest.mark.parametrize("bad", [1.0, 0.5, -2.0, float("nan"), float("inf")])
def test_decimal_rejects_price_at_or_below_one(bad: float) -> None:
    with pytest.raises(OddsError):
        decimal_to_american(bad)
    with pytest.raises(OddsError):
        implied_probability(bad)


@given(american)
def test_american_round_trip(odds: int) -> None:
    assert decimal_to_american(american_to_decimal(odds)) == odds


@given(price)
def test_decimal_round_trip(p: float) -> None:
    back = american_to_decimal(decimal_to_american(p))
    # American odds are integers: the round trip is exact to half a unit of American odds.
    assert abs(back - p) <= 0.005 * max(1.0, (p - 1.0) ** 2) + 1e-9


@given(american, american)
def test_american_to_decimal_is_monotonic(a: int, b: int) -> None:
    # Ordering on the American scale: -101 < -100000 ... is backwards, so compare payouts.
    pa, pb = american_to_decimal(a), american_to_decimal(b)
    payout_a = a / 100 if a > 0 else 100 / -a
    payout_b = b / 100 if b > 0 else 100 / -b
    if payout_a < payout_b:
        assert pa < pb


@given(price, price)
def test_implied_probability_falls_as_price_rises(a: float, b: float) -> None:
    if a < b:
        assert implied_probability(a) > implied_probability(b)


def _market(n: int) -> st.SearchStrategy[list[float]]:
    """Realistic books: fair probabilities with a margin of -2 % .. +12 %."""
    return st.tuples(
        st.lists(st.floats(0.05, 1.0), min_size=n, max_size=n), st.floats(-0.02, 0.12)
    ).map(lambda t: [1.0 / (w / sum(t[0]) * (1.0 + t[1])) for w in t[0]]).filter(
        lambda ps: all(p > 1.0 for p in ps)
    )


@pytest.mark.parametrize("method", METHODS)
@given(st.one_of(_market(2), _market(3)))
def test_devig_sums_to_one(method: str, prices: list[float]) -> None:
    try:
        probs = no_vig_probabilities(prices, method)  # type: ignore[arg-type]
    except OddsError:
        assert method == "additive"  # only additive can drive a longshot to <= 0
        return
    assert math.isclose(sum(probs), 1.0, abs_tol=1e-9)
    assert all(0.0 < p < 1.0 for p in probs)
    # De-vigging keeps the favourite the favourite.
    assert probs.index(max(probs)) == prices.index(min(prices))
    fair = fair_prices(prices, method)  # type: ignore[arg-type]
    assert math.isclose(sum(1 / f for f in fair), 1.0, abs_tol=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_devig_even_market_is_fifty_fifty(method: str) -> None:
    assert no_vig_probabilities([1.909, 1.909], method) == pytest.approx([0.5, 0.5])  # type: ignore[arg-type]


def test_devig_methods_differ_on_longshot_bias() -> None:
    prices = [1.25, 4.5]
    mult = no_vig_probabilities(prices, "multiplicative")
    power = no_vig_probabilities(prices, "power")
    shin = no_vig_probabilities(prices, "shin")
    # Power and Shin take more of the margin from the longshot than multiplicative does.
    assert power[1] < mult[1] and shin[1] < mult[1]
    assert overround(prices) == pytest.approx(1 / 1.25 + 1 / 4.5 - 1)


def test_devig_three_way_concrete() -> None:
    probs = no_vig_probabilities([2.0, 3.4, 4.0])
    assert probs == pytest.approx([0.5 / 1.044118, 0.294118 / 1.044118, 0.25 / 1.044118], rel=1e-5)


def test_devig_rejects_bad_markets() -> None:
    with pytest.raises(OddsError):
        no_vig_probabilities([2.0])
    with pytest.raises(OddsError):
        no_vig_probabilities([2.0, 1.0])
    with pytest.raises(OddsError):
        no_vig_probabilities([2.0, 2.0], "median")  # type: ignore[arg-type]


@given(price, st.floats(0.0, 1.0))
def test_expected_value_and_kelly(p: float, prob: float) -> None:
    ev = expected_value(p, prob)
    assert ev == pytest.approx(prob * p - 1.0)
    k = kelly_fraction(p, prob)
    assert 0.0 <= k <= 1.0 + 1e-12
    assert (k > 0) == (ev > 0)


@given(price, st.floats(0.0, 0.99), st.floats(0.001, 0.01))
def test_kelly_rises_with_probability(p: float, prob: float, step: float) -> None:
    assert kelly_fraction(p, prob + step) >= kelly_fraction(p, prob)


def test_expected_value_concrete() -> None:
    assert expected_value(2.5, 0.5) == pytest.approx(0.25)
    assert kelly_fraction(2.5, 0.5) == pytest.approx(0.25 / 1.5)
    assert kelly_fraction(1.5, 0.5) == 0.0
    with pytest.raises(OddsError):
        expected_value(2.0, 1.5)
