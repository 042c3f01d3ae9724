"""Paper settlement (docs/architecture.md, "Simulators"): where no venue settles bets, open
paper bets are graded from real final scores once their game is over, and settled on the paper
venue, which reports them to the executor like ABP's `settlements` channel
(docs/reference/abp.md §9). A bet that cannot settle is logged and stops no other
(docs/architecture.md, "Invariants > Nothing lost, nothing silent").
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from loguru import logger

from bot.clock import Clock
from bot.config.settings import SettlementConfig
from bot.ledger.models import BetRow, OrderRow
from bot.ledger.store import Ledger
from bot.sim.adapters import PaperDriver
from bot.sim.results import FixtureResult, Results, grade, lay_status, load_results
from bot.types import BetStatus, Selection

SETTLE_AFTER_KICKOFF = timedelta(hours=4)  # a game is over (and graded) this long after kickoff
log = logger.bind(stage="paper")


def configured_results(cfg: SettlementConfig, config_dir: Path) -> Results | None:
    """The results files named in the `settlement` section (relative to `config_dir`), all read
    by the one loader; None when none is configured or none holds a played fixture.

    Raises:
        ValueError: "settlement.<field>: <why>" for a file that is missing or unreadable.
    """
    found: list[FixtureResult] = []
    for field, path in (("nfl_results", cfg.nfl_results), ("football_data_results", cfg.football_data_results)):
        if path is None:
            continue
        try:
            found += load_results(path if path.is_absolute() else config_dir / path)
        except (OSError, ValueError) as exc:
            raise ValueError(f"settlement.{field}: {exc}") from exc
    return Results(found) if found else None


class PaperSettler:
    """Grades open paper bets from `results` (the engine's `Settler`). A game counts as over
    SETTLE_AFTER_KICKOFF after its kickoff on the trading clock; only CONFIRMED bets settle,
    and a lay bet gets the mirror of the back bet's status."""

    def __init__(self, results: Results, ledger: Ledger, paper: PaperDriver, clock: Clock) -> None:
        self._results = results
        self._ledger = ledger
        self._paper = paper
        self._clock = clock

    def _open_with_result(self) -> Iterator[tuple[BetRow, OrderRow, Selection, FixtureResult]]:
        for bet in self._ledger.open_bets():
            order = self._ledger.get_order(bet.request_uuid)
            if order is None:
                continue
            selection = Selection.parse(order.selection)
            result = self._results.find(selection.fixture)
            if result is not None:
                yield bet, order, selection, result

    def due_by(self) -> datetime | None:
        last = max((result.start_time for *_, result in self._open_with_result()), default=None)
        return None if last is None else last + SETTLE_AFTER_KICKOFF

    async def settle_due(self) -> int:
        now = self._clock.now()
        failed = 0
        for bet, order, selection, result in self._open_with_result():
            if bet.bet_status != BetStatus.CONFIRMED or result.start_time + SETTLE_AFTER_KICKOFF > now:
                continue
            status = grade(selection, result)
            if status is None:  # a market we cannot grade: the bet stays open
                continue
            if not order.back:
                status = lay_status(status)
            try:
                await self._paper.settle(bet.bet_id, status)
            except (KeyError, ValueError) as exc:  # one bet the venue cannot settle stops no other
                failed += 1
                log.error("paper settlement of bet {} ({}) failed: {!r}",
                          bet.bet_id, order.selection, exc)
        return failed
