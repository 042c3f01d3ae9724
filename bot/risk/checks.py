"""Risk checks: an ordered list a signal must pass (docs/architecture.md, "Risk"), in the manner
of flumine's trading controls and NautilusTrader's RiskEngine. The first check that rejects
decides; a check may instead lower the stake (resize). The order is `risk.checks` in the config:
built-in checks by name (DEFAULT_CHECKS in bot/risk/config.py, each named after the reason code
it gives) and a user's own by class path. The default order:

     1. EMERGENCY          the venue's emergency channel is active
     2. KILL_SWITCH        the file <state_dir>/KILL exists (forces HALTED)
     3. TRADING_HALTED     state is HALTED
     4. LOSS_LIMIT         today's settled loss (configured time zone) >= daily_loss_limit (forces HALTED)
     5. DRAWDOWN           peak settled equity - settled equity >= max_drawdown (forces HALTED)
     6. REDUCING_ONLY      state is REDUCING and the signal does not reduce an open position
     7. UNMAPPED           the venue requires an instrument and the signal has none
     8. BOOKMAKER_UNAVAILABLE  live: none of the signal's books is one ABP can reach for this key
                           (bot/execution/bookmakers.py), or that is not known yet (fail closed)
     9. INVALID_SIGNAL     stake <= 0, price <= 1 or not finite
    10. SIGNAL_EXPIRED     expires_at has passed on the engine clock
    11. ODDS_OUT_OF_RANGE  price or min_price outside [min_price, max_price]
    12. STAKE_BELOW_MIN, STAKE_ABOVE_MAX   (above max: resized down when resize_to_fit)
    13. SUSPENDED, PRICE_STALE, PRICE_MOVED   no usable quote at the target books, or best < min_price;
                           a lay needs a lay price (an exchange ladder) and moves when the best
                           lay price is above its min_price, a ceiling for a lay
    14. DUPLICATE_SIGNAL   signal_id approved before, the same strategy/selection/side/books in flight,
                           or the same strategy/selection/side/books/price acted on by an earlier
                           process within duplicate_window_seconds (restored from the ledger)
    15. BREAKER_OPEN       global breaker, then each target bookmaker's breaker
    16. RATE_LIMIT         approvals per strategy per window
    17. EXPOSURE_SELECTION, _FIXTURE, _MARKET, _BOOKMAKER, _STRATEGY, _TOTAL   (resized to fit when
                           configured); _MARKET only with `max_exposure_market` set: the market's
                           worst case over its outcomes, backs and lays netted (bot/risk/market.py);
                           with `mm.combined_exposure` the fixture and bookmaker caps also count the
                           MM engine's positions and open orders (bot/risk/external.py), and reject
                           MM_STALE while that data is missing or stale (fail closed)
RISK_UNAVAILABLE is not a check but the frame around them (bot/risk/manager.py): when the ledger
cannot record the signal or a check raises anything else, the signal is rejected (fail closed).

A user check is a subclass of `Check` with an uppercase `reason` code and a `check(candidate)`
method that returns to pass, calls `self.reject(**details)` to reject, or
`candidate.resize(self.reason, stake, numbers)` to lower the stake. `self.ctx` (a `RiskContext`)
holds the config, clock, odds book, ledger, positions (bot/risk/positions.py), trading control,
breakers and, live, the bookmaker route. A check that raises anything else rejects with RISK_UNAVAILABLE. In `my_checks.py`:

    from zoneinfo import ZoneInfo
    from bot.risk.checks import Candidate, Check

    class MaxOddsAtNight(Check):
        reason = "MAX_ODDS_AT_NIGHT"

        def check(self, candidate: Candidate) -> None:
            hour = self.ctx.clock.now().astimezone(ZoneInfo("America/New_York")).hour
            if (hour >= 22 or hour < 9) and candidate.signal.price > 4.0:
                self.reject(price=candidate.signal.price, hour=hour)

`risk.checks` in config.yaml lists every check to run, in order (`bot config check` prints the
effective list); put the class where it should run, e.g. after the odds range:

    risk:
      checks: [emergency, kill_switch, ..., odds_out_of_range, my_checks.py:MaxOddsAtNight, stake_below_min, ...]

A relative `file.py` is looked up from the working directory, then in the RiskManager's
`check_dirs`. The decision carries the code (`bot report` shows REJECTED:MAX_ODDS_AT_NIGHT) and
the details.
"""

from __future__ import annotations

import importlib
import math
import re
from collections import OrderedDict, defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from bot.clock import Clock
from bot.plugins import import_file
from bot.risk.breakers import Breakers
from bot.risk.config import DEFAULT_CHECKS, RiskConfig, is_class_path
from bot.risk.control import TradingControl, TradingState
from bot.risk.external import ExternalExposure, ExternalStale
from bot.risk.positions import ZERO, Figures, PositionBook, Scope, liability_price, worst_case_loss
from bot.risk.reasons import Reason
from bot.types import Instrument, Side, Signal

if TYPE_CHECKING:
    from bot.execution.bookmakers import BookmakerRoute
    from bot.ledger.store import Ledger
    from bot.market.book import OddsBook, Quote

CENT = Decimal("0.01")
_SEEN_MAX = 200_000  # approved signal ids remembered for DUPLICATE_SIGNAL
_CODE = re.compile(r"[A-Z][A-Z0-9_]*")


class Rejected(Exception):
    """A check's verdict: reject with `reason` (a reason code) and the numbers behind it."""

    def __init__(self, reason: str, details: dict[str, Any]) -> None:
        super().__init__(reason)
        self.reason = str(reason)  # a built-in Reason or a user's code, stored as plain text
        self.details = details


class CheckLoadError(ValueError):
    """A `risk.checks` entry cannot be used; the message is one line naming the entry."""


@dataclass(slots=True)
class Candidate:
    """The signal under evaluation and the stake it would get so far."""

    signal: Signal
    instrument: Instrument | None
    stake: Decimal
    may_resize: bool  # resize_to_fit and not a leg of an all-or-none group
    resized: dict[str, Any] = field(default_factory=dict)  # "resized_by" codes and their numbers
    # What several checks read, made once per candidate: the book and the positions do not
    # change while its checks run (one loop turn, no await). See `_quotes` and `_figures`.
    quotes_now: tuple[tuple[str, ...], list[Quote], list[Quote]] | None = None
    figures_now: Figures | None = None

    def resize(self, reason: str, stake: Decimal, numbers: dict[str, Any]) -> None:
        """Lower the stake to `stake` because of `reason`; `numbers` go into the decision details."""
        self.stake = stake
        self.resized = {**self.resized, "resized_by": [*self.resized.get("resized_by", []), reason], **numbers}


ActedKey = tuple[str, str, str, str]  # strategy, Selection.key, side, comma-joined bookmakers


def acted_key(strategy: str, selection: str, side: str, bookmakers: str) -> ActedKey:
    return strategy, selection, side, bookmakers


class ApprovalLog:
    """Signal ids approved so far (DUPLICATE_SIGNAL), recent approvals per strategy (RATE_LIMIT),
    and what earlier processes acted on: per (strategy, selection, side, bookmakers) the price and
    time of the latest signal that became an order, restored from the ledger at start, so a
    restart never acts again on a signal already acted on."""

    def __init__(self) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._windows: defaultdict[str, deque[datetime]] = defaultdict(deque)
        self._acted_before: dict[ActedKey, tuple[float, datetime, str]] = {}

    def restore(self, acted: Iterable[tuple[ActedKey, float, datetime, str]]) -> None:
        """(key, price, time, signal id) of signals that became orders, oldest first."""
        for key, price, at, signal_id in acted:
            self._acted_before[key] = (price, at, signal_id)
            self.remember(signal_id)

    def acted_before(self, signal: Signal, window: timedelta) -> str | None:
        """The signal id an earlier process acted on with this signal's content within `window`."""
        key = acted_key(signal.strategy, signal.selection.key, signal.side.value, ",".join(signal.bookmakers))
        found = self._acted_before.get(key)
        if found is None or found[0] != signal.price or signal.created_at - found[1] > window:
            return None
        return found[2]

    def seen(self, signal_id: str) -> bool:
        return signal_id in self._seen

    def remember(self, signal_id: str) -> None:
        self._seen[signal_id] = None
        if len(self._seen) > _SEEN_MAX:
            self._seen.popitem(last=False)

    def approve(self, signal: Signal, at: datetime) -> None:
        self.remember(signal.signal_id)
        self._windows[signal.strategy].append(at)
        # this process acts on the key now: from here on the in-process checks judge it
        self._acted_before.pop(
            acted_key(signal.strategy, signal.selection.key, signal.side.value, ",".join(signal.bookmakers)), None)

    def undo(self, strategy: str) -> None:
        """Take back the strategy's latest approval from its rate window."""
        window = self._windows[strategy]
        if window:
            window.pop()

    def recent(self, strategy: str, horizon: datetime) -> int:
        """Approvals of `strategy` after `horizon`."""
        window = self._windows[strategy]
        while window and window[0] <= horizon:
            window.popleft()
        return len(window)

    def clear_windows(self) -> None:
        self._windows.clear()


@dataclass(frozen=True, slots=True)
class RiskContext:
    """What a check may read (and the built-in ones change: limits halt trading)."""

    config: RiskConfig
    clock: Clock
    book: OddsBook
    ledger: Ledger
    positions: PositionBook
    control: TradingControl
    breakers: Breakers
    approvals: ApprovalLog
    requires_mapping: bool
    route: BookmakerRoute | None = None  # the ABP books this key reaches; None: paper, no such check
    external: ExternalExposure | None = None  # MM exposure the fixture/bookmaker caps add (mm.combined_exposure)


class Check:
    """One risk check. Subclasses set `reason` (an uppercase reason code) and `check`."""

    reason: ClassVar[str]

    def __init__(self, ctx: RiskContext) -> None:
        self.ctx = ctx

    def check(self, candidate: Candidate) -> None:
        """Return to pass; `self.reject(...)` to reject; `candidate.resize(...)` to lower the stake."""
        raise NotImplementedError

    def reject(self, **details: Any) -> NoReturn:
        raise Rejected(self.reason, details)


# -- trading state ----------------------------------------------------------------------------


class EmergencyCheck(Check):
    reason = Reason.EMERGENCY

    def check(self, candidate: Candidate) -> None:
        record = self.ctx.control.record
        if record.emergency:
            self.reject(emergency=record.emergency_reason)


class KillSwitchCheck(Check):
    reason = Reason.KILL_SWITCH

    def check(self, candidate: Candidate) -> None:
        control = self.ctx.control
        if control.kill_file_present():
            control.halt(f"kill switch file {control.kill_path}")
            self.reject(file=str(control.kill_path))


class TradingHaltedCheck(Check):
    reason = Reason.TRADING_HALTED

    def check(self, candidate: Candidate) -> None:
        record = self.ctx.control.record
        if record.state is TradingState.HALTED:
            self.reject(halted_reason=record.reason, since=record.since)


class LossLimitCheck(Check):
    """Also run after every settlement (RiskManager), so a limit halts before the next signal."""

    reason = Reason.LOSS_LIMIT

    def check(self, candidate: Candidate | None) -> None:
        control, limit = self.ctx.control, self.ctx.config.daily_loss_limit
        day, day_loss = control.day_loss()
        if day_loss >= limit:
            control.halt(f"daily loss limit: lost {day_loss} on {day} (limit {limit})")
            self.reject(day=day, day_loss=str(day_loss), limit=str(limit))


class DrawdownCheck(Check):
    """Also run after every settlement (RiskManager), so a limit halts before the next signal."""

    reason = Reason.DRAWDOWN

    def check(self, candidate: Candidate | None) -> None:
        control, limit = self.ctx.control, self.ctx.config.max_drawdown
        equity, peak = control.equity_and_peak()
        drawdown = peak - equity
        if drawdown >= limit:
            control.halt(f"max drawdown: {drawdown} below peak {peak} (limit {limit})")
            self.reject(equity=str(equity), peak=str(peak), drawdown=str(drawdown), limit=str(limit))


class ReducingOnlyCheck(Check):
    reason = Reason.REDUCING_ONLY

    def check(self, candidate: Candidate) -> None:
        if self.ctx.control.state is not TradingState.REDUCING:
            return
        signal = candidate.signal
        opposite = Side.LAY if signal.side is Side.BACK else Side.BACK
        held = self.ctx.positions.held(signal.selection.key, opposite)
        if held < candidate.stake:
            self.reject(opposite_position=str(held), stake=str(candidate.stake))


# -- the signal itself ------------------------------------------------------------------------


class UnmappedCheck(Check):
    reason = Reason.UNMAPPED

    def check(self, candidate: Candidate) -> None:
        if self.ctx.requires_mapping and candidate.instrument is None:
            self.reject(selection=candidate.signal.selection.key)


class BookmakerUnavailableCheck(Check):
    """Live only: a signal must name a book ABP can reach for this key (GET /bookmakers, active
    accounts; docs/reference/abp.md §12, §10 "No active accounts"), else ABP would only decline
    it. No books means any book. Until the route has loaded, nothing passes (fail closed)."""

    reason = Reason.BOOKMAKER_UNAVAILABLE

    def check(self, candidate: Candidate) -> None:
        route, books = self.ctx.route, candidate.signal.bookmakers
        if route is None:
            return
        if not route.loaded:
            self.reject(bookmakers=list(books), why="the books ABP reaches are not loaded yet", error=route.error)
        if not route.abp_books(books):
            self.reject(bookmakers=list(books), abp={b: route.abp_of(b) for b in books},
                        offered=list(route.offered), accounts=None if route.accounts is None else list(route.accounts))


class InvalidSignalCheck(Check):
    reason = Reason.INVALID_SIGNAL

    def check(self, candidate: Candidate) -> None:
        s = candidate.signal
        if s.stake <= 0 or not all(math.isfinite(p) and p > 1.0 for p in (s.price, s.min_price)):
            self.reject(stake=str(s.stake), price=s.price, min_price=s.min_price)


class SignalExpiredCheck(Check):
    reason = Reason.SIGNAL_EXPIRED

    def check(self, candidate: Candidate) -> None:
        now, expires_at = self.ctx.clock.now(), candidate.signal.expires_at
        if expires_at is not None and expires_at <= now:
            self.reject(expires_at=expires_at.isoformat(), now=now.isoformat())


class OddsRangeCheck(Check):
    reason = Reason.ODDS_OUT_OF_RANGE

    def check(self, candidate: Candidate) -> None:
        cfg, s = self.ctx.config, candidate.signal
        for label, price in (("price", s.price), ("min_price", s.min_price)):
            if not cfg.min_price <= price <= cfg.max_price:
                self.reject(field=label, price=price, range=[cfg.min_price, cfg.max_price])


class StakeBelowMinCheck(Check):
    reason = Reason.STAKE_BELOW_MIN

    def check(self, candidate: Candidate) -> None:
        if candidate.stake < self.ctx.config.min_stake:
            self.reject(stake=str(candidate.stake), min_stake=str(self.ctx.config.min_stake))


class StakeAboveMaxCheck(Check):
    reason = Reason.STAKE_ABOVE_MAX

    def check(self, candidate: Candidate) -> None:
        max_stake = self.ctx.config.max_stake
        if candidate.stake <= max_stake:
            return
        if not candidate.may_resize:
            self.reject(stake=str(candidate.stake), max_stake=str(max_stake))
        candidate.resize(self.reason, max_stake, {"max_stake": str(max_stake)})


# -- the market now ---------------------------------------------------------------------------


def _quotes(ctx: RiskContext, candidate: Candidate) -> tuple[tuple[str, ...], list[Quote], list[Quote]]:
    """(target books, their quotes, the usable ones); no target books = every book quoting it.
    A lay is usable only where the quote has a lay price (an exchange's ladder, `Quote.layable`):
    a sportsbook takes no lays. Made once per candidate."""
    if candidate.quotes_now is not None:
        return candidate.quotes_now
    signal, book = candidate.signal, ctx.book
    if signal.bookmakers:  # only the target books' quotes are made
        targets = signal.bookmakers
        seen = [q for b in targets if (q := book.quote(signal.selection, b)) is not None]
    else:
        quotes = book.quotes(signal.selection)
        targets, seen = tuple(quotes), list(quotes.values())
    usable = [q for q in seen if q.layable] if signal.side is Side.LAY else [q for q in seen if q.usable]
    candidate.quotes_now = (targets, seen, usable)
    return candidate.quotes_now


def _figures(ctx: RiskContext, candidate: Candidate) -> Figures:
    """The exposure figures of the candidate's buckets before it (bot/risk/positions.py), made
    once per candidate."""
    if candidate.figures_now is None:
        candidate.figures_now = ctx.positions.figures(Scope.of_signal(candidate.signal))
    return candidate.figures_now


class SuspendedCheck(Check):
    reason = Reason.SUSPENDED

    def check(self, candidate: Candidate) -> None:
        targets, seen, usable = _quotes(self.ctx, candidate)
        if not usable and seen and all(q.suspended for q in seen):
            self.reject(bookmakers=list(targets))


class PriceStaleCheck(Check):
    reason = Reason.PRICE_STALE

    def check(self, candidate: Candidate) -> None:
        targets, seen, usable = _quotes(self.ctx, candidate)
        if not usable:
            self.reject(bookmakers=list(targets),
                        quotes={q.bookmaker: {"stale": q.stale, "suspended": q.suspended} for q in seen})


class PriceMovedCheck(Check):
    """Back: the best usable price is below `min_price` (ABP orderPrice, a floor). Lay: the best
    (lowest) lay price is above `min_price`, which for a lay is the most it accepts
    (docs/reference/abp.md §8.1)."""

    reason = Reason.PRICE_MOVED

    def check(self, candidate: Candidate) -> None:
        signal = candidate.signal
        _, _, usable = _quotes(self.ctx, candidate)
        if not usable:
            return
        if signal.side is Side.BACK:
            best = max(q.price for q in usable if q.price is not None)
            if best < signal.min_price:
                self.reject(best=best, min_price=signal.min_price)
        else:  # a lay's min_price is its ceiling (bot.types.Signal): the best lay is the lowest
            best_lay = min(q.lay_price for q in usable if q.lay_price is not None)
            if best_lay > signal.min_price:
                self.reject(best_lay=best_lay, max_lay_price=signal.min_price)


# -- flow -------------------------------------------------------------------------------------


class DuplicateSignalCheck(Check):
    reason = Reason.DUPLICATE_SIGNAL

    def check(self, candidate: Candidate) -> None:
        signal = candidate.signal
        if self.ctx.approvals.seen(signal.signal_id):
            self.reject(signal_id=signal.signal_id)
        earlier = self.ctx.approvals.acted_before(signal, timedelta(seconds=self.ctx.config.duplicate_window_seconds))
        if earlier is not None:
            self.reject(acted_on_before=earlier)
        if self.ctx.config.block_while_in_flight:
            other = self.ctx.positions.in_flight_like(signal)
            if other is not None:
                self.reject(in_flight=other)


class BreakerOpenCheck(Check):
    reason = Reason.BREAKER_OPEN

    def check(self, candidate: Candidate) -> None:
        breaker = self.ctx.breakers.blocking(candidate.signal.bookmakers)
        if breaker is not None:
            self.reject(breaker=breaker.name, breaker_state=breaker.state.value, probe_in_flight=breaker.probe)


class RateLimitCheck(Check):
    reason = Reason.RATE_LIMIT

    def check(self, candidate: Candidate) -> None:
        cfg = self.ctx.config
        horizon = self.ctx.clock.now() - timedelta(seconds=cfg.rate_window_seconds)
        approvals = self.ctx.approvals.recent(candidate.signal.strategy, horizon)
        if approvals >= cfg.max_orders_per_window:
            self.reject(approvals=approvals, limit=cfg.max_orders_per_window, window_seconds=cfg.rate_window_seconds)


# -- exposure caps ----------------------------------------------------------------------------


class _ExposureCap(Check):
    """Worst-case exposure in one dimension (bot/risk/positions.py) plus this signal's must stay
    within `max_exposure_<dimension>`; resized to what fits when allowed and >= min_stake."""

    dimension: ClassVar[str]

    def check(self, candidate: Candidate) -> None:
        cfg, signal = self.ctx.config, candidate.signal
        cap: Decimal = getattr(cfg, f"max_exposure_{self.dimension}")
        current: Decimal = getattr(_figures(self.ctx, candidate), self.dimension)
        extra: dict[str, str] = {}
        if self.ctx.external is not None:
            try:
                current, extra = self.combined(candidate, current, self.ctx.external)
            except ExternalStale as exc:
                raise Rejected(exc.reason, {"dimension": self.dimension, **exc.details}) from None
        per_unit = worst_case_loss(signal.side, Decimal(1), liability_price(signal))  # exposure per unit stake
        adding = candidate.stake * per_unit
        if current + adding <= cap:
            return
        numbers = {"dimension": self.dimension, "current": str(current), "adding": str(adding), "cap": str(cap),
                   **extra}
        fit = ((cap - current) / per_unit).quantize(CENT, rounding=ROUND_DOWN) if cap > current else ZERO
        if not candidate.may_resize or fit < cfg.min_stake:
            self.reject(**numbers, fits=str(max(fit, ZERO)))
        candidate.resize(self.reason, fit, {self.reason.lower(): numbers})

    def combined(self, candidate: Candidate, own: Decimal, external: ExternalExposure) -> tuple[Decimal, dict[str, str]]:
        """The current figure with the outside exposure added, and its share for the details.
        Only the fixture and bookmaker caps count it (docs/reference/mm.md, "Combined exposure")."""
        return own, {}


class ExposureSelectionCheck(_ExposureCap):
    reason, dimension = Reason.EXPOSURE_SELECTION, "selection"


class ExposureFixtureCheck(_ExposureCap):
    reason, dimension = Reason.EXPOSURE_FIXTURE, "fixture"

    def combined(self, candidate: Candidate, own: Decimal, external: ExternalExposure) -> tuple[Decimal, dict[str, str]]:
        """The MM's exposure on the signal's fixture, by its OddsPapi id (`Instrument.fixture_id`;
        a signal without an instrument matches no MM fixture)."""
        fixture_id = candidate.instrument.fixture_id if candidate.instrument is not None else None
        outside = external.fixture(fixture_id)
        return own + outside, {f"{external.source}_exposure": str(outside)}


class ExposureMarketCheck(Check):
    """The worst-case loss of the signal's market over its outcomes (bot/risk/market.py: open
    bets netted, pending counted where it hurts, this signal as one more pending order at its
    liability price) must stay within `max_exposure_market`. A signal that does not raise the
    market's worst case always passes (a lay against a back, a back on the worst outcome): netting
    is the point. Resized to the largest stake that fits when allowed and >= min_stake. Off while
    the cap is None."""

    reason = Reason.EXPOSURE_MARKET

    def check(self, candidate: Candidate) -> None:
        cfg, signal, positions = self.ctx.config, candidate.signal, self.ctx.positions
        cap = cfg.max_exposure_market
        if cap is None:
            return
        key, side, price = signal.selection.key, signal.side, liability_price(signal)
        current = positions.market_worst_case(key)
        after = positions.market_worst_case(key, (side, candidate.stake, price))
        limit = max(cap, current)  # what is already held is not this signal's to fix
        if after <= limit:
            return
        numbers = {"current": str(current), "after": str(after), "cap": str(cap)}
        # the worst case is nondecreasing in the added stake (pending counts only where it hurts):
        # bisect in whole cents for the largest stake that keeps it within the limit
        lo, hi = 0, int((candidate.stake / CENT).to_integral_value(rounding=ROUND_CEILING))  # hi never fits
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if positions.market_worst_case(key, (side, mid * CENT, price)) <= limit:
                lo = mid
            else:
                hi = mid
        fit = lo * CENT
        if not candidate.may_resize or fit < cfg.min_stake:
            self.reject(**numbers, fits=str(fit))
        candidate.resize(self.reason, fit, {"exposure_market": numbers})


class ExposureBookmakerCheck(_ExposureCap):
    reason, dimension = Reason.EXPOSURE_BOOKMAKER, "bookmaker"

    def combined(self, candidate: Candidate, own: Decimal, external: ExternalExposure) -> tuple[Decimal, dict[str, str]]:
        """The worst target book with the MM's exposure there added (a feed slug is looked up by
        its ABP slug through the route: the MM names books and exchanges as ABP does). No target
        books means any book: the worst of the bot's books and the MM's."""
        positions, route = self.ctx.positions, self.ctx.route
        books = candidate.signal.bookmakers or tuple(dict.fromkeys((*positions.books(), *external.books())))
        worst: tuple[Decimal, str, Decimal] | None = None
        for book in books:
            slug = (route.abp_of(book) if route is not None else None) or book
            outside = external.bookmaker(slug)
            figure = positions.bookmaker_exposure(book) + outside
            if worst is None or figure > worst[0]:
                worst = (figure, book, outside)
        if worst is None:  # no book anywhere yet: nothing to add, but stale data still fails closed
            external.bookmaker("")
            return own, {f"{external.source}_exposure": "0"}
        return max(worst[0], own), {f"{external.source}_exposure": str(worst[2]), "bookmaker": worst[1]}


class ExposureStrategyCheck(_ExposureCap):
    reason, dimension = Reason.EXPOSURE_STRATEGY, "strategy"


class ExposureTotalCheck(_ExposureCap):
    reason, dimension = Reason.EXPOSURE_TOTAL, "total"


BUILTIN_CHECKS: dict[str, type[Check]] = {
    cls.reason.lower(): cls
    for cls in (
        EmergencyCheck, KillSwitchCheck, TradingHaltedCheck, LossLimitCheck, DrawdownCheck, ReducingOnlyCheck,
        UnmappedCheck, BookmakerUnavailableCheck, InvalidSignalCheck, SignalExpiredCheck, OddsRangeCheck,
        StakeBelowMinCheck, StakeAboveMaxCheck, SuspendedCheck, PriceStaleCheck, PriceMovedCheck,
        DuplicateSignalCheck, BreakerOpenCheck, RateLimitCheck, ExposureSelectionCheck, ExposureFixtureCheck,
        ExposureMarketCheck, ExposureBookmakerCheck, ExposureStrategyCheck, ExposureTotalCheck,
    )
}


# -- loading ----------------------------------------------------------------------------------


def load_checks(names: Sequence[str], ctx: RiskContext, search_dirs: Iterable[Path] = ()) -> list[Check]:
    """The checks `names` lists (see the module docstring), in that order. A `file.py:Class`
    path is looked up as given, then in each of `search_dirs`.

    Raises:
        CheckLoadError: an unknown name, a class path that does not import, or a class that is not
            a `Check` with an uppercase `reason` code (one line: `risk.checks[i]: ...`).
    """
    dirs = [Path(d) for d in search_dirs]
    return [_check_class(i, name, dirs)(ctx) for i, name in enumerate(names)]


def _check_class(index: int, name: str, dirs: list[Path]) -> type[Check]:
    where = f"risk.checks[{index}]"
    if name in BUILTIN_CHECKS:
        return BUILTIN_CHECKS[name]
    if not is_class_path(name):
        raise CheckLoadError(f"{where}: unknown check {name!r} (known: {', '.join(DEFAULT_CHECKS)}; "
                             "or a class as package.module:Class or file.py:Class)")
    module_ref, _, attr = name.rpartition(":")
    try:
        obj = getattr(_import(module_ref, dirs), attr, None)
    except CheckLoadError as exc:
        raise CheckLoadError(f"{where}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a user's module failing at import: one line, no traceback
        raise CheckLoadError(f"{where}: importing {name!r} failed: {type(exc).__name__}: {exc}") from None
    if not (isinstance(obj, type) and issubclass(obj, Check)):
        raise CheckLoadError(f"{where}: {name!r} is not a subclass of bot.risk.checks.Check")
    code = getattr(obj, "reason", None)
    if not (isinstance(code, str) and _CODE.fullmatch(code)):
        raise CheckLoadError(f"{where}: {name!r} needs a reason code like 'MAX_ODDS_AT_NIGHT' (got {code!r})")
    return obj


def _import(module_ref: str, dirs: list[Path]) -> ModuleType:
    if not module_ref.endswith(".py"):
        return importlib.import_module(module_ref)
    for file in (Path(module_ref), *(d / module_ref for d in dirs)):
        if file.is_file():
            return import_file(file, "check")
    raise CheckLoadError(f"file {module_ref!r} not found (looked in {['.', *map(str, dirs)]})")
