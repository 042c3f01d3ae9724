"""The running engine as the web dashboard and API see it (bot/web/ports.py `Operated`):
status, readiness, metrics and recent ledger rows read on request, and the operator's actions
(halt, resume, cancel-all, param reload) run on the engine. Nothing here runs on the hot path:
every figure is read when asked (docs/architecture.md, "Invariants > Hot path lean")."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from bot.bus.auth import CommandRefused

if TYPE_CHECKING:
    from bot.engine.core import Engine

DEFAULT_LIMIT = 100
EQUITY_POINTS = 600  # the dashboard's equity curve: at most this many points, however long the history


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def thin_curve(points: list[tuple[Any, Decimal]], limit: int = EQUITY_POINTS) -> list[tuple[Any, Decimal]]:
    """An equity curve of (time, running PnL) points, in time order, cut to at most `limit` points
    (>= 3): the points are split into (limit - 1) // 2 runs of equal length, each kept as its
    lowest and highest point in time order, and the last point is always kept, so every peak,
    trough (the drawdowns) and the current figure survive the thinning."""
    if len(points) <= limit:
        return points
    size = math.ceil(len(points) / ((limit - 1) // 2))
    out: list[tuple[Any, Decimal]] = []
    for start in range(0, len(points), size):
        run = range(start, min(start + size, len(points)))
        low, high = min(run, key=lambda i: points[i][1]), max(run, key=lambda i: points[i][1])
        out.extend(points[i] for i in sorted({low, high}))
    if out[-1] is not points[-1]:
        out.append(points[-1])
    return out


class EngineView:
    """`Operated` on an `Engine` (bot/engine/core.py). Money as exact strings in JSON, floats
    in metrics; times ISO 8601 UTC."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # the equity curve so far, (at, bet_id, running PnL) in time order, and the last
        # settlement id read: a request reads only the settlements stored since (a ledger may hold
        # months of them, and the web server shares the engine's event loop)
        self._equity: list[tuple[Any, int, Decimal]] = []
        self._equity_after = 0

    # -- reads -----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        e = self.engine
        status = e.status()
        risk = status.get("risk", {})
        risk.setdefault("trading_state", risk.get("state", "ACTIVE"))
        risk.setdefault("halt_reason", risk.get("reason"))
        risk.setdefault("emergency", False)
        status["feeds"] = self._feeds()
        status["venue"] = e.venue_state()
        return status

    def _feeds(self) -> dict[str, dict[str, Any]]:
        e = self.engine
        now = e.clock.now()
        stale_after = e.settings.feeds.stale_after_seconds
        out: dict[str, dict[str, Any]] = {}
        for source, (events, last) in sorted(e.feed_activity.items()):
            lag = (now - last).total_seconds()
            out[source] = {"events": events, "last_event": last.isoformat(), "lag_seconds": lag,
                           "fresh": lag <= stale_after}
        for name, why in e.feeds_down.items():
            out.setdefault(name, {"events": 0, "last_event": None, "lag_seconds": None})
            out[name].update(fresh=False, down=why)
        return out

    def health(self) -> dict[str, Any]:
        """Ready = feeds fresh (and none down), the ledger writable, the venue's stream logged
        in (live), not halted by a venue emergency."""
        e = self.engine
        feeds = self._feeds()
        stale = [n for n, f in feeds.items() if not f["fresh"]]
        checks = {
            "feeds": {"ok": bool(feeds) and not stale,
                      "detail": "no feed event yet" if not feeds else
                      (f"stale or down: {', '.join(stale)}" if stale else f"{len(feeds)} fresh")},
            "ledger": {"ok": e.ledger.write_error is None, "detail": e.ledger.write_error or "writable"},
            "venue": {"ok": e.venue_state() != "disconnected", "detail": e.venue_state()},
        }
        emergency = bool(e.risk.snapshot().get("emergency")) if e.started else False
        checks["trading"] = {"ok": not emergency, "detail": "venue emergency" if emergency else "no emergency"}
        return {"ready": all(c["ok"] for c in checks.values()), "checks": checks}

    def metrics(self) -> dict[str, Any]:
        e = self.engine
        s = e.stats
        ledger = e.ledger
        decisions = ledger.decision_counts()
        orders = ledger.order_status_counts()
        risk = e.risk.snapshot() if e.started else {}
        pnl = risk if "day_pnl" in risk else {}
        bus = e.bus.health() if e.bus is not None and hasattr(e.bus, "health") else {}
        breakers = {name: int(b.get("state") == "OPEN") for name, b in risk.get("breakers", {}).items()}
        return {
            "counters": {"events": s.events, "odds_updates": s.odds_updates, "signals": s.signals,
                         "errors": s.errors, "settled": s.settled, "fills": e.fills},
            "decisions": [{"verdict": v, "reason": r or "", "count": n} for v, r, n in decisions],
            "orders_by_status": dict(orders),
            "feeds": {n: {"events": f["events"], "lag_seconds": f["lag_seconds"]} for n, f in self._feeds().items()},
            "exposure": {"total": float(risk.get("exposure_total", 0)),
                         "by_strategy": {k: float(v) for k, v in risk.get("exposure_by_strategy", {}).items()}},
            "pnl": {"today": float(pnl.get("day_pnl", 0)), "settled": float(pnl.get("equity", 0))},
            "breakers": breakers,
            "tick_to_order_seconds": e.executor.latency.histogram(),
            "ledger": {"write_failing": int(ledger.write_error is not None), "refused_writes": ledger.refused_writes},
            "mqtt": {"dropped": int(bus.get("dropped_total", 0))},
        }

    def orders(self, limit: int = DEFAULT_LIMIT) -> list[dict[str, Any]]:
        rows = self.engine.ledger.recent_orders(limit)
        return [{"request_uuid": o.request_uuid, "strategy": o.strategy, "selection": o.selection,
                 "bookmakers": o.bookmakers, "stake": str(o.stake), "filled_stake": str(o.filled_stake),
                 "order_price": o.order_price, "status": o.status, "created_at": _iso(o.created_at)} for o in rows]

    def bets(self, limit: int = DEFAULT_LIMIT) -> list[dict[str, Any]]:
        rows = self.engine.ledger.recent_bets(limit)
        return [{"bet_id": b.bet_id, "bookmaker": b.bookmaker, "placed_stake": str(b.placed_stake),
                 "placed_price": b.placed_price, "bet_status": b.bet_status, "settlement_status": b.settlement_status,
                 "settlement_amount": _money(b.settlement_amount), "clv": b.clv} for b in rows]

    def decisions(self, limit: int = DEFAULT_LIMIT, reason: str | None = None) -> list[dict[str, Any]]:
        return [{"at": _iso(d.at), "strategy": d.strategy, "selection": selection, "verdict": d.verdict,
                 "reason": d.reason or "", "stake": str(d.approved_stake)}
                for d, selection in self.engine.ledger.recent_decisions(limit, reason)]

    def exposure(self) -> dict[str, Any]:
        risk = self.engine.risk
        totals = risk.exposure()
        return {"total": str(totals["total"]["total"]),
                **{f"by_{dim}": {k: str(v) for k, v in sorted(totals[dim].items())}
                   for dim in ("fixture", "bookmaker", "strategy")},
                "by_market": {k: str(v) for k, v in sorted(risk.market_exposure().items())}}

    def pnl(self) -> dict[str, Any]:
        e = self.engine
        risk = e.risk.snapshot() if e.started else {}
        new = e.ledger.settlement_pnls(self._equity_after)
        if new:
            self._equity_after = new[-1][0]
            curve = self._equity
            rows = sorted((at, bet, pnl) for _, at, bet, pnl in new)
            if curve and rows[0][:2] < curve[-1][:2]:  # one settled before the curve's end: draw it anew
                curve.clear()
                self._equity_after = 0
                return self.pnl()
            running = curve[-1][2] if curve else Decimal(0)
            for at, bet, pnl in rows:
                running += pnl
                curve.append((at, bet, running))
        points = [(at, pnl) for at, _, pnl in self._equity]
        settled = points[-1][1] if points else Decimal(0)
        equity = [[_iso(at), str(pnl)] for at, pnl in thin_curve(points)]
        return {"today": risk.get("day_pnl", "0"), "settled": str(settled), "equity": equity}

    def strategies(self) -> list[dict[str, Any]]:
        e = self.engine
        current = e.strategies.current_params()
        return [{"name": spec.name, "path": spec.path, "enabled": spec.enabled,
                 "params": current.get(spec.name, spec.params)} for spec in e.settings.strategies]

    # -- actions ---------------------------------------------------------------------------
    async def halt(self, reason: str) -> None:
        await self.engine.halt(reason or "operator (web)")

    async def resume(self) -> None:
        await self.engine.resume()

    async def cancel_all(self) -> int:
        return await self.engine.cancel_all()

    async def reload_params(self, strategy: str, params: dict[str, Any]) -> None:
        try:
            await self.engine.reload_params(strategy, params)
        except CommandRefused as exc:
            raise ValueError(str(exc)) from None
