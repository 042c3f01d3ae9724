"""Executor: exactly-once placement, tracking and reconciliation (docs/architecture.md,
Invariants > Exactly-once placement; docs/reference/abp.md §8.4, §13.4, §14).

Rules:
- every order row is committed with a fresh requestUuid (status INTENT) BEFORE the request leaves;
- no answer (timeout, connection error, 5xx) -> UNKNOWN, resolved with GET /orders?requestUuids=;
- the SAME requestUuid is sent again only when the venue does not know it and the order has
  neither expired nor passed `resend_window_seconds`; otherwise it is closed as EXPIRED;
- 409 (all duplicates) or a UUID missing from both answer lists -> look it up, never re-place
  under a new id;
- `start()` reconciles every non-final order before `submit()` lets anything new leave;
- venue data that does not parse (missing/wrong fields, unknown statuses) is logged and stored
  raw in the event log, and the order goes UNKNOWN until a clean answer resolves it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from loguru import logger
from pydantic import ValidationError

from bot.clock import Clock
from bot.execution.config import ExecutionConfig
from bot.execution.models import AbpBet, AbpOrder, DeclinedOrder
from bot.execution.venue import RESYNC, PlaceReply, Venue, VenueMessage, VenueUnavailable
from bot.ledger.models import BetRow, OrderRow, SettlementRow
from bot.ledger.store import Ledger
from bot.types import (
    ExecutionEvent,
    Fill,
    OrderIntent,
    OrderStatus,
    OrderUpdate,
    Settlement,
    SettlementStatus,
    Side,
)

OnEvent = Callable[[ExecutionEvent], Awaitable[None]]

# Progress order of statuses: a late or replayed message never moves an order backwards.
_RANK = {
    OrderStatus.INTENT: 0, OrderStatus.SENT: 1, OrderStatus.UNKNOWN: 1, OrderStatus.PENDING: 2,
    OrderStatus.PROCESSING: 3, OrderStatus.PARTIALLY_FILLED: 4,
}
_FINAL_RANK = 5
_POLLED = {OrderStatus.INTENT, OrderStatus.SENT, OrderStatus.UNKNOWN, OrderStatus.PENDING, OrderStatus.PROCESSING}


def _rank(status: OrderStatus) -> int:
    return _FINAL_RANK if status.final else _RANK[status]


class Executor:
    """Places `OrderIntent`s on a `Venue` exactly once and reports OrderUpdate / Fill /
    Settlement to `on_event` (docs/architecture.md, Pipeline)."""

    def __init__(
        self,
        venue: Venue,
        ledger: Ledger,
        clock: Clock,
        config: ExecutionConfig,
        on_event: OnEvent,
    ) -> None:
        self._venue = venue
        self._ledger = ledger
        self._clock = clock
        self._config = config
        self._on_event = on_event
        self._ready = asyncio.Event()
        self._sending: set[str] = set()  # request_uuids with a placement request in flight
        self._idle = asyncio.Event()
        self._idle.set()
        self._inflight = 0
        self._kick = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._reconcile_lock = asyncio.Lock()
        self._stopping = False
        self.bad_input_count = 0

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect the venue's updates, reconcile EVERY non-final ledger order, then accept
        submissions and poll unresolved orders every `reconcile_interval_seconds`."""
        await self._venue.connect(self._on_message)
        await self.reconcile()
        self._ready.set()
        self._loop_task = asyncio.create_task(self._reconcile_loop(), name="executor-reconcile")

    async def stop(self, cancel_pending: bool) -> None:
        """Wait for in-flight placements, optionally cancel open orders, close the venue."""
        await self._idle.wait()
        self._stopping = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        if cancel_pending:
            try:
                await self.cancel_all()
            except VenueUnavailable as exc:
                logger.warning("cancel on shutdown failed: {}", exc)
        await self._venue.close()

    # -- placement --------------------------------------------------------------------------

    async def submit(self, intents: Sequence[OrderIntent]) -> list[str]:
        """Commit one INTENT row per intent, then place them together (<= max_batch per call).

        Returns the request_uuids in intent order. Orders that cannot leave (emergency active or
        unknown, an unmapped selection on a venue that needs ABP ids) are closed as DECLINED
        with a reason, without a request.
        """
        if not intents:
            return []
        await self._ready.wait()
        self._begin()
        try:
            now = self._clock.now()
            rows = [self._row(intent, now) for intent in intents]
            self._ledger.add_orders(rows)  # committed before anything leaves
            sendable = await self._screen(rows)
            for i in range(0, len(sendable), self._config.max_batch):
                await self._send(sendable[i : i + self._config.max_batch])
            return [r.request_uuid for r in rows]
        finally:
            self._end()

    def _row(self, intent: OrderIntent, now: datetime) -> OrderRow:
        sig = intent.signal
        inst = intent.instrument
        expires = intent.expires_at or sig.expires_at or now + timedelta(seconds=self._config.expiry_seconds)
        return OrderRow(
            request_uuid=str(uuid.uuid4()),
            signal_id=sig.signal_id,
            strategy=sig.strategy,
            selection=sig.selection.key,
            sport=sig.selection.fixture.sport,
            fixture=str(sig.selection.fixture),
            bookmakers=",".join(sig.bookmakers),
            fixture_id=inst.fixture_id if inst else None,
            outcome_id=inst.outcome_id if inst else None,
            player_id=inst.player_id if inst else 0,
            back=sig.side is Side.BACK,
            order_price=sig.min_price,
            stake=intent.stake,
            currency=self._config.currency,
            status=OrderStatus.INTENT.value,
            user_ref=sig.tag or sig.strategy,
            expires_at=expires,
        )

    async def _screen(self, rows: list[OrderRow]) -> list[OrderRow]:
        """Close the orders that must not leave; return the rest."""
        emergency = await self._venue.emergency_active()
        sendable = []
        for row in rows:
            if emergency is not False:
                reason = "emergency mode active" if emergency else "emergency state unknown (fail closed)"
            elif row.fixture_id is None and not self._venue.accepts_unmapped:
                reason = "unmapped selection: no ABP fixtureId/outcomeId"
            else:
                sendable.append(row)
                continue
            await self._set(row.request_uuid, OrderStatus.DECLINED, reason=f"not sent: {reason}")
        return sendable

    def order_body(self, row: OrderRow) -> dict[str, Any]:
        """The PlaceOrderRequest for a ledger order (docs/reference/abp.md §6.2; `userRef` is
        the signal's tag, bot.types.Signal). Identical on every resend of the same requestUuid."""
        body: dict[str, Any] = {
            "requestUuid": row.request_uuid,
            "fixtureId": row.fixture_id,
            "outcomeId": row.outcome_id,
            "playerId": row.player_id,
            "orderPrice": row.order_price,
            "orderStake": float(row.stake),
            "userRef": row.user_ref or row.strategy,  # ABP requires minLength 1
            "testOrder": self._config.test_orders,
            "orderCurrency": row.currency,
            "back": row.back,
            "acceptBetterOdds": self._config.accept_better_odds,
            "acceptPartialStake": self._config.accept_partial_stake,
            "meta": {"selection": row.selection, "signal_id": row.signal_id, "strategy": row.strategy},
        }
        if row.expires_at is not None:
            body["expiresAt"] = row.expires_at.isoformat()
        if row.bookmakers:
            body["bookmakers"] = row.bookmakers
        return body

    async def _send(self, rows: list[OrderRow]) -> None:
        """Place one batch (rows already committed); apply whatever comes back."""
        uuids = [r.request_uuid for r in rows]
        self._sending.update(uuids)
        try:
            bodies = []
            for row in rows:
                self._ledger.update_order(row.request_uuid, status=OrderStatus.SENT.value, attempts=row.attempts + 1)
                bodies.append(self.order_body(row))
            self._ledger.append_event("place.request", {"orders": bodies})
            try:
                reply = await self._venue.place_orders(bodies)
            except VenueUnavailable as exc:
                logger.warning("placement of {} orders got no answer ({}): UNKNOWN, reconciling", len(rows), exc)
                self._ledger.append_event("place.no_answer", {"error": str(exc), "requestUuids": uuids})
                for u in uuids:
                    await self._set(u, OrderStatus.UNKNOWN, reason=f"no answer: {exc}"[:200])
                self._kick.set()
                return
            self._ledger.append_event("place.response", {"status": reply.status, "body": reply.body})
            await self._apply_reply(uuids, reply)
        finally:
            self._sending.difference_update(uuids)

    async def _apply_reply(self, uuids: list[str], reply: PlaceReply) -> None:
        body = reply.body if isinstance(reply.body, dict) else {}
        if reply.status == 409:
            logger.warning("409 duplicates for {} orders: looking them up", len(uuids))
            await self._lookup(uuids)
            return
        if reply.status not in (200, 400) or (reply.status == 400 and "declinedOrders" not in body):
            # The request itself was refused (422, 400, 401/403, 501): ABP created nothing.
            text = str(reply.body)[:300]
            for u in uuids:
                await self._set(u, OrderStatus.DECLINED, reason=f"HTTP {reply.status}: {text}")
            return
        accepted, declined = body.get("acceptedOrders"), body.get("declinedOrders")
        if not isinstance(accepted, list) or not isinstance(declined, list):
            await self._bad_input("place.response", reply.body, uuids, "acceptedOrders/declinedOrders missing")
            return
        answered: set[str] = set()
        for raw in accepted:
            answered.update(await self._apply_order(raw, "place.accepted"))
        for raw in declined:
            try:
                d = DeclinedOrder.model_validate(raw)
            except ValidationError as exc:
                await self._bad_input("place.declined", raw, uuids, str(exc))
                continue
            if d.request_uuid in uuids:
                answered.add(d.request_uuid)
                await self._set(d.request_uuid, OrderStatus.DECLINED, reason=d.decline_reason or "declined")
        missing = [u for u in uuids if u not in answered]
        if missing:  # R2: duplicates are skipped silently; or an item was unreadable
            await self._lookup(missing)

    # -- reconciliation -----------------------------------------------------------------------

    async def reconcile(self) -> None:
        """Resolve every non-final ledger order against the venue (REST), resending only orders
        the venue does not know that are still within their expiry and resend window."""
        async with self._reconcile_lock:
            rows = [r for r in self._ledger.open_orders() if r.request_uuid not in self._sending]
            await self._reconcile_rows(rows)

    async def _reconcile_rows(self, rows: list[OrderRow]) -> None:
        if not rows:
            return
        logger.info("reconciling {} orders", len(rows))
        found = await self._lookup([r.request_uuid for r in rows], resolve_missing=False)
        if found is None:
            return
        now = self._clock.now()
        window = timedelta(seconds=self._config.resend_window_seconds)
        resend = []
        for row in rows:
            if row.request_uuid in found:
                continue
            status = OrderStatus(row.status)
            if status not in (OrderStatus.INTENT, OrderStatus.SENT, OrderStatus.UNKNOWN):
                await self._set(row.request_uuid, OrderStatus.UNKNOWN, reason="venue no longer knows this order")
                continue
            created = row.created_at or now
            if (row.expires_at is None or now < row.expires_at) and now - created < window:
                resend.append(row)
            else:
                await self._set(row.request_uuid, OrderStatus.EXPIRED, reason="never reached the venue; expired")
        if resend:
            logger.warning("resending {} orders the venue does not know (same requestUuid)", len(resend))
            fresh = [self._ledger.get_order(r.request_uuid) or r for r in resend]
            for i in range(0, len(fresh), self._config.max_batch):
                await self._send(fresh[i : i + self._config.max_batch])

    async def _lookup(self, uuids: list[str], resolve_missing: bool = True) -> set[str] | None:
        """GET /orders by requestUuid and apply what comes back; returns the UUIDs the venue
        knows (None when it could not answer). Unknown ones go UNKNOWN if `resolve_missing`."""
        try:
            found_rows: list[Any] = []
            for i in range(0, len(uuids), 100):
                found_rows += await self._venue.find_orders(uuids[i : i + 100])
        except VenueUnavailable as exc:
            logger.warning("order lookup failed ({}); will retry", exc)
            for u in uuids:
                row = self._ledger.get_order(u)
                if row is not None and OrderStatus(row.status) is OrderStatus.SENT:
                    await self._set(u, OrderStatus.UNKNOWN, reason="lookup failed")
            return None
        # Known = named in the answer, readable or not: an unreadable order is not a missing one.
        found = {
            raw["requestUuid"]
            for raw in found_rows
            if isinstance(raw, dict) and isinstance(raw.get("requestUuid"), str)
        }
        if any(not isinstance(raw, dict) or not isinstance(raw.get("requestUuid"), str) for raw in found_rows):
            found.update(uuids)  # cannot tell which one it was: resend nothing this pass
        for raw in found_rows:
            await self._apply_order(raw, "orders.lookup")
        if resolve_missing:
            for u in uuids:
                if u not in found:
                    await self._set(u, OrderStatus.UNKNOWN, reason="not in the venue's answer")
            self._kick.set()
        return found

    async def _reconcile_loop(self) -> None:
        """Poll orders that are unresolved or still working; also on a stream gap/reconnect."""
        while not self._stopping:
            try:  # asyncio.timeout, not wait_for: wait_for can swallow a cancel on 3.11
                async with asyncio.timeout(self._config.reconcile_interval_seconds):
                    await self._kick.wait()
            except TimeoutError:
                pass
            full = self._kick.is_set()
            self._kick.clear()
            try:
                async with self._reconcile_lock:
                    now = self._clock.now()
                    rows = [
                        r for r in self._ledger.open_orders()
                        if r.request_uuid not in self._sending
                        and (full or OrderStatus(r.status) in _POLLED
                             or (r.expires_at is not None and r.expires_at > now))
                    ]
                    await self._reconcile_rows(rows)
            except Exception:  # noqa: BLE001 - the loop must survive anything a venue does
                logger.exception("reconcile pass failed")

    # -- cancellation ---------------------------------------------------------------------------

    async def cancel(self, request_uuids: Sequence[str]) -> int:
        """Cancel orders by requestUuid; returns how many the venue cancelled."""
        cancelled = await self._venue.cancel_orders(list(request_uuids))
        for raw in cancelled:
            await self._apply_order(raw, "cancel")
        return len(cancelled)

    async def cancel_all(self) -> int:
        """POST /cancel-all-orders; returns how many were cancelled (confirm via stream/REST)."""
        cancelled = await self._venue.cancel_all_orders()
        for raw in cancelled:
            await self._apply_order(raw, "cancel")
        self._kick.set()
        return len(cancelled)

    # -- applying venue data --------------------------------------------------------------------

    async def _on_message(self, msg: VenueMessage) -> None:
        try:
            if msg.channel == RESYNC:
                self._kick.set()
                return
            self._ledger.append_event(f"ws.{msg.channel}", {"event": msg.event, "payload": msg.payload})
            if msg.channel == "orders":
                await self._apply_order(msg.payload, "ws.orders")
            elif msg.channel in ("bets", "settlements"):
                await self._apply_bet(msg.payload, f"ws.{msg.channel}")
            elif msg.channel == "balance" and isinstance(msg.payload, dict):
                self._ledger.record_balance(
                    str(msg.payload.get("bookmaker", "")), Decimal(str(msg.payload.get("balance", 0))),
                    str(msg.payload.get("currency") or "USD"), str(msg.payload.get("username") or ""),
                )
            elif msg.channel == "emergency":
                logger.warning("venue emergency state: {}", msg.payload)
        except Exception as exc:  # noqa: BLE001 - bad input never stops the stream
            await self._bad_input(f"ws.{msg.channel}", msg.payload, [], repr(exc))

    async def _apply_order(self, raw: Any, source: str) -> list[str]:
        """Apply one enriched order (with or without bets); returns [its uuid] when it was
        readable and ours, [] otherwise."""
        try:
            order = AbpOrder.model_validate(raw)
        except ValidationError as exc:
            uuid_ = raw.get("requestUuid") if isinstance(raw, dict) else None
            await self._bad_input(source, raw, [uuid_] if isinstance(uuid_, str) else [], str(exc))
            return []
        row = self._ledger.get_order(order.request_uuid)
        if row is None:
            self._ledger.append_event("venue.foreign_order", {"source": source, "raw": raw})
            return []
        self._note_unknown_fields(source, order.unknown_fields, raw, order.request_uuid)
        filled = order.filled_stake if order.filled_stake is not None else row.filled_stake
        await self._set(order.request_uuid, order.order_status, filled=filled, order_id=order.order_id,
                        reason=order.status_reason)
        for bet in order.bets or []:
            await self._apply_bet(bet.model_dump(by_alias=True), source, parsed=bet, order_uuid=order.request_uuid)
        return [order.request_uuid]

    async def _apply_bet(self, raw: Any, source: str, parsed: AbpBet | None = None, order_uuid: str | None = None) -> None:
        try:
            bet = parsed or AbpBet.model_validate(raw)
        except ValidationError as exc:
            u = raw.get("requestUuid") if isinstance(raw, dict) else None
            await self._bad_input(source, raw, [u] if isinstance(u, str) else [], str(exc))
            return
        uuid_ = bet.request_uuid or order_uuid
        row = self._ledger.get_order(uuid_) if uuid_ else None
        if row is None and bet.order_id is not None:
            row = self._ledger.get_order_by_order_id(bet.order_id)
        if row is None:
            self._ledger.append_event("venue.foreign_bet", {"source": source, "raw": raw})
            return
        if parsed is None:
            self._note_unknown_fields(source, bet.unknown_fields, raw, row.request_uuid)
        if bet.placed_stake is None or bet.placed_price is None:
            await self._bad_input(source, raw, [row.request_uuid], "bet without placedStake/placedPrice")
            return
        now = self._clock.now()
        stored, previous = self._ledger.upsert_bet(BetRow(
            bet_id=bet.bet_id, order_id=bet.order_id or row.order_id, request_uuid=row.request_uuid,
            bookmaker=bet.bookmaker, placed_stake=bet.placed_stake, placed_price=bet.placed_price,
            placed_currency=bet.placed_currency or "USD", bet_status=bet.bet_status.value,
            settlement_status=bet.settlement_status.value, settlement_amount=bet.settlement_amount,
            placed_at=bet.placed_at, settled_at=bet.settled_at,
        ))
        if previous is None or previous.bet_status != stored.bet_status:
            await self._emit(Fill(bet.bet_id, row.request_uuid, bet.bookmaker, bet.placed_stake,
                                  bet.placed_price, bet.bet_status, bet.placed_at or now, stored.order_id))
        if bet.settlement_status is not SettlementStatus.UNSETTLED and bet.settlement_amount is not None:
            pnl = bet.settlement_amount - bet.placed_stake
            at = bet.settled_at or now
            if self._ledger.add_settlement(SettlementRow(
                bet_id=bet.bet_id, request_uuid=row.request_uuid, strategy=row.strategy,
                bookmaker=bet.bookmaker, sport=row.sport, status=bet.settlement_status.value,
                stake=bet.placed_stake, amount=bet.settlement_amount, pnl=pnl, at=at,
            )):
                await self._emit(Settlement(bet.bet_id, row.request_uuid, bet.settlement_status,
                                            bet.settlement_amount, pnl, at))

    async def _set(
        self,
        request_uuid: str,
        status: OrderStatus,
        *,
        filled: Decimal | None = None,
        order_id: int | None = None,
        reason: str | None = None,
    ) -> None:
        """Move an order forward (never backwards) and emit an OrderUpdate when it changed."""
        row = self._ledger.get_order(request_uuid)
        if row is None:
            return
        old = OrderStatus(row.status)
        if old.final and status is not old:
            if status is not OrderStatus.UNKNOWN:
                logger.warning("order {} is {} already; ignoring {}", request_uuid, old, status)
            return
        from_venue = status not in (OrderStatus.UNKNOWN, OrderStatus.SENT)
        if old is not OrderStatus.UNKNOWN and from_venue and _rank(status) < _rank(old):
            return  # a late message: keep the newer state
        new_filled = max(filled, row.filled_stake) if filled is not None else row.filled_stake
        changes: dict[str, Any] = {}
        if status is not old:
            changes["status"] = status.value
        if new_filled != row.filled_stake:
            changes["filled_stake"] = new_filled
        if order_id is not None and row.order_id is None:
            changes["order_id"] = order_id
        if not changes:
            return
        if reason is not None:
            changes["status_reason"] = reason[:500]
        self._ledger.update_order(request_uuid, **changes)
        if status is OrderStatus.SENT:
            return  # internal step, not news for the engine
        await self._emit(OrderUpdate(request_uuid, status, new_filled, self._clock.now(),
                                     order_id or row.order_id, reason))

    async def _bad_input(self, source: str, raw: Any, uuids: list[str], error: str) -> None:
        """Venue data we cannot act on: log (truncated), store raw, mark its orders UNKNOWN."""
        self.bad_input_count += 1
        logger.error("bad venue input from {} ({}): {:.300}", source, error[:300], repr(raw))
        self._ledger.append_event("venue.bad_input", {"source": source, "error": error[:2000], "raw": raw},
                                  uuids[0] if len(uuids) == 1 else None)
        for u in uuids:
            await self._set(u, OrderStatus.UNKNOWN, reason=f"unreadable venue data from {source}")
        self._kick.set()

    def _note_unknown_fields(self, source: str, fields: list[str], raw: Any, request_uuid: str) -> None:
        """Undocumented fields: logged and stored raw; the documented ones are still applied
        (ABP adds fields between revisions, docs/reference/abp.md §15)."""
        if fields:
            logger.warning("venue sent undocumented fields {} ({})", fields, source)
            self._ledger.append_event("venue.unknown_fields", {"source": source, "fields": fields, "raw": raw}, request_uuid)

    async def _emit(self, event: ExecutionEvent) -> None:
        try:
            await self._on_event(event)
        except Exception:  # noqa: BLE001 - a failing consumer must not lose the ledger's truth
            logger.exception("on_event failed for {}", event)

    def _begin(self) -> None:
        self._inflight += 1
        self._idle.clear()

    def _end(self) -> None:
        self._inflight -= 1
        if self._inflight == 0:
            self._idle.set()
