"""RiskManager: every check a Signal must pass, in a fixed order, each decision recorded
(issue 5, build point 5; interfaces.md §4; DESIGN.md "Fail closed").

Check order (the first failure rejects with its `Reason`):
  1. RISK_UNAVAILABLE   the ledger cannot record the signal or read state/PnL, or the book raises
  2. EMERGENCY          the venue's emergency channel is active
  3. KILL_SWITCH        the file <state_dir>/KILL exists (forces HALTED)
  4. TRADING_HALTED     state is HALTED
  5. LOSS_LIMIT         today's settled loss (configured time zone) >= daily_loss_limit (forces HALTED)
  6. DRAWDOWN           peak settled equity - settled equity >= max_drawdown (forces HALTED)
  7. REDUCING_ONLY      state is REDUCING and the signal does not reduce an open position
  8. UNMAPPED           the venue requires an instrument and the signal has none
  9. INVALID_SIGNAL     stake <= 0, price <= 1 or not finite
 10. SIGNAL_EXPIRED     expires_at has passed on the engine clock
 11. ODDS_OUT_OF_RANGE  price or min_price outside [min_price, max_price]
 12. STAKE_BELOW_MIN / STAKE_ABOVE_MAX   (above max: resized down when resize_to_fit)
 13. SUSPENDED / PRICE_STALE / PRICE_MOVED   no usable quote at the target books, or best < min_price
 14. DUPLICATE_SIGNAL   signal_id seen before, or the same strategy/selection/side/books in flight
 15. BREAKER_OPEN       global breaker, then each target bookmaker's breaker
 16. RATE_LIMIT         approvals per strategy per window
 17. EXPOSURE_SELECTION, _FIXTURE, _BOOKMAKER, _STRATEGY, _TOTAL   (resized to fit when configured)
Approval reserves the exposure under an asyncio.Lock, so two concurrent evaluations cannot both
pass a cap only one fits. Reservations are released on decline / cancel / expiry, converted to bet
exposure on fill, and the bet exposure is released at settlement.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections import Counter, OrderedDict, defaultdict, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from loguru import logger

from bot.clock import Clock
from bot.risk.breakers import Breaker
from bot.risk.config import RiskConfig
from bot.risk.exposure import ZERO, ExposureBook, Scope, worst_case_loss
from bot.risk.reasons import Reason
from bot.risk.state import STATE_KEY, TradingRecord, TradingState
from bot.types import (
    FINAL_ORDER_STATUSES,
    BetStatus,
    Decision,
    ExecutionEvent,
    Fill,
    Instrument,
    OrderStatus,
    OrderUpdate,
    Settlement,
    Side,
    Signal,
    Verdict,
)

if TYPE_CHECKING:
    from bot.ledger.models import OrderRow
    from bot.ledger.store import Ledger
    from bot.market.book import OddsBook

CENT = Decimal("0.01")
KILL_FILE = "KILL"
GLOBAL = "global"
_LIVE_BETS = {BetStatus.PENDING, BetStatus.PLACED, BetStatus.CONFIRMED}
_FAILED_BETS = {BetStatus.REJECTED, BetStatus.FAILED}
_FAILED_ORDERS = {OrderStatus.DECLINED, OrderStatus.REJECTED, OrderStatus.FAILED}
_SEEN_MAX = 200_000  # signal ids remembered for DUPLICATE_SIGNAL

HaltCallback = Callable[[str], Awaitable[None] | None]


class _Reject(Exception):
    def __init__(self, reason: Reason, **details: Any) -> None:
        self.reason = reason
        self.details = details


@dataclass(slots=True)
class _Reservation:
    """Exposure held for an approved signal until its order ends. `filled` counts fills seen;
    `final_filled` is the filled stake the final order status reported (None while in flight)."""

    signal_id: str
    scope: Scope
    side: Side
    price: float  # liability price for lays
    stake: Decimal
    approved_at: datetime
    filled: Decimal = ZERO
    final_filled: Decimal | None = None
    request_uuid: str | None = None

    @property
    def in_flight(self) -> bool:
        return self.final_filled is None

    def remaining(self) -> Decimal:
        if self.final_filled is None:
            return max(self.stake - self.filled, ZERO)
        return max(self.final_filled - self.filled, ZERO)  # reported filled, Fill not seen yet

    def dedupe_key(self) -> tuple[str, str, str, tuple[str, ...]]:
        return (self.scope.strategy, self.scope.selection, self.side.value, self.scope.bookmakers)


@dataclass(slots=True)
class _Bet:
    scope: Scope
    side: Side
    stake: Decimal
    signal_id: str | None


def _dedupe_key(signal: Signal) -> tuple[str, str, str, tuple[str, ...]]:
    return (signal.strategy, signal.selection.key, signal.side.value, tuple(sorted(signal.bookmakers)))


def _liability_price(signal: Signal) -> float:
    return max(signal.price, signal.min_price)


def _s(value: Decimal) -> str:
    return str(value)


class RiskManager:
    """See the module docstring for the check order. All money in the order currency."""

    def __init__(
        self,
        config: RiskConfig,
        *,
        clock: Clock,
        book: OddsBook,
        ledger: Ledger,
        requires_mapping: bool,
        state_dir: Path,
    ) -> None:
        self.config = config
        self._clock = clock
        self._book = book
        self._ledger = ledger
        self._requires_mapping = requires_mapping
        self._kill_path = Path(state_dir) / KILL_FILE
        self._zone = ZoneInfo(config.day_timezone)
        self._lock = asyncio.Lock()
        self._exposure = ExposureBook()
        self._reservations: dict[str, _Reservation] = {}
        self._bets: dict[int, _Bet] = {}
        self._uuid_signal: dict[str, str] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._approvals: defaultdict[str, deque[datetime]] = defaultdict(deque)
        self._global_breaker = Breaker(GLOBAL, config.global_breaker, clock)
        self._book_breakers: dict[str, Breaker] = {}
        self._callbacks: list[HaltCallback] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self.counters: Counter[str] = Counter()  # verdicts and reason codes
        self._record = TradingRecord.from_dict(ledger.get_state(STATE_KEY))
        self._restore_exposure()

    # -- restart ---------------------------------------------------------------------------

    def _scope_of(self, order: OrderRow, bookmaker: str | None = None) -> Scope:
        books = (bookmaker,) if bookmaker else tuple(sorted(b for b in order.bookmakers.split(",") if b))
        return Scope(order.strategy, order.selection, order.fixture, books)

    def _restore_exposure(self) -> None:
        """Rebuild reservations (non-final orders) and bet exposure (open bets) from the ledger."""
        now = self._clock.now()
        for order in self._ledger.open_orders():
            res = _Reservation(
                signal_id=order.signal_id,
                scope=self._scope_of(order),
                side=Side.BACK if order.back else Side.LAY,
                price=order.order_price,
                stake=order.stake,
                approved_at=now,
                filled=order.filled_stake,
                request_uuid=order.request_uuid,
            )
            self._reservations[res.signal_id] = res
            self._uuid_signal[order.request_uuid] = order.signal_id
            self._seen[order.signal_id] = None
            self._sync(res)
        for bet in self._ledger.open_bets():
            order = self._ledger.get_order(bet.request_uuid)
            if order is None:
                logger.error("open bet {} has no order {} in the ledger", bet.bet_id, bet.request_uuid)
                continue
            side = Side.BACK if order.back else Side.LAY
            self._add_bet(bet.bet_id, self._scope_of(order, bet.bookmaker), side, bet.placed_stake,
                          bet.placed_price, order.signal_id)

    # -- public state API ------------------------------------------------------------------

    @property
    def state(self) -> TradingState:
        return self._record.state

    def on_halt(self, callback: HaltCallback) -> None:
        """Called with the reason on every transition into HALTED (engine cancels pending orders)."""
        self._callbacks.append(callback)

    def _persist(self) -> None:
        self._ledger.set_state(STATE_KEY, self._record.to_dict())

    def _fire_halt(self, reason: str) -> None:
        logger.warning("risk: trading HALTED: {}", reason)
        for cb in self._callbacks:
            try:
                result = cb(reason)
                if inspect.isawaitable(result):
                    try:
                        loop = asyncio.get_running_loop()
                    except RuntimeError:  # called outside the event loop (tests, tools)
                        asyncio.run(_awaited(result))
                        continue
                    task = loop.create_task(_awaited(result))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            except Exception:
                logger.opt(exception=True).error("on_halt callback failed")

    def halt(self, reason: str) -> None:
        if self._record.transition(TradingState.HALTED, reason, self._clock.now()):
            self._persist()
            self._fire_halt(reason)

    def reduce(self, reason: str) -> None:
        if self._record.transition(TradingState.REDUCING, reason, self._clock.now()):
            self._persist()

    def resume(self) -> None:
        """Operator resume to ACTIVE (acknowledges today's loss and the drawdown, see state.py).

        Raises:
            ResumeRefused: the emergency is active or the kill file exists.
        """
        day, day_pnl = self._day_pnl()
        self._record.resume(
            self._clock.now(),
            kill_file=self._kill_path.exists(),
            equity=self._ledger.settled_pnl(),
            day=day,
            day_pnl=day_pnl,
        )
        self._persist()

    def set_emergency(self, active: bool, reason: str) -> None:
        """The venue's emergency channel (reference/abp.md §9): active forces HALTED; clearing it
        does not resume (an ABP emergency needs a manual resume)."""
        if self._record.emergency == active:
            return
        self._record.emergency = active
        self._record.emergency_reason = reason
        self._record.rev += 1
        self._persist()
        if active:
            self.halt(f"venue emergency: {reason}")

    def kill_switch(self, reason: str = "SIGUSR1") -> None:
        """Local kill switch (the engine calls this on SIGUSR1): HALTED and pending orders cancelled."""
        self.halt(f"kill switch: {reason}")

    def daily_reset(self) -> None:
        """Day boundary in the configured zone: forget rate windows; the loss limit counts anew
        (a HALTED state stays until an operator resumes)."""
        self._approvals.clear()
        day, _ = self._day_pnl()
        if self._record.day != day:
            self._record.day = day
            self._record.day_baseline = ZERO
            self._persist()

    def sync_state(self) -> None:
        """Adopt a state the CLI wrote to the ledger (newer `rev`); a halt fires on_halt."""
        stored = TradingRecord.from_dict(self._ledger.get_state(STATE_KEY))
        if stored.rev <= self._record.rev:
            return
        was = self._record.state
        self._record = stored
        if stored.state is TradingState.HALTED and was is not TradingState.HALTED:
            self._fire_halt(stored.reason)

    # -- limits from settled PnL -----------------------------------------------------------

    def _day_pnl(self) -> tuple[str, Decimal]:
        local = self._clock.now().astimezone(self._zone)
        start = datetime.combine(local.date(), time(0), self._zone).astimezone(UTC)
        return local.date().isoformat(), self._ledger.settled_pnl(since=start)

    def _check_limits(self) -> None:
        """Raise _Reject(LOSS_LIMIT | DRAWDOWN) and HALT when a limit is reached."""
        day, day_pnl = self._day_pnl()
        baseline = self._record.day_baseline if self._record.day == day else ZERO
        day_loss = baseline - day_pnl
        if day_loss >= self.config.daily_loss_limit:
            reason = f"daily loss limit: lost {day_loss} on {day} (limit {self.config.daily_loss_limit})"
            self.halt(reason)
            raise _Reject(Reason.LOSS_LIMIT, day=day, day_loss=_s(day_loss), limit=_s(self.config.daily_loss_limit))
        equity = self._ledger.settled_pnl()
        if equity > self._record.peak_equity:
            self._record.peak_equity = equity
            self._persist()
        drawdown = self._record.peak_equity - equity
        if drawdown >= self.config.max_drawdown:
            self.halt(f"max drawdown: {drawdown} below peak {self._record.peak_equity} (limit {self.config.max_drawdown})")
            raise _Reject(Reason.DRAWDOWN, equity=_s(equity), peak=_s(self._record.peak_equity),
                          drawdown=_s(drawdown), limit=_s(self.config.max_drawdown))

    # -- evaluation ------------------------------------------------------------------------

    async def evaluate(self, signal: Signal, instrument: Instrument | None) -> Decision:
        """Decide on one signal, record signal and decision in the ledger; an approval reserves
        its exposure. Never raises: anything unexpected is RISK_UNAVAILABLE (fail closed)."""
        return (await self.evaluate_many([(signal, instrument)]))[0]

    async def evaluate_many(self, items: Sequence[tuple[Signal, Instrument | None]]) -> list[Decision]:
        """Decide on several signals atomically; legs sharing a `group` are all-or-none (a group
        with a rejected leg rejects the others with GROUP_INCOMPLETE, and its legs are never
        resized, which would unbalance an arbitrage)."""
        async with self._lock:
            decisions = [self._decide(sig, inst) for sig, inst in items]
            broken = {d.signal.group for d in decisions if d.signal.group and not d.approved}
            for i, d in enumerate(decisions):
                if d.approved and d.signal.group in broken:
                    self._undo(d.signal)
                    decisions[i] = self._rejection(d.signal, Reason.GROUP_INCOMPLETE, {"group": d.signal.group})
            return [self._store(d) for d in decisions]

    def _store(self, decision: Decision) -> Decision:
        try:
            self._ledger.record_decision(decision)
        except Exception as exc:
            logger.opt(exception=True).error("risk: cannot record decision for {}", decision.signal.signal_id)
            if decision.approved:
                self._undo(decision.signal)
            decision = self._rejection(decision.signal, Reason.RISK_UNAVAILABLE, {"error": repr(exc)[:200]})
        self.counters[decision.verdict.value] += 1
        if decision.reason:
            self.counters[decision.reason] += 1
        return decision

    def _rejection(self, signal: Signal, reason: Reason, details: dict[str, Any]) -> Decision:
        return Decision(signal, Verdict.REJECTED, ZERO, reason.value,
                        {**details, "state": self._record.state.value}, self._clock.now())

    def _decide(self, signal: Signal, instrument: Instrument | None) -> Decision:
        try:
            self._ledger.record_signal(signal)
            self.sync_state()
            stake, resized = self._check(signal, instrument)
        except _Reject as rej:
            return self._rejection(signal, rej.reason, rej.details)
        except Exception as exc:
            logger.opt(exception=True).error("risk unavailable for signal {}", signal.signal_id)
            return self._rejection(signal, Reason.RISK_UNAVAILABLE, {"error": repr(exc)[:200]})
        details = {"requested_stake": _s(signal.stake), "approved_stake": _s(stake),
                   "state": self._record.state.value, **resized}
        self._apply(signal, stake)
        details["exposure_after"] = {k: _s(v) for k, v in self._figures(signal).items()}
        if resized:
            return Decision(signal, Verdict.RESIZED, stake, resized["resized_by"][0], details, self._clock.now())
        return Decision(signal, Verdict.APPROVED, stake, None, details, self._clock.now())

    def _check(self, signal: Signal, instrument: Instrument | None) -> tuple[Decimal, dict[str, Any]]:
        cfg = self.config
        rec = self._record
        if rec.emergency:
            raise _Reject(Reason.EMERGENCY, emergency=rec.emergency_reason)
        if self._kill_path.exists():
            self.halt(f"kill switch file {self._kill_path}")
            raise _Reject(Reason.KILL_SWITCH, file=str(self._kill_path))
        if rec.state is TradingState.HALTED:
            raise _Reject(Reason.TRADING_HALTED, halted_reason=rec.reason, since=rec.since)
        self._check_limits()
        if rec.state is TradingState.REDUCING:
            held = self._position(signal.selection.key, Side.LAY if signal.side is Side.BACK else Side.BACK)
            if held < signal.stake:
                raise _Reject(Reason.REDUCING_ONLY, opposite_position=_s(held), stake=_s(signal.stake))
        if self._requires_mapping and instrument is None:
            raise _Reject(Reason.UNMAPPED, selection=signal.selection.key)
        if signal.stake <= 0 or not all(math.isfinite(p) and p > 1.0 for p in (signal.price, signal.min_price)):
            raise _Reject(Reason.INVALID_SIGNAL, stake=_s(signal.stake), price=signal.price, min_price=signal.min_price)
        now = self._clock.now()
        if signal.expires_at is not None and signal.expires_at <= now:
            raise _Reject(Reason.SIGNAL_EXPIRED, expires_at=signal.expires_at.isoformat(), now=now.isoformat())
        for label, price in (("price", signal.price), ("min_price", signal.min_price)):
            if not cfg.min_price <= price <= cfg.max_price:
                raise _Reject(Reason.ODDS_OUT_OF_RANGE, field=label, price=price, range=[cfg.min_price, cfg.max_price])
        stake = signal.stake
        resized: dict[str, Any] = {}
        if stake < cfg.min_stake:
            raise _Reject(Reason.STAKE_BELOW_MIN, stake=_s(stake), min_stake=_s(cfg.min_stake))
        if stake > cfg.max_stake:
            if not self._may_resize(signal):
                raise _Reject(Reason.STAKE_ABOVE_MAX, stake=_s(stake), max_stake=_s(cfg.max_stake))
            stake = cfg.max_stake
            resized = {"resized_by": [Reason.STAKE_ABOVE_MAX.value], "max_stake": _s(cfg.max_stake)}
        self._check_prices(signal)
        self._check_duplicate(signal)
        self._check_breakers(signal)
        window = self._approvals[signal.strategy]
        horizon = now - timedelta(seconds=cfg.rate_window_seconds)
        while window and window[0] <= horizon:
            window.popleft()
        if len(window) >= cfg.max_orders_per_window:
            raise _Reject(Reason.RATE_LIMIT, approvals=len(window), limit=cfg.max_orders_per_window,
                          window_seconds=cfg.rate_window_seconds)
        return self._fit_exposure(signal, stake, resized)

    def _may_resize(self, signal: Signal) -> bool:
        return self.config.resize_to_fit and signal.group is None

    def _position(self, selection: str, side: Side) -> Decimal:
        return sum((b.stake for b in self._bets.values() if b.scope.selection == selection and b.side is side), ZERO)

    def _check_prices(self, signal: Signal) -> None:
        quotes = self._book.quotes(signal.selection)
        targets = signal.bookmakers or tuple(quotes)
        seen = [quotes[b] for b in targets if b in quotes]
        usable = [q for q in seen if q.usable]
        if not usable:
            if seen and all(q.suspended for q in seen):
                raise _Reject(Reason.SUSPENDED, bookmakers=list(targets))
            raise _Reject(Reason.PRICE_STALE, bookmakers=list(targets),
                          quotes={q.bookmaker: {"stale": q.stale, "suspended": q.suspended} for q in seen})
        if signal.side is Side.BACK:
            best = max(q.price for q in usable if q.price is not None)
            if best < signal.min_price:
                raise _Reject(Reason.PRICE_MOVED, best=best, min_price=signal.min_price)

    def _check_duplicate(self, signal: Signal) -> None:
        if signal.signal_id in self._seen:
            raise _Reject(Reason.DUPLICATE_SIGNAL, signal_id=signal.signal_id)
        if self.config.block_while_in_flight:
            key = _dedupe_key(signal)
            for res in self._reservations.values():
                if res.in_flight and res.dedupe_key() == key:
                    raise _Reject(Reason.DUPLICATE_SIGNAL, in_flight=res.signal_id)

    def _breaker(self, book: str) -> Breaker:
        if book not in self._book_breakers:
            self._book_breakers[book] = Breaker(book, self.config.bookmaker_breaker, self._clock)
        return self._book_breakers[book]

    def _check_breakers(self, signal: Signal) -> None:
        for breaker in (self._global_breaker, *(self._breaker(b) for b in signal.bookmakers)):
            if not breaker.allow():
                raise _Reject(Reason.BREAKER_OPEN, breaker=breaker.name, breaker_state=breaker.state.value,
                              probe_in_flight=breaker.probe)

    def _scope(self, signal: Signal) -> Scope:
        sel = signal.selection
        return Scope(signal.strategy, sel.key, str(sel.fixture), tuple(sorted(signal.bookmakers)))

    def _figures(self, signal: Signal) -> dict[str, Decimal]:
        f = self._exposure.figures(self._scope(signal))
        return {"selection": f.selection, "fixture": f.fixture, "bookmaker": f.bookmaker,
                "strategy": f.strategy, "total": f.total}

    def _fit_exposure(self, signal: Signal, stake: Decimal, resized: dict[str, Any]) -> tuple[Decimal, dict[str, Any]]:
        cfg = self.config
        caps = (
            (Reason.EXPOSURE_SELECTION, "selection", cfg.max_exposure_selection),
            (Reason.EXPOSURE_FIXTURE, "fixture", cfg.max_exposure_fixture),
            (Reason.EXPOSURE_BOOKMAKER, "bookmaker", cfg.max_exposure_bookmaker),
            (Reason.EXPOSURE_STRATEGY, "strategy", cfg.max_exposure_strategy),
            (Reason.EXPOSURE_TOTAL, "total", cfg.max_exposure_total),
        )
        figures = self._figures(signal)
        price = _liability_price(signal)
        per_unit = worst_case_loss(signal.side, Decimal(1), price)  # exposure per unit of stake
        adding = stake * per_unit
        for reason, dim, cap in caps:
            current = figures[dim]
            if current + adding <= cap:
                continue
            numbers = {"dimension": dim, "current": _s(current), "adding": _s(adding), "cap": _s(cap)}
            fit = ((cap - current) / per_unit).quantize(CENT, rounding=ROUND_DOWN) if cap > current else ZERO
            if not self._may_resize(signal) or fit < cfg.min_stake:
                raise _Reject(reason, **numbers, fits=_s(max(fit, ZERO)))
            stake, adding = fit, fit * per_unit
            resized = {**resized, "resized_by": [*resized.get("resized_by", []), reason.value],
                       reason.value.lower(): numbers}
        return stake, resized

    # -- reservations ----------------------------------------------------------------------

    def _apply(self, signal: Signal, stake: Decimal) -> None:
        now = self._clock.now()
        res = _Reservation(signal.signal_id, self._scope(signal), signal.side, _liability_price(signal), stake, now)
        self._reservations[res.signal_id] = res
        self._remember(signal.signal_id)
        self._approvals[signal.strategy].append(now)
        for breaker in (self._global_breaker, *(self._breaker(b) for b in signal.bookmakers)):
            breaker.begin_probe(signal.signal_id)
        self._sync(res)

    def _undo(self, signal: Signal) -> None:
        """Reverse an approval that will not be sent (group leg, unrecordable decision)."""
        self._release(signal.signal_id)
        window = self._approvals[signal.strategy]
        if window:
            window.pop()

    def _remember(self, signal_id: str) -> None:
        self._seen[signal_id] = None
        if len(self._seen) > _SEEN_MAX:
            self._seen.popitem(last=False)

    def _sync(self, res: _Reservation) -> None:
        remaining = res.remaining()
        key = f"r:{res.signal_id}"
        if remaining <= 0 and not res.in_flight:
            self._exposure.remove(key)
            del self._reservations[res.signal_id]
            return
        self._exposure.set(key, res.scope, worst_case_loss(res.side, remaining, res.price))

    def release(self, signal_id: str, reason: str = "") -> None:
        """Release an approval the engine will not submit (a broken group, a refused intent)."""
        if signal_id in self._reservations:
            logger.debug("risk: released {} ({})", signal_id, reason)
        self._release(signal_id)

    def _release(self, signal_id: str) -> None:
        self._exposure.remove(f"r:{signal_id}")
        res = self._reservations.pop(signal_id, None)
        if res is not None:
            for breaker in (self._global_breaker, *(self._breaker(b) for b in res.scope.bookmakers)):
                breaker.end_probe(signal_id)

    def sweep(self) -> int:
        """Bind approvals to their ledger orders; release those that never became an order within
        reservation_ttl_seconds (the engine dropped them). Returns how many were released.
        Call it from the engine's timer."""
        horizon = self._clock.now() - timedelta(seconds=self.config.reservation_ttl_seconds)
        old = [r for r in self._reservations.values() if r.request_uuid is None and r.approved_at <= horizon]
        released = 0
        by_strategy: dict[str, dict[str, OrderRow]] = {}
        for res in old:
            if res.scope.strategy not in by_strategy:
                rows = self._ledger.orders(strategy=res.scope.strategy)
                by_strategy[res.scope.strategy] = {o.signal_id: o for o in rows}
            order = by_strategy[res.scope.strategy].get(res.signal_id)
            if order is None:
                self._release(res.signal_id)
                released += 1
                continue
            res.request_uuid = order.request_uuid
            self._uuid_signal[order.request_uuid] = res.signal_id
            if order.status in FINAL_ORDER_STATUSES:
                res.final_filled = order.filled_stake
                self._sync(res)
        return released

    # -- execution events ------------------------------------------------------------------

    def _signal_for(self, request_uuid: str) -> tuple[str | None, OrderRow | None]:
        sid = self._uuid_signal.get(request_uuid)
        if sid is not None:
            return sid, None
        order = self._ledger.get_order(request_uuid)
        if order is None:
            return None, None
        self._uuid_signal[request_uuid] = order.signal_id
        return order.signal_id, order

    def on_execution_event(self, event: ExecutionEvent) -> None:
        """Keep exposure, breakers and limits in step with the venue. Never raises."""
        try:
            if isinstance(event, OrderUpdate):
                self._on_order_update(event)
            elif isinstance(event, Fill):
                self._on_fill(event)
            elif isinstance(event, Settlement):
                self._on_settlement(event)
        except Exception:
            self.counters["event_errors"] += 1
            logger.opt(exception=True).error("risk: cannot apply execution event {!r:.300}", event)

    def _target_breakers(self, res: _Reservation | None) -> list[Breaker]:
        out = [self._global_breaker]
        if res is not None and len(res.scope.bookmakers) == 1:  # a decline names no book otherwise
            out.append(self._breaker(res.scope.bookmakers[0]))
        return out

    def _on_order_update(self, ev: OrderUpdate) -> None:
        sid, _ = self._signal_for(ev.request_uuid)
        res = self._reservations.get(sid) if sid else None
        if res is not None:
            res.request_uuid = ev.request_uuid
        if ev.status in _FAILED_ORDERS:
            for breaker in self._target_breakers(res):
                breaker.record(failed=True)
        elif ev.status in FINAL_ORDER_STATUSES and res is not None:
            for breaker in self._target_breakers(res):
                breaker.end_probe(res.signal_id)
        if res is not None and ev.status in FINAL_ORDER_STATUSES:
            res.final_filled = ev.filled_stake
            self._sync(res)

    def _add_bet(self, bet_id: int, scope: Scope, side: Side, stake: Decimal, price: float, sid: str | None) -> None:
        self._bets[bet_id] = _Bet(scope, side, stake, sid)
        self._exposure.set(f"b:{bet_id}", scope, worst_case_loss(side, stake, price))

    def _on_fill(self, fill: Fill) -> None:
        sid, order = self._signal_for(fill.request_uuid)
        res = self._reservations.get(sid) if sid else None
        prev = self._bets.get(fill.bet_id)
        live = BetStatus(fill.status) in _LIVE_BETS
        if live:
            if res is not None:
                scope, side = replace(res.scope, bookmakers=(fill.bookmaker,)), res.side
            else:
                order = order or self._ledger.get_order(fill.request_uuid)
                if order is None:
                    logger.error("risk: fill {} for unknown order {}; exposure counted under its bet only",
                                 fill.bet_id, fill.request_uuid)
                    scope, side = Scope("?", fill.request_uuid, "?", (fill.bookmaker,)), Side.BACK
                else:
                    scope, side = self._scope_of(order, fill.bookmaker), Side.BACK if order.back else Side.LAY
            self._add_bet(fill.bet_id, scope, side, fill.stake, fill.price, sid)
            if res is not None:
                res.filled += fill.stake - (prev.stake if prev else ZERO)
                self._sync(res)
            if prev is None:
                self._global_breaker.record(failed=False)
                self._breaker(fill.bookmaker).record(failed=False)
            return
        if prev is not None:  # a placed bet went void / rejected
            self._exposure.remove(f"b:{fill.bet_id}")
            del self._bets[fill.bet_id]
            if res is not None:
                res.filled -= prev.stake
                self._sync(res)
        if BetStatus(fill.status) in _FAILED_BETS:
            self._global_breaker.record(failed=True)
            self._breaker(fill.bookmaker).record(failed=True)

    def _on_settlement(self, st: Settlement) -> None:
        self._exposure.remove(f"b:{st.bet_id}")
        self._bets.pop(st.bet_id, None)
        if self._record.state is not TradingState.HALTED:
            try:
                self._check_limits()
            except _Reject as rej:
                self.counters[rej.reason.value] += 1

    # -- status ----------------------------------------------------------------------------

    def exposure(self) -> dict[str, dict[str, Decimal]]:
        """Current worst-case exposure per dimension (open bets + in-flight orders)."""
        return self._exposure.totals()

    def breaker_states(self) -> dict[str, str]:
        return {GLOBAL: self._global_breaker.state.value} | {
            n: b.state.value for n, b in self._book_breakers.items()
        }

    def snapshot(self) -> dict[str, Any]:
        """Status figures for the CLI / MQTT (money as strings)."""
        rec = self._record
        out: dict[str, Any] = {
            "state": rec.state.value,
            "reason": rec.reason,
            "since": rec.since,
            "emergency": rec.emergency,
            "kill_file": self._kill_path.exists(),
            "peak_equity": _s(rec.peak_equity),
            "exposure_total": _s(self._exposure.totals()["total"]["total"]),
            "exposure_by_strategy": {k: _s(v) for k, v in self._exposure.totals()["strategy"].items()},
            "reservations": len(self._reservations),
            "open_bets": len(self._bets),
            "breakers": {GLOBAL: self._global_breaker.snapshot()}
            | {n: b.snapshot() for n, b in self._book_breakers.items()},
            "counters": dict(self.counters),
        }
        try:
            day, day_pnl = self._day_pnl()
            out |= {"day": day, "day_pnl": _s(day_pnl), "equity": _s(self._ledger.settled_pnl())}
        except Exception as exc:
            out["ledger_error"] = repr(exc)[:200]
        return out


async def _awaited(awaitable: Awaitable[Any]) -> None:
    try:
        await awaitable
    except Exception:
        logger.opt(exception=True).error("on_halt callback failed")
