"""The dashboard's equity curve is cut to a bounded number of points without losing a peak, a
trough or the current figure (bot/engine/operations.py `thin_curve`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.engine.operations import EngineView, thin_curve
from bot.ledger.models import SettlementRow
from bot.ledger.store import Ledger

T0 = datetime(2025, 11, 16, 18, 0, tzinfo=UTC)


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


class _Engine:
    """What `EngineView.pnl` reads of an engine: the ledger (counting what it reads) and no risk."""

    started = False

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.reads: list[int] = []
        original = ledger.settlement_pnls

        def counted(after_id: int = 0) -> list[tuple[int, datetime, int, Decimal]]:
            got = original(after_id)
            self.reads.append(len(got))
            return got

        ledger.settlement_pnls = counted  # type: ignore[method-assign]


def _settle(ledger: Ledger, bet_id: int, minute: int, pnl: str) -> None:
    ledger.add_settlement(SettlementRow(bet_id=bet_id, request_uuid=f"r{bet_id}", strategy="s", status="WON",
                                        stake=Decimal(10), amount=Decimal(10) + Decimal(pnl), pnl=Decimal(pnl),
                                        at=T0 + timedelta(minutes=minute)))


def _expected(ledger: Ledger) -> list[list[str]]:
    running, out = Decimal(0), []
    for row in sorted(ledger.settlements(), key=lambda r: (r.at, r.bet_id)):
        running += row.pnl
        out.append([row.at.isoformat(), str(running)])  # type: ignore[union-attr]
    return out


def test_the_dashboard_curve_reads_only_new_settlements_and_redraws_when_one_is_late(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "bot.db")
    engine = _Engine(ledger)
    view = EngineView(engine)  # type: ignore[arg-type]
    for i in range(5):
        _settle(ledger, i, i, "1.5")
    first = view.pnl()
    assert first["equity"] == _expected(ledger) and first["settled"] == "7.5"
    for i in range(5, 8):
        _settle(ledger, i, i, "-2")
    second = view.pnl()
    assert second["equity"] == _expected(ledger) and second["settled"] == "1.5"
    assert engine.reads == [5, 3]  # the second request read the three new settlements only
    _settle(ledger, 99, 2, "10")  # settled late, at minute 2: the curve is drawn anew
    third = view.pnl()
    assert third["equity"] == _expected(ledger) and third["settled"] == "11.5"
    ledger.close()
