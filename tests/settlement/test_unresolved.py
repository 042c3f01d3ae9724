"""Paper settlement from the generic results CSV (real Premier League scores), through the real
paper venue and executor on a real SQLite ledger: 1x2 bets settle home / draw / away, the abandoned
match voids, and a bet that cannot settle is named by fixture and reason and, under
`settlement.unresolved: void_after_hours`, voided (stake returned, exposure released) N hours
after kickoff; under `hold` it stays open (docs/architecture.md, "Invariants > Nothing lost,
nothing silent")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from bot.clock import ReplayClock
from bot.config.settings import SettlementConfig
from bot.ledger.models import BetRow, OrderRow
from bot.ledger.report import (
    NO_RESULTS_SOURCE,
    NOT_IN_RESULTS,
    RESULT_PENDING,
    Unresolved,
    log_unresolved,
)
from bot.ledger.store import Ledger
from bot.risk.positions import PositionBook
from bot.sim.adapters import PaperDriver
from bot.sim.results import Results, load_results
from bot.sim.settlement import PaperSettler
from bot.types import FixtureKey, MarketKey, Selection
from tests.settlement.conftest import paper_ledger

RESULTS = Path(__file__).parents[1] / "data" / "results" / "epl_2023-24_results.csv"


def _fixture(home: str, away: str, kickoff: str) -> FixtureKey:
    return FixtureKey("EPL", home, away, datetime.fromisoformat(kickoff))


CHELSEA = _fixture("Chelsea", "Liverpool", "2023-08-13T15:30:00+00:00")  # 1-1
NEWCASTLE = _fixture("Newcastle", "Aston Villa", "2023-08-12T16:30:00+00:00")  # 5-1
EVERTON = _fixture("Everton", "Fulham", "2023-08-12T14:00:00+00:00")  # 0-1
BURNLEY = _fixture("Burnley", "Man City", "2023-08-11T19:00:00+00:00")  # 0-3
LUTON = _fixture("Luton", "Bournemouth", "2023-12-16T15:00:00+00:00")  # abandoned
ARSENAL = _fixture("Arsenal", "Man City", "2023-10-08T15:30:00+00:00")  # played, not in the file
LATER = _fixture("Arsenal", "Luton", "2024-04-03T18:30:00+00:00")  # kicks off after every check here
START = datetime(2023, 8, 11, 12, 0, tzinfo=UTC)
ALL_OVER = datetime(2023, 12, 16, 19, 0, tzinfo=UTC)  # the last game in the results + 4 h


@dataclass
class Bet:
    bet_id: int
    fixture: FixtureKey
    outcome: str
    back: bool = True
    stake: str = "10"
    price: float = 2.0

    def rows(self, at: datetime) -> tuple[OrderRow, BetRow]:
        uuid = f"u{self.bet_id}"
        selection = Selection(self.fixture, MarketKey("1x2", "game"), self.outcome)
        order = OrderRow(request_uuid=uuid, order_id=self.bet_id, signal_id=f"s{self.bet_id}", strategy="value",
                         selection=selection.key, sport="EPL", fixture=str(self.fixture), back=self.back,
                         order_price=self.price, stake=Decimal(self.stake), filled_stake=Decimal(self.stake),
                         status="FILLED", created_at=at, updated_at=at)
        bet = BetRow(bet_id=self.bet_id, order_id=self.bet_id, request_uuid=uuid, bookmaker="pinnacle",
                     placed_stake=Decimal(self.stake), placed_price=self.price, bet_status="CONFIRMED",
                     placed_at=at, updated_at=at)
        return order, bet


BETS = [
    Bet(1, CHELSEA, "draw", price=3.5),  # WON
    Bet(2, NEWCASTLE, "home", price=1.8),  # WON
    Bet(3, EVERTON, "home", price=2.4),  # LOST
    Bet(4, BURNLEY, "away", back=False, price=1.3),  # lay of the winner: LOST
    Bet(5, LUTON, "home", price=2.6),  # abandoned: VOID
    Bet(6, ARSENAL, "home", stake="7", price=2.9),  # not in the results: cannot settle
    Bet(7, LATER, "home", price=1.4),  # not kicked off: neither settled nor listed
]


@dataclass
class World:
    clock: ReplayClock
    ledger: Ledger
    driver: PaperDriver
    results: Results

    def settler(self, config: SettlementConfig | None = None, *, results: bool = True) -> PaperSettler:
        return PaperSettler(self.results if results else None, self.ledger, self.driver, self.clock, config)

    def settled(self) -> dict[int, tuple[str, Decimal, Decimal]]:
        return {s.bet_id: (s.status, s.amount, s.pnl) for s in self.ledger.settlements()}

    def open_bets(self) -> set[int]:
        return {b.bet_id for b in self.ledger.open_bets()}

    def exposure(self) -> Decimal:
        return PositionBook.from_ledger(self.ledger).summary().total


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    clock = ReplayClock(START)
    async with paper_ledger(tmp_path / "bot.db", clock, [bet.rows(clock.now()) for bet in BETS]) as (ledger, driver):
        yield World(clock, ledger, driver, Results(load_results(RESULTS)))


VOID_48H = SettlementConfig(unresolved="void_after_hours", void_after_hours=48)


async def test_1x2_bets_settle_from_the_generic_results_and_the_abandoned_match_voids(world: World) -> None:
    settler = world.settler()
    assert settler.due_by() == ALL_OVER  # bet 6 has no result and is held: it is never due
    world.clock.advance(ALL_OVER)
    assert await settler.settle_due() == 0
    settled = world.settled()
    assert {k: v[0] for k, v in settled.items()} == {1: "WON", 2: "WON", 3: "LOST", 4: "LOST", 5: "VOID"}
    assert settled[1][2] == Decimal("25.00")  # 10 at 3.5
    assert settled[5][1:] == (Decimal("10.00"), Decimal("0.00"))  # stake returned
    assert world.open_bets() == {6, 7}


async def test_unresolved_names_each_fixture_with_its_reason(world: World) -> None:
    # Mid-match at Stamford Bridge: Chelsea's bet is pending; the Friday and Saturday games are
    # over and settle; the Arsenal game has not kicked off yet, so is not listed.
    world.clock.advance(CHELSEA.start_time + timedelta(hours=1))
    settler = world.settler()
    assert await settler.settle_due() == 0
    assert settler.unresolved() == [Unresolved(str(CHELSEA), CHELSEA.start_time, RESULT_PENDING, 1, Decimal(10))]

    world.clock.advance(ARSENAL.start_time + timedelta(hours=5))
    await settler.settle_due()
    assert settler.unresolved() == [Unresolved(str(ARSENAL), ARSENAL.start_time, NOT_IN_RESULTS, 1, Decimal(7))]

    # No results source: every open bet past kickoff is named so (a lay counts its liability).
    fresh = world.settler(results=False)
    assert await fresh.settle_due() == 0 and fresh.due_by() is None  # nothing can settle
    assert [(u.fixture, u.reason, u.exposure) for u in fresh.unresolved()] == [
        (str(ARSENAL), NO_RESULTS_SOURCE, Decimal(7)),
    ]


async def test_without_results_every_past_bet_is_named_with_no_results_source(world: World) -> None:
    world.clock.advance(ARSENAL.start_time + timedelta(hours=5))
    settler = world.settler(results=False)
    assert await settler.settle_due() == 0
    assert world.settled() == {}
    assert [(u.fixture, u.reason, u.bets, u.exposure) for u in settler.unresolved()] == [
        (str(BURNLEY), NO_RESULTS_SOURCE, 1, Decimal("3.0")),  # lay 10 at 1.3: liability 3
        (str(EVERTON), NO_RESULTS_SOURCE, 1, Decimal(10)),
        (str(NEWCASTLE), NO_RESULTS_SOURCE, 1, Decimal(10)),
        (str(CHELSEA), NO_RESULTS_SOURCE, 1, Decimal(10)),
        (str(ARSENAL), NO_RESULTS_SOURCE, 1, Decimal(7)),
    ]


async def test_hold_keeps_a_bet_that_cannot_settle_open_and_its_exposure(world: World) -> None:
    settler = world.settler(SettlementConfig(unresolved="hold"))
    world.clock.advance(datetime(2024, 3, 1, tzinfo=UTC))  # months after the Arsenal game
    await settler.settle_due()
    assert 6 not in world.settled() and world.open_bets() == {6, 7}
    assert world.exposure() == Decimal(7) + Decimal(10)  # bets 6 and 7 still count
    assert settler.due_by() is None


async def test_void_after_hours_voids_and_releases_the_bet_and_logs_it(world: World, warnings: list[str]) -> None:
    settler = world.settler(VOID_48H)
    void_at = ARSENAL.start_time + timedelta(hours=48)
    # Bet 7 has no result either: the end of a replay moves the clock until it is voided too.
    assert settler.due_by() == LATER.start_time + timedelta(hours=48)
    world.clock.advance(void_at - timedelta(seconds=1))
    await settler.settle_due()
    assert 6 not in world.settled() and 6 in world.open_bets()  # not yet: 48 h after kickoff
    assert not [w for w in warnings if "voiding" in w]

    world.clock.advance(void_at)
    assert await settler.settle_due() == 0
    assert world.settled()[6] == ("VOID", Decimal("7.00"), Decimal("0.00"))  # stake returned
    assert world.open_bets() == {5, 7}  # December's and April's games are not over
    assert world.exposure() == Decimal(10) + Decimal(10)  # bet 6's 7 is released
    [line] = [w for w in warnings if "voiding" in w]
    assert "bet 6" in line and NOT_IN_RESULTS in line and "48 h after kickoff" in line
    assert settler.unresolved() == []


async def test_void_after_hours_with_no_results_source_releases_every_bet(world: World) -> None:
    settler = world.settler(SettlementConfig(unresolved="void_after_hours", void_after_hours=6), results=False)
    assert settler.due_by() == LATER.start_time + timedelta(hours=6)  # the last kickoff + 6 h
    world.clock.advance(LUTON.start_time + timedelta(hours=6))
    assert await settler.settle_due() == 0
    assert {k: v[0] for k, v in world.settled().items()} == {b: "VOID" for b in (1, 2, 3, 4, 5, 6)}
    assert world.open_bets() == {7} and world.exposure() == Decimal(10)
    assert settler.due_by() == LATER.start_time + timedelta(hours=6)


async def test_log_unresolved_writes_one_line_per_fixture_and_a_total(world: World, warnings: list[str]) -> None:
    world.clock.advance(ARSENAL.start_time + timedelta(hours=5))
    settler = world.settler(results=False)
    log_unresolved(settler.unresolved())
    assert len(warnings) == 6
    assert any(str(ARSENAL) in w and NO_RESULTS_SOURCE in w and "exposure 7.00" in w for w in warnings)
    assert warnings[-1] == "5 open bet(s) on 5 fixture(s) past kickoff have not settled, exposure 40.00"
    warnings.clear()
    log_unresolved([])
    assert warnings == []  # nothing unresolved: an info line only
