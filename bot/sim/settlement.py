"""Paper settlement (docs/architecture.md, "Simulators"): where no venue settles bets, open
paper bets are graded from real final scores once their game is over, and settled on the paper
venue, which reports them to the executor like ABP's `settlements` channel
(docs/reference/abp.md §9). A bet that cannot settle is logged and stops no other, and is named
by `PaperSettler.unresolved` (docs/architecture.md, "Invariants > Nothing lost, nothing silent").

What happens to a bet no result can settle (no results source, its fixture not in the results,
a market the score cannot grade) is `settlement.unresolved`: `hold` keeps it open, exposure
included; `void_after_hours` settles it VOID (stake returned, exposure released)
`settlement.void_after_hours` hours after its kickoff, one warning per bet.
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from loguru import logger

from bot.clock import Clock
from bot.config.settings import SettlementConfig
from bot.ledger.models import BetRow, OrderRow
from bot.ledger.report import (
    GAME_OVER_AFTER,
    NO_RESULTS_SOURCE,
    NOT_IN_RESULTS,
    UNGRADABLE,
    Unresolved,
    unresolved_bets,
)
from bot.ledger.store import OPEN_BET_STATUSES, Ledger
from bot.sim.adapters import PaperDriver
from bot.sim.results import FixtureResult, Results, grade, lay_status, load_results
from bot.types import BetStatus, Selection, SettlementStatus

SETTLE_AFTER_KICKOFF = GAME_OVER_AFTER  # a game is over (and graded) this long after kickoff
# Bets updated this long before the latest change seen are read again: a row stamped on a clock a
# little behind (wall time stepping back) is not missed; reading one again changes nothing.
CHANGE_SLACK = timedelta(minutes=1)
log = logger.bind(stage="paper")


def configured_results(cfg: SettlementConfig, config_dir: Path) -> Results | None:
    """The results files named in the `settlement` section (`results`, `nfl_results`,
    `football_data_results`; relative to `config_dir`), all read by the one loader; None when
    none is configured (no results source), else every fixture they hold (maybe none).

    Raises:
        ValueError: "settlement.<field>: <why>" for a file that is missing or unreadable.
    """
    named: list[tuple[str, Path | None]] = [(f"results[{i}]", path) for i, path in enumerate(cfg.results)]
    named += [("nfl_results", cfg.nfl_results), ("football_data_results", cfg.football_data_results)]
    found: list[FixtureResult] = []
    configured = False
    for field, path in named:
        if path is None:
            continue
        configured = True
        try:
            found += _read_results(path if path.is_absolute() else config_dir / path)
        except (OSError, ValueError) as exc:
            raise ValueError(f"settlement.{field}: {exc}") from None
    return Results(found) if configured else None


def _read_results(path: Path) -> tuple[FixtureResult, ...]:
    """`load_results(path)`, read once per version of the file: start-up's checks
    (bot/config/preflight.py) and the settler ask for the same files, and a Betfair stream file
    read as results is a full pass over its lines."""
    stat = path.stat()
    return _read_version(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _read_version(path: str, _mtime_ns: int, _size: int) -> tuple[FixtureResult, ...]:
    return tuple(load_results(Path(path)))


@dataclass(frozen=True, slots=True)
class _Open:
    """One open bet with its order, what it is on and its result (None: not in the results)."""

    bet: BetRow
    order: OrderRow
    selection: Selection
    result: FixtureResult | None


class PaperSettler:
    """Settles open paper bets (the engine's `Settler`, bot/engine/ports.py).

    A bet settles from `results` once its game is over: SETTLE_AFTER_KICKOFF after the results'
    kickoff on the trading clock; only CONFIRMED bets settle, and a lay gets the mirror of the
    back bet's status. `results` None means no results source is configured. `config` gives the
    `unresolved` policy (default hold).

    The open bets are indexed in memory, by when each is due, from the ledger's open bets once
    at construction, then kept current from the bets the ledger stored or updated since the last
    look (`Ledger.bets_changed`: one query per pass, none while `Ledger.bets_version` has not
    moved, new fills added, settled or closed bets
    removed). A pass costs the bets that changed plus the bets due, whatever the number of open
    bets that cannot settle yet (or ever: no result, held) and the size of the ledger.
    """

    def __init__(
        self,
        results: Results | None,
        ledger: Ledger,
        paper: PaperDriver,
        clock: Clock,
        config: SettlementConfig | None = None,
    ) -> None:
        self._results = results
        self._ledger = ledger
        self._paper = paper
        self._clock = clock
        config = config or SettlementConfig()
        self._void_hours = config.void_after_hours if config.unresolved == "void_after_hours" else None
        self._void_after = None if self._void_hours is None else timedelta(hours=self._void_hours)
        self._open: dict[int, _Open] = {}  # bet_id -> open bet with its order
        self._due: dict[int, datetime] = {}  # bet_id -> when it settles (bets that ever do)
        self._queue: list[tuple[datetime, int]] = []  # heap of (due, bet_id); stale entries skipped
        self._seen: tuple[int, int | None] | None = None  # `Ledger.bets_version` at the last look
        self._last_row, since = ledger.bet_watermark()
        self._since = None if since is None else since - CHANGE_SLACK
        self._index(ledger.open_bets())

    def _index(self, bets: Sequence[BetRow]) -> None:
        """(Re)index `bets` as the ledger has them now: open ones in, closed ones out; a bet
        read again unchanged is left as it is."""
        bets = [b for b in bets if (held := self._open.get(b.bet_id)) is None or held.bet != b]
        still_open = [b for b in bets if b.bet_status in OPEN_BET_STATUSES
                      and b.settlement_status == SettlementStatus.UNSETTLED.value]
        before = {b.bet_id: self._due.pop(b.bet_id, None) for b in bets}
        for bet in bets:
            self._open.pop(bet.bet_id, None)
        orders = self._ledger.orders_by_uuid({b.request_uuid for b in still_open}) if still_open else {}
        for bet in still_open:
            order = orders.get(bet.request_uuid)
            if order is None:
                continue  # reported by unresolved()
            try:
                selection = Selection.parse(order.selection)
            except ValueError:
                continue  # reported by unresolved()
            result = None if self._results is None else self._results.find(selection.fixture)
            item = _Open(bet, order, selection, result)
            self._open[bet.bet_id] = item
            due = self._due_at(item)
            if due is not None:
                self._due[bet.bet_id] = due
                if due != before[bet.bet_id]:  # an unchanged due time is in the heap already
                    heapq.heappush(self._queue, (due, bet.bet_id))

    def _sync(self) -> None:
        """Take in what the ledger stored or updated since the last look (fills, settlements)."""
        version = self._ledger.bets_version()
        if version == self._seen and version[1] is not None:
            return  # no bet written here or elsewhere since the last look
        self._seen = version
        changed = self._ledger.bets_changed(self._last_row, self._since)
        if not changed:
            return
        self._last_row = max(self._last_row, max(b.id or 0 for b in changed))
        latest = max((b.updated_at for b in changed if b.updated_at is not None), default=None)
        if latest is not None:  # a little before the latest: a row stamped on a clock just behind
            self._since = max(self._since or latest - CHANGE_SLACK, latest - CHANGE_SLACK)
        self._index(changed)

    def _void_at(self, item: _Open) -> datetime | None:
        """When the policy voids this bet (it has no result that can grade it), else None."""
        if self._void_after is None:
            return None
        if item.result is not None and grade(item.selection, item.result) is not None:
            return None
        return item.selection.fixture.start_time + self._void_after

    def _due_at(self, item: _Open) -> datetime | None:
        """When this bet settles: its game is over, or the policy voids it; None: never."""
        if item.bet.bet_status != BetStatus.CONFIRMED:
            return None
        if item.result is not None and grade(item.selection, item.result) is not None:
            return item.result.start_time + SETTLE_AFTER_KICKOFF
        return self._void_at(item)

    def _why_not(self, item: _Open) -> str:
        """Why no result settles this bet: one of bot/ledger/report.py CANNOT_SETTLE."""
        if self._results is None:
            return NO_RESULTS_SOURCE
        return NOT_IN_RESULTS if item.result is None else UNGRADABLE

    def _due_now(self, now: datetime) -> list[_Open]:
        """The open bets due at `now`, by bet_id. They stay indexed until the ledger has them
        settled, so a bet the venue could not settle is tried again at the next pass."""
        due: dict[int, _Open] = {}
        while self._queue and self._queue[0][0] <= now:
            at, bet_id = heapq.heappop(self._queue)
            if self._due.get(bet_id) == at:  # else stale: settled, closed or re-indexed since
                due[bet_id] = self._open[bet_id]
        for bet_id in due:
            heapq.heappush(self._queue, (self._due[bet_id], bet_id))
        return [due[k] for k in sorted(due)]

    def due_by(self) -> datetime | None:
        self._sync()
        return max(self._due.values(), default=None)

    async def settle_due(self) -> int:
        self._sync()
        failed = 0
        for item in self._due_now(self._clock.now()):
            bet, order = item.bet, item.order
            status = None if item.result is None else grade(item.selection, item.result)
            if status is None:  # due only by the void_after_hours policy
                status = SettlementStatus.VOID
                log.warning("voiding bet {} ({}): {}, {:g} h after kickoff (settlement.unresolved: "
                            "void_after_hours)", bet.bet_id, order.selection, self._why_not(item), self._void_hours)
            elif not order.back:
                status = lay_status(status)
            try:
                await self._paper.settle(bet.bet_id, status)
            except (KeyError, ValueError) as exc:  # one bet the venue cannot settle stops no other
                failed += 1
                log.error("paper settlement of bet {} ({}) failed: {!r}", bet.bet_id, order.selection, exc)
        return failed

    def unresolved(self) -> list[Unresolved]:
        """Open bets whose fixture has kicked off on the trading clock and have not settled, by
        fixture and reason (bot/ledger/report.py `unresolved_bets`, the definition `bot report`
        uses too)."""
        return unresolved_bets(self._ledger, self._clock.now(), self._results)
