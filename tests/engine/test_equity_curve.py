"""The dashboard's equity curve is cut to a bounded number of points without losing a peak, a
trough or the current figure (bot/engine/operations.py `thin_curve`)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.engine.operations import thin_curve


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-10_000, 10_000), min_size=1, max_size=3000), st.integers(3, 700))
def test_thinned_curve_is_bounded_ordered_and_keeps_extremes_and_the_last_point(steps: list[int], limit: int) -> None:
    running, points = Decimal(0), []
    for i, step in enumerate(steps):
        running += Decimal(step) / 100
        points.append((i, running))
    got = thin_curve(points, limit)
    assert len(got) <= limit
    assert [t for t, _ in got] == sorted({t for t, _ in got})  # time order, no point twice
    assert all(points[t] == (t, pnl) for t, pnl in got)  # real points only
    assert got[-1] == points[-1]
    assert min(p for _, p in got) == min(p for _, p in points)
    assert max(p for _, p in got) == max(p for _, p in points)
    if len(points) <= limit:
        assert got == points


def test_a_long_history_is_cut_to_the_limit() -> None:
    points = [(i, Decimal(i % 97) - Decimal(i % 13)) for i in range(100_000)]
    assert len(thin_curve(points)) <= 600
