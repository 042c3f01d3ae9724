"""Paper settlement keeps the open bets indexed (bot/sim/settlement.py `PaperSettler`): a pass
reads only what the ledger changed since the last one, so its SQL does not grow with the open
bets that cannot settle yet; a fill made after the settler was built is settled when due, and a
settled bet leaves the index. SQL statements are counted on the ledger's engine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import event

from bot.clock import ReplayClock
from bot.ledger.store import Ledger
from bot.sim.results import Results, load_results
from bot.sim.settlement import PaperSettler
from bot.types import FixtureKey
from tests.settlement.conftest import paper_ledger
from tests.settlement.test_paper_settler import BILLS, BILLS_OVER, DATA, Bet

START = datetime(2025, 11, 16, 12, 0, tzinfo=UTC)
NOWHERE = FixtureKey("NFL", "Nowhere Nobodies", "Buffalo Bills", datetime(2025, 11, 16, 18, 0, tzinfo=UTC))


@contextmanager
def statements(ledger: Ledger) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn, _cursor, sql: str, *_args) -> None:  # SQLAlchemy's hook signature
        seen.append(sql)

    engine = ledger._engine  # the engine the ledger runs its SQL on
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def _statements_per_pass(tmp_path: Path, held: int) -> int:
    """SQL of a settlement pass over `held` open bets that have no result (held forever)."""
    clock = ReplayClock(START)
    rows = [Bet(n, NOWHERE).rows(START) for n in range(1, held + 1)]
    async with paper_ledger(tmp_path / f"{held}.db", clock, rows) as (ledger, driver):
        settler = PaperSettler(Results(load_results(DATA / "nfl_results_2025-11-16.csv")), ledger, driver, clock)
        clock.advance(START + timedelta(days=3))
        await settler.settle_due()
        with statements(ledger) as seen:
            assert await settler.settle_due() == 0
        return len(seen)


async def test_a_pass_costs_the_same_whatever_the_open_bets_that_cannot_settle(tmp_path: Path) -> None:
    few, many = await _statements_per_pass(tmp_path, 3), await _statements_per_pass(tmp_path, 600)
    assert few == many <= 1


async def test_a_later_fill_settles_when_due_and_leaves_the_index(tmp_path: Path) -> None:
    clock = ReplayClock(START)
    async with paper_ledger(tmp_path / "bot.db", clock, [Bet(1, NOWHERE).rows(START)]) as (ledger, driver):
        settler = PaperSettler(Results(load_results(DATA / "nfl_results_2025-11-16.csv")), ledger, driver, clock)
        assert settler.due_by() is None
        order, bet = Bet(2, BILLS).rows(START)  # a fill stored after the settler was built
        ledger.add_orders([order])
        ledger.upsert_bet(bet)
        driver._venue.restore([order], [bet])  # the venue holds the fill as it would have made it
        assert settler.due_by() == BILLS_OVER
        clock.advance(BILLS_OVER)
        assert await settler.settle_due() == 0
        assert {s.bet_id: s.status for s in ledger.settlements()} == {2: "WON"}
        assert settler.due_by() is None  # settled: out of the index
        with statements(ledger) as seen:
            assert await settler.settle_due() == 0
        assert len(seen) <= 1
        assert [s.pnl for s in ledger.settlements()] == [Decimal("10.00")]
