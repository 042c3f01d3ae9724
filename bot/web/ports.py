"""What the web layer asks of the engine (the lead implements it on `bot.engine.core.Engine`).

Every method returns JSON-ready data (str, int, float, bool, None, lists, dicts): money as a
decimal string, times as ISO 8601 UTC strings, odds as decimal odds. The sync methods are called
on the event loop from request handlers and the metrics scrape, so they must be cheap reads of
state the engine already keeps (no I/O, no work on the hot path).
"""

from __future__ import annotations

from typing import Any, Protocol


class Operated(Protocol):
    def status(self) -> dict[str, Any]: ...  # JSON-ready; keys: mode, instance, clock (ISO), events, signals, approved, rejected, errors, settled_pnl (str), risk (dict: at least "trading_state" ("ACTIVE"|"HALTED"...), "halt_reason", "emergency" (bool), "breakers" {name: state})
    def health(self) -> dict[str, Any]: ...  # {"ready": bool, "checks": {name: {"ok": bool, "detail": str}}}; names: feeds, ledger, venue, trading
    def metrics(self) -> dict[str, Any]: ...  # shape documented in bot.web.metrics
    def orders(self, limit: int) -> list[dict[str, Any]]: ...  # newest first, JSON-ready (request_uuid, strategy, selection, bookmakers, stake (str), filled_stake (str), order_price, status, created_at ISO)
    def bets(self, limit: int) -> list[dict[str, Any]]: ...  # newest first (bet_id, bookmaker, placed_stake (str), placed_price, bet_status, settlement_status, settlement_amount (str|None), clv)
    def decisions(self, limit: int, reason: str | None) -> list[dict[str, Any]]: ...  # newest first (at ISO, strategy, selection, verdict, reason, stake (str))
    def exposure(self) -> dict[str, Any]: ...  # {"total": str, "by_fixture": {k: str}, "by_bookmaker": {k: str}, "by_strategy": {k: str}, "by_market": {k: str}}
    def pnl(self) -> dict[str, Any]: ...  # {"today": str, "settled": str, "equity": [[ISO time, cumulative pnl str], ...]}
    def strategies(self) -> list[dict[str, Any]]: ...  # name, path, enabled, params
    async def halt(self, reason: str) -> None: ...
    async def resume(self) -> None: ...
    async def cancel_all(self) -> int: ...
    async def reload_params(self, strategy: str, params: dict[str, Any]) -> None: ...  # raises ValueError with a one-line reason when refused
