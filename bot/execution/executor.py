"""Executor: exactly-once placement, tracking and reconciliation (docs/architecture.md,
Invariants > Exactly-once placement; docs/reference/abp.md §8.4, §13.4, §14).

Rules (docs/architecture.md, "Live venue (ABP)"):
- every order row is committed with a fresh requestUuid (status INTENT) BEFORE the request leaves;
- no answer (timeout, connection error, 5xx) -> UNKNOWN, resolved with GET /orders?requestUuids=;
  no order is closed without the venue's word: one a lookup does not find is sent again (SAME
  requestUuid) only before its expiresAt and within `resend_window_seconds`, and closed EXPIRED
  only by a lookup made `unknown_grace_seconds` after its expiresAt; until then it stays UNKNOWN
  and is asked again (a slow venue may store it late);
- 409 (all duplicates), a "Duplicate requestUuid" decline (R1: already in flight) or a UUID missing
  from both answer lists -> look it up, never re-place under a new id (docs/reference/abp.md §8.4);
- a 429 was not processed: an order never sent before is closed EXPIRED when the wait would pass
  its expiresAt ("rate limited until expiry; never placed"), otherwise looked up and resent;
- one owner per order at a time: a placement owns its orders from the INTENT commit to the
  applied answer; the reconcile pass skips them and re-checks after its lookup; a final status is
  never revived;
- `start()` runs `recover()` before `submit()` lets anything new leave; `recover()` (also after
  every RESYNC and every `Venue.recovery` interval) looks up the orders not final and applies
  GET /bets of recent orders, so fills and settlements the stream missed reach the ledger;
- DELETE on `bets` / `orders` takes the bet out of exposure (a CANCELLED Fill, ledger event
  venue.bet_deleted); emergency frames and venue failures reach risk as `VenueAlert`s;
- venue data that does not parse (missing/wrong fields, unknown statuses) is logged and stored
  raw in the event log, and the order goes UNKNOWN until a clean answer resolves it.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from loguru import logger
from pydantic import ValidationError

from bot.clock import Clock
from bot.execution.commission import Commission
from bot.execution.config import ExecutionConfig
from bot.execution.currency import CurrencyRates, MissingRate
from bot.execution.errors import error_text
from bot.execution.models import AbpBet, AbpOrder, DeclinedOrder
from bot.execution.venue import (
    RESYNC,
    PlaceReply,
    Recovery,
    Venue,
    VenueAuthError,
    VenueMessage,
    VenueUnavailable,
)
from bot.latency import TickToOrder, frame_stamp
from bot.ledger.models import BetRow, OrderRow, SettlementRow, new_order_row
from bot.ledger.store import Ledger
from bot.market.odds import at_risk
from bot.types import (
    BetStatus,
    ExecutionEvent,
    Fill,
    OrderIntent,
    OrderStatus,
    OrderUpdate,
    Settlement,
    SettlementStatus,
    Side,
    VenueAlert,
    VenueAlertKind,
)

OnEvent = Callable[[ExecutionEvent], Awaitable[None]]

# Progress order of statuses: a late or replayed message never moves an order backwards.
_RANK = {
    OrderStatus.INTENT: 0, OrderStatus.SENT: 1, OrderStatus.UNKNOWN: 1, OrderStatus.PENDING: 2,
    OrderStatus.PROCESSING: 3, OrderStatus.PARTIALLY_FILLED: 4,
}
_FINAL_RANK = 5
_POLLED = {OrderStatus.INTENT, OrderStatus.SENT, OrderStatus.UNKNOWN, OrderStatus.PENDING, OrderStatus.PROCESSING}
_UNPLACED = frozenset({OrderStatus.INTENT, OrderStatus.SENT, OrderStatus.UNKNOWN})  # the venue has not answered
_IDS_PER_REQUEST = 100  # ids per GET /orders or GET /bets filter, as per POST /place-orders (abp.md §6.2)
_CENT = Decimal("0.01")
# Decline categories (docs/reference/abp.md §10, free text: matched loosely, raw text kept).
_DUPLICATE = "duplicate"
_BOOK_DOWN = "bookmaker not available"
_LIMIT = re.compile(r"exceeds available limit\s+(\d+(?:\.\d+)?)\s*([A-Za-z]{3})?", re.IGNORECASE)


def _rank(status: OrderStatus) -> int:
    return _FINAL_RANK if status.final else _RANK[status]


def _books(rows: Sequence[OrderRow]) -> tuple[str, ...]:
    """The target bookmakers of orders (ABP slugs; none = any book)."""
    return tuple(sorted({b for r in rows for b in r.bookmakers.split(",") if b and b != "*"}))


def _stake_limit(reason: str) -> tuple[str, str | None] | None:
    """(limit, currency) of a "Stake exceeds limit" decline ("... exceeds available limit 50.00
    USD", docs/reference/abp.md §10); None for any other text."""
    match = _LIMIT.search(reason)
    return None if match is None else (match.group(1), match.group(2))


def _emergency_flag(channel: str, payload: Any) -> tuple[bool | None, str]:
    """(active, reason) of an `emergency` frame {active, reason, ts} or a `status` frame with
    {"emergency": {active, reason}} or {"emergency": bool} (docs/reference/abp.md §13.2);
    active is None when the frame carries no flag."""
    if not isinstance(payload, dict):
        return None, ""
    flag: Any = payload if channel == "emergency" else payload.get("emergency")
    if isinstance(flag, dict):
        active, reason = flag.get("active"), flag.get("reason")
    else:
        active, reason = flag, payload.get("reason")
    return (active if isinstance(active, bool) else None), str(reason or "")


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
        *,
        rates: CurrencyRates | None = None,
        commission: Mapping[str, Decimal] | None = None,
    ) -> None:
        """`rates` converts bets into `config.currency` (shared with AbpUpkeep, which adds the
        rates of GET /accounts); the `currencies` channel updates it. `commission`: bookmaker ->
        rate of exchange commission on net market winnings, charged on settlements
        (bot/execution/commission.py; paper only)."""
        self._venue = venue
        self._commission = Commission(commission, ledger) if commission else None
        self._rates = rates or CurrencyRates(config.currency)
        self._ledger = ledger
        self._clock = clock
        self._config = config
        self._on_event = on_event
        self._ready = asyncio.Event()
        self._sending: set[str] = set()  # request_uuids a placement owns (INTENT commit .. answer applied)
        # The venue's REST recovery cadence and window; venues without one (in process) lose nothing.
        self._recovery: Recovery | None = venue.recovery
        self._recover_due = False  # a RESYNC asked for `recover()`
        self._emergency: bool | None = None  # last emergency state alerted (None: none seen yet)
        self._idle = asyncio.Event()
        self._idle.set()
        self._inflight = 0
        self._kick = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._reconcile_lock = asyncio.Lock()
        self._stopping = False
        self.bad_input_count = 0
        self.latency = TickToOrder()

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect the venue's updates, `recover()` (EVERY non-final ledger order looked up, and
        the bets of recent orders), then accept submissions and poll unresolved orders every
        `reconcile_interval_seconds`."""
        await self._venue.connect(self._on_message)
        self._recover_due = False  # the recovery below covers a RESYNC of the connect
        await self.recover()
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
        """Commit one INTENT row per intent in one durable commit, then place them together
        (<= max_batch per request: one request for a frame's orders).

        Returns the request_uuids in intent order. Orders that cannot leave (emergency active or
        unknown, an unmapped selection on a venue that needs ABP ids) are closed as DECLINED
        with a reason, without a request. The frame's tick-to-order latency is recorded in
        `latency` (bot/latency.py).
        """
        if not intents:
            return []
        frame_ns = frame_stamp()
        await self._ready.wait()
        self._begin()
        uuids: list[str] = []
        written: list[tuple[int, int]] = []
        try:
            with self._ledger.holding():  # the group commit waits until the requests are out
                now = self._clock.now()
                rows = [self._row(intent, now) for intent in intents]
                refused = self._ledger.add_orders(rows)  # committed (fsync'd) before anything leaves
                uuids = [r.request_uuid for r in rows]
                self._sending.update(uuids)  # owned from the commit: the reconcile pass keeps off
                for row in rows:  # stored DECLINED by the global limits of a shared ledger
                    if row.request_uuid in refused:
                        logger.warning("order {} not sent: {}", row.request_uuid, refused[row.request_uuid])
                        await self._emit(OrderUpdate(row.request_uuid, OrderStatus.DECLINED, Decimal(0),
                                                     self._clock.now(), None, refused[row.request_uuid]))
                sendable = await self._screen([r for r in rows if r.request_uuid not in refused])
                for i in range(0, len(sendable), self._config.max_batch):
                    batch = sendable[i : i + self._config.max_batch]
                    written.append((await self._send(batch, fresh=True), len(batch)))
            return uuids
        finally:
            self._sending.difference_update(uuids)
            self.latency.record(frame_ns, [w for w in written if w[0]])
            self._end()

    def _row(self, intent: OrderIntent, now: datetime) -> OrderRow:
        sig = intent.signal
        inst = intent.instrument
        ttl = intent.ttl if intent.ttl is not None else timedelta(seconds=self._config.expiry_seconds)
        expires = now + ttl  # on the venue's clock, as is created_at (docs/architecture.md, "Two clocks")
        return new_order_row(
            request_uuid=str(uuid.uuid4()),
            signal_id=sig.signal_id,
            strategy=sig.strategy,
            selection=sig.selection.key,
            sport=sig.selection.fixture.sport,
            fixture=str(sig.selection.fixture),
            bookmakers=",".join(sig.bookmakers if intent.bookmakers is None else intent.bookmakers),
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
            created_at=now,
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

    async def _send(self, rows: list[OrderRow], *, fresh: bool = False) -> int:
        """Place one batch of committed orders the caller owns; apply whatever comes back.
        Returns when the request was written (`PlaceReply.written_ns`, 0 unknown or not sent).

        `fresh`: the rows were just committed by `submit` and never left, so nothing can have
        answered them; they go out without a read and their SENT status is group-committed
        (the intent commit is the one durable write per order, bot/ledger/store.py). Otherwise
        an order a lookup or the stream answered meanwhile is not sent (a final status is never
        revived), nor a resend at or past its expiresAt (lookups decide those)."""
        if fresh:
            batch = [r.model_copy(update={"status": OrderStatus.SENT.value, "attempts": 1}) for r in rows]
            self._ledger.defer_order_update([r.request_uuid for r in batch], status=OrderStatus.SENT.value, attempts=1)
        else:
            batch = self._claim_resends(rows)
        if not batch:
            return 0
        uuids = [r.request_uuid for r in batch]
        bodies = [self.order_body(r) for r in batch]
        self._ledger.append_event("place.request", {"orders": bodies})
        try:
            reply = await self._venue.place_orders(bodies)
        except VenueUnavailable as exc:
            logger.warning("placement of {} orders got no answer ({}): UNKNOWN, reconciling", len(batch), exc)
            self._ledger.append_event("place.no_answer", {"error": str(exc), "requestUuids": uuids})
            await self._venue_failed(exc, _books(batch))
            await self._mark_unknown(uuids, f"no answer: {exc}"[:200])
            self._kick.set()
            return 0
        self._ledger.append_event("place.response", {"status": reply.status, "body": reply.body})
        await self._apply_reply(batch, reply)
        return reply.written_ns

    def _claim_resends(self, rows: list[OrderRow]) -> list[OrderRow]:
        """The rows still unanswered and before their expiry, marked SENT with one more attempt."""
        now = self._clock.now()
        batch: list[OrderRow] = []
        for row in rows:
            current = self._ledger.get_order(row.request_uuid)
            if current is None or OrderStatus(current.status) not in _UNPLACED:
                continue
            if current.attempts and now >= self._expiry(current):
                continue
            batch.append(self._ledger.update_order(
                current.request_uuid, status=OrderStatus.SENT.value, attempts=current.attempts + 1))
        return batch

    async def _apply_reply(self, rows: list[OrderRow], reply: PlaceReply) -> None:
        uuids = [r.request_uuid for r in rows]
        body = reply.body if isinstance(reply.body, dict) else {}
        if reply.status == 409:
            logger.warning("409 duplicates for {} orders: looking them up", len(uuids))
            await self._lookup(uuids)
            return
        if reply.status == 429:
            await self._rate_limited(uuids, reply.retry_after)
            return
        if reply.status not in (200, 400) or (reply.status == 400 and "declinedOrders" not in body):
            # The request itself was refused (422, 400, 401/403, 501): it created nothing, but an
            # earlier send of a resent order may have: lookups decide those.
            if reply.status in (401, 403):
                await self._emit(VenueAlert(VenueAlertKind.AUTH_FAILED, f"HTTP {reply.status}: "
                                            f"{error_text(reply.body)}"[:300], self._clock.now()))
            reason = f"HTTP {reply.status}: {str(reply.body)[:300]}"
            for row in rows:
                if row.attempts > 1:
                    await self._mark_unknown([row.request_uuid], f"resend refused ({reason})")
                else:
                    await self._set(row.request_uuid, OrderStatus.DECLINED, reason=reason)
            return
        accepted, declined = body.get("acceptedOrders"), body.get("declinedOrders")
        if not isinstance(accepted, list) or not isinstance(declined, list):
            await self._bad_input("place.response", reply.body, uuids, "acceptedOrders/declinedOrders missing")
            return
        answered: set[str] = set()
        for raw in accepted:
            answered.update(await self._apply_order(raw, "place.accepted"))
        ours = {r.request_uuid: r for r in rows}
        for raw in declined:
            try:
                d = DeclinedOrder.model_validate(raw)
            except ValidationError as exc:
                await self._bad_input("place.declined", raw, uuids, str(exc))
                continue
            order = ours.get(d.request_uuid)
            if order is None:
                continue
            why = d.decline_reason or "declined"
            if _DUPLICATE in why.lower():  # R1: "already in flight": the venue has it; look it up
                self._ledger.append_event("place.duplicate", {"reason": why}, d.request_uuid)
                continue
            answered.add(d.request_uuid)
            await self._declined(order, why)
        missing = [u for u in uuids if u not in answered]
        if missing:  # duplicates (R1 decline, R2 silent skip), or an item was unreadable
            await self._lookup(missing)

    async def _declined(self, row: OrderRow, reason: str) -> None:
        """Close a declined order; a bookmaker that is down reaches risk as a VenueAlert, a stake
        limit is recorded with its figure (ledger event venue.stake_limit)."""
        if _BOOK_DOWN in reason.lower():
            await self._emit(VenueAlert(VenueAlertKind.BOOKMAKER_UNAVAILABLE, reason, self._clock.now(),
                                        _books([row]), {"request_uuid": row.request_uuid}))
        limit = _stake_limit(reason)
        if limit is not None:
            self._ledger.append_event("venue.stake_limit", {
                "limit": limit[0], "currency": limit[1] or row.currency, "stake": row.stake, "reason": reason,
            }, row.request_uuid)
        await self._set(row.request_uuid, OrderStatus.DECLINED, reason=reason)

    async def _rate_limited(self, uuids: list[str], retry_after: float | None) -> None:
        """429: the request was not processed (docs/reference/abp.md §2). An order this was the
        only send of is closed EXPIRED when waiting would pass its expiresAt; the rest are
        looked up (an earlier send may have reached the venue) and resent before expiry."""
        now = self._clock.now()
        wait = timedelta(seconds=retry_after or 0)
        for u in uuids:
            row = self._ledger.get_order(u)
            if row is None:
                continue
            if row.attempts <= 1 and now + wait >= self._expiry(row):
                await self._set(u, OrderStatus.EXPIRED, reason="rate limited until expiry; never placed")
            else:
                await self._mark_unknown([u], "rate limited (HTTP 429): not placed by this request")
        self._kick.set()

    def _expiry(self, row: OrderRow) -> datetime:
        """When the venue stops trying the order: its expiresAt (ABP's default is 5 s after it
        arrives, docs/reference/abp.md §8.3)."""
        return row.expires_at or (row.created_at or self._clock.now()) + timedelta(seconds=self._config.expiry_seconds)

    # -- reconciliation -----------------------------------------------------------------------

    async def reconcile(self) -> None:
        """Resolve every non-final ledger order against the venue (REST): see the module
        docstring for what happens to an order the venue does not know."""
        async with self._reconcile_lock:
            rows = [r for r in self._ledger.open_orders() if r.request_uuid not in self._sending]
            await self._reconcile_rows(rows)

    async def recover(self) -> None:
        """REST recovery (docs/reference/abp.md §13.4 "Gaps", §14 item 5): `reconcile()`, then
        GET /bets for the orders whose bets may still change (`_recovery_order_ids`), at most
        100 orderIds per request, applied as stream bets are (idempotent: a bet already known
        changes nothing). Fills, voids and settlements sent while the stream was down so reach
        the ledger. A venue that cannot answer is asked again at the next recovery."""
        await self.reconcile()
        ids = self._recovery_order_ids()
        for i in range(0, len(ids), _IDS_PER_REQUEST):
            try:
                bets = await self._venue.find_bets(ids[i : i + _IDS_PER_REQUEST])
            except VenueUnavailable as exc:
                logger.warning("bet recovery failed ({}); retried at the next recovery", exc)
                await self._venue_failed(exc, ())
                return
            for raw in bets:
                await self._apply_bet(raw, "bets.recovery")
            await self._drop_vanished_bets(ids[i : i + _IDS_PER_REQUEST], bets)
        logger.debug("recovered the bets of {} orders", len(ids))

    async def _drop_vanished_bets(self, order_ids: list[int], answer: list[Any]) -> None:
        """A bet the ledger holds that GET /bets no longer lists for its order was deleted while
        its DELETE frame was lost (a gap, a silent stream, the bot down): removed as a DELETE is."""
        listed = {raw.get("betId") for raw in answer if isinstance(raw, dict)}
        for order_id in order_ids:
            row = self._ledger.get_order_by_order_id(order_id)
            if row is None:
                continue
            for bet in self._ledger.bets(row.request_uuid):
                if bet.bet_id not in listed and bet.bet_status != BetStatus.CANCELLED.value:
                    await self._remove_bet(row, bet.bet_id, {"source": "bets.recovery", "listed": False})

    def _recovery_order_ids(self) -> list[int]:
        """ABP ids of the orders created within `recovery.days` (all, for a venue without a
        recovery policy) whose bets may still change (`Ledger.recovery_order_ids`)."""
        since = None if self._recovery is None else self._clock.now() - timedelta(days=self._recovery.days)
        return self._ledger.recovery_order_ids(since)

    async def _reconcile_rows(self, rows: list[OrderRow]) -> None:
        if not rows:
            return
        logger.info("reconciling {} orders", len(rows))
        asked = self._clock.now()
        found = await self._lookup([r.request_uuid for r in rows], resolve_missing=False)
        if found is None:
            return
        resend = []
        for row in rows:
            if row.request_uuid in found or row.request_uuid in self._sending:
                continue  # answered, or a placement took it over during the lookup
            current = self._ledger.get_order(row.request_uuid)
            if current is not None and not OrderStatus(current.status).final and await self._not_found(current, asked):
                resend.append(current)
        if resend:
            await self._resend(resend)

    async def _not_found(self, row: OrderRow, asked: datetime) -> bool:
        """An order the lookup made at `asked` did not find. True: resend it (same requestUuid)
        while its expiresAt is ahead and within the resend window. Otherwise it is closed EXPIRED
        only when `asked` is `unknown_grace_seconds` past its expiresAt, else it stays UNKNOWN and
        is asked again: a venue still processing a slow request may store it late."""
        status = OrderStatus(row.status)
        if status not in _UNPLACED:
            await self._set(row.request_uuid, OrderStatus.UNKNOWN, reason="venue no longer knows this order")
            return False
        now, expiry = self._clock.now(), self._expiry(row)
        if now < expiry and now - (row.created_at or now) < timedelta(seconds=self._config.resend_window_seconds):
            return True
        grace = self._config.unknown_grace_seconds
        if asked >= expiry + timedelta(seconds=grace):
            await self._set(row.request_uuid, OrderStatus.EXPIRED,
                            reason=f"not at the venue {grace:g} s after expiresAt: never placed")
        else:
            await self._set(row.request_uuid, OrderStatus.UNKNOWN,
                            reason="not at the venue yet: asked again until expiresAt + grace")
        return False

    async def _resend(self, rows: list[OrderRow]) -> None:
        """Send again (same requestUuid) the orders no placement owns meanwhile."""
        claimed = [r for r in rows if r.request_uuid not in self._sending]
        uuids = {r.request_uuid for r in claimed}
        self._sending.update(uuids)
        try:
            logger.warning("resending {} orders the venue does not know (same requestUuid)", len(claimed))
            for i in range(0, len(claimed), self._config.max_batch):
                await self._send(claimed[i : i + self._config.max_batch])
        finally:
            self._sending.difference_update(uuids)

    async def _lookup(self, uuids: list[str], resolve_missing: bool = True) -> set[str] | None:
        """GET /orders by requestUuid and apply what comes back; returns the UUIDs the venue
        knows (None when it could not answer). Unknown ones go UNKNOWN if `resolve_missing`."""
        try:
            found_rows: list[Any] = []
            for i in range(0, len(uuids), _IDS_PER_REQUEST):
                found_rows += await self._venue.find_orders(uuids[i : i + _IDS_PER_REQUEST])
        except VenueUnavailable as exc:
            logger.warning("order lookup failed ({}); will retry", exc)
            await self._venue_failed(exc, ())
            await self._mark_unknown(uuids, "lookup failed")
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
            await self._mark_unknown([u for u in uuids if u not in found], "not in the venue's answer")
            self._kick.set()
        return found

    async def _mark_unknown(self, uuids: list[str], reason: str) -> None:
        """UNKNOWN for the orders still INTENT or SENT (a venue answer that came meanwhile stands)."""
        for u in uuids:
            row = self._ledger.get_order(u)
            if row is not None and OrderStatus(row.status) in (OrderStatus.INTENT, OrderStatus.SENT):
                await self._set(u, OrderStatus.UNKNOWN, reason=reason)

    async def _reconcile_loop(self) -> None:
        """Poll orders that are unresolved or still working every `reconcile_interval_seconds`
        (at once when kicked); run `recover()` after a RESYNC and every `recovery.interval_seconds`."""
        loop = asyncio.get_running_loop()
        interval = None if self._recovery is None else self._recovery.interval_seconds
        next_recovery = None if interval is None else loop.time() + interval
        while not self._stopping:
            wait = self._config.reconcile_interval_seconds
            if next_recovery is not None:
                wait = max(0.0, min(wait, next_recovery - loop.time()))
            try:  # asyncio.timeout, not wait_for: wait_for can swallow a cancel on 3.11
                async with asyncio.timeout(wait):
                    await self._kick.wait()
            except TimeoutError:
                pass
            full = self._kick.is_set()
            self._kick.clear()
            due = self._recover_due or (next_recovery is not None and loop.time() >= next_recovery)
            try:
                if due:
                    self._recover_due = False
                    next_recovery = None if interval is None else loop.time() + interval
                    await self.recover()
                else:
                    await self._poll(full)
            except Exception:  # noqa: BLE001 - the loop must survive anything a venue does
                logger.exception("reconcile pass failed")

    async def _poll(self, full: bool) -> None:
        """Look up the orders not final (only the unresolved or unexpired ones unless `full`)."""
        async with self._reconcile_lock:
            now = self._clock.now()
            rows = [
                r for r in self._ledger.open_orders()
                if r.request_uuid not in self._sending
                and (full or OrderStatus(r.status) in _POLLED or (r.expires_at is not None and r.expires_at > now))
            ]
            await self._reconcile_rows(rows)

    # -- cancellation ---------------------------------------------------------------------------

    async def cancel(self, request_uuids: Sequence[str]) -> int:
        """Cancel orders by requestUuid; returns how many the venue cancelled."""
        try:
            cancelled = await self._venue.cancel_orders(list(request_uuids))
        except VenueAuthError as exc:
            await self._venue_failed(exc, ())
            raise
        for raw in cancelled:
            await self._apply_order(raw, "cancel")
        return len(cancelled)

    async def cancel_all(self) -> int:
        """POST /cancel-all-orders; returns how many were cancelled (confirm via stream/REST)."""
        try:
            cancelled = await self._venue.cancel_all_orders()
        except VenueAuthError as exc:
            await self._venue_failed(exc, ())
            raise
        for raw in cancelled:
            await self._apply_order(raw, "cancel")
        self._kick.set()
        return len(cancelled)

    async def _venue_failed(self, exc: VenueUnavailable, books: tuple[str, ...]) -> None:
        """Breaker news for risk (docs/architecture.md "Live venue (ABP)", Breakers): a refused
        key is AUTH_FAILED (risk halts); any other failure UNAVAILABLE for the venue and `books`."""
        now = self._clock.now()
        if isinstance(exc, VenueAuthError):
            await self._emit(VenueAlert(VenueAlertKind.AUTH_FAILED, str(exc)[:300], now))
        else:
            await self._emit(VenueAlert(VenueAlertKind.UNAVAILABLE, str(exc)[:300], now, books))

    # -- applying venue data --------------------------------------------------------------------

    async def _on_message(self, msg: VenueMessage) -> None:
        try:
            if msg.channel == RESYNC:  # the stream lost messages: REST recovery (abp.md §13.4)
                self._recover_due = True
                self._kick.set()
                return
            self._ledger.append_event(f"ws.{msg.channel}", {"event": msg.event, "payload": msg.payload})
            if msg.event == "DELETE" and msg.channel == "orders":
                await self._delete_order(msg.payload)
            elif msg.event == "DELETE" and msg.channel == "bets":
                await self._delete_bet(msg.payload)
            elif msg.channel == "orders":
                await self._apply_order(msg.payload, "ws.orders")
            elif msg.channel in ("bets", "settlements"):
                await self._apply_bet(msg.payload, f"ws.{msg.channel}")
            elif msg.channel == "balance" and isinstance(msg.payload, dict):
                self._ledger.record_balance(
                    str(msg.payload.get("bookmaker", "")), Decimal(str(msg.payload.get("balance", 0))),
                    str(msg.payload.get("currency") or "USD"), str(msg.payload.get("username") or ""),
                )
            elif msg.channel in ("emergency", "status"):
                await self._emergency_news(msg.channel, msg.payload)
            elif msg.channel == "currencies":
                self._rates.update(msg.payload)
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
        row = self._order_of(bet, order_uuid)
        if row is None:
            self._ledger.append_event("venue.foreign_bet", {"source": source, "raw": raw})
            return
        if parsed is None:
            self._note_unknown_fields(source, bet.unknown_fields, raw, row.request_uuid)
        if bet.placed_stake is None or bet.placed_price is None:
            await self._bad_input(source, raw, [row.request_uuid], "bet without placedStake/placedPrice")
            return
        now = self._clock.now()
        currency = bet.placed_currency or "USD"  # account currency (docs/reference/abp.md §11)
        try:  # into the bot's one currency at the rate known now; the originals stay on the rows
            stake = self._rates.convert(bet.placed_stake, currency)
            amount = None if bet.settlement_amount is None else self._rates.convert(bet.settlement_amount, currency)
        except MissingRate as exc:  # fail closed: not applied; recovery re-applies it once the rate is known
            logger.error("bet {} at {} not applied: {}", bet.bet_id, bet.bookmaker, exc)
            self._ledger.append_event("venue.missing_rate", {"source": source, "currency": exc.currency, "raw": raw},
                                      row.request_uuid)
            await self._emit(VenueAlert(VenueAlertKind.MISSING_RATE, str(exc), now, (bet.bookmaker,), {
                "currency": exc.currency, "bet_id": bet.bet_id, "request_uuid": row.request_uuid}))
            return
        stored, previous = self._ledger.upsert_bet(BetRow(
            bet_id=bet.bet_id, order_id=bet.order_id or row.order_id, request_uuid=row.request_uuid,
            bookmaker=bet.bookmaker, placed_stake=stake, placed_price=bet.placed_price,
            placed_currency=self._rates.account_currency, bet_status=bet.bet_status.value,
            settlement_status=bet.settlement_status.value, settlement_amount=amount,
            venue_currency=currency, venue_stake=bet.placed_stake, venue_amount=bet.settlement_amount,
            placed_at=bet.placed_at, settled_at=bet.settled_at,
        ))
        if previous is None or previous.bet_status != stored.bet_status:
            await self._emit(Fill(bet.bet_id, row.request_uuid, bet.bookmaker, stake, bet.placed_price,
                                  bet.bet_status, bet.placed_at or now, stored.order_id, new_bet=previous is None))
        if bet.settlement_status is not SettlementStatus.UNSETTLED and amount is not None:
            # settlementAmount returns what the bet held: a back its stake, a lay its liability in
            # cents, as a venue holds it (bot/sim/paper.py `settlement_amount`; a lay's is inferred)
            held = at_risk(row.back, stake, bet.placed_price).quantize(_CENT, ROUND_HALF_EVEN)
            pnl = amount - held
            commission = Decimal(0) if self._commission is None else self._commission.charge(
                row, bet.bet_id, bet.bookmaker, pnl)
            pnl -= commission
            at = bet.settled_at or now
            if self._ledger.add_settlement(SettlementRow(
                bet_id=bet.bet_id, request_uuid=row.request_uuid, strategy=row.strategy,
                bookmaker=bet.bookmaker, sport=row.sport, status=bet.settlement_status.value,
                stake=stake, amount=amount, pnl=pnl, commission=commission, at=at,
                currency=self._rates.account_currency,
                venue_currency=currency, venue_stake=bet.placed_stake, venue_amount=bet.settlement_amount,
            )):
                await self._emit(Settlement(bet.bet_id, row.request_uuid, bet.settlement_status, amount, pnl, at))

    def _order_of(self, bet: AbpBet, order_uuid: str | None = None) -> OrderRow | None:
        """The ledger order of a bet: by requestUuid, else by ABP orderId."""
        uuid_ = bet.request_uuid or order_uuid
        row = self._ledger.get_order(uuid_) if uuid_ else None
        if row is None and bet.order_id is not None:
            row = self._ledger.get_order_by_order_id(bet.order_id)
        return row

    async def _delete_bet(self, raw: Any) -> None:
        """`bets` DELETE: the venue removed the bet (docs/reference/abp.md §13.3, "remove on
        DELETE"), so it leaves exposure."""
        try:
            bet = AbpBet.model_validate(raw)
        except ValidationError as exc:
            u = raw.get("requestUuid") if isinstance(raw, dict) else None
            await self._bad_input("ws.bets", raw, [u] if isinstance(u, str) else [], str(exc))
            return
        row = self._order_of(bet)
        if row is None:
            self._ledger.append_event("venue.foreign_bet", {"source": "ws.bets", "raw": raw})
            return
        await self._remove_bet(row, bet.bet_id, raw)

    async def _delete_order(self, raw: Any) -> None:
        """`orders` DELETE: its bets leave exposure and an order not final is closed CANCELLED."""
        try:
            order = AbpOrder.model_validate(raw)
        except ValidationError as exc:
            u = raw.get("requestUuid") if isinstance(raw, dict) else None
            await self._bad_input("ws.orders", raw, [u] if isinstance(u, str) else [], str(exc))
            return
        row = self._ledger.get_order(order.request_uuid)
        if row is None:
            self._ledger.append_event("venue.foreign_order", {"source": "ws.orders", "raw": raw})
            return
        self._ledger.append_event("venue.order_deleted", {"raw": raw}, row.request_uuid)
        for bet in self._ledger.bets(row.request_uuid):
            await self._remove_bet(row, bet.bet_id, raw)
        await self._set(row.request_uuid, OrderStatus.CANCELLED, reason="deleted by the venue")

    async def _remove_bet(self, row: OrderRow, bet_id: int, raw: Any) -> None:
        """Record a deleted bet (ledger event venue.bet_deleted, bet row CANCELLED) and emit a
        CANCELLED Fill, which takes it out of exposure (bot/risk/positions.py `apply_fill`)."""
        self._ledger.append_event("venue.bet_deleted", {"betId": bet_id, "raw": raw}, row.request_uuid)
        known = next((b for b in self._ledger.bets(row.request_uuid) if b.bet_id == bet_id), None)
        if known is None or known.bet_status == BetStatus.CANCELLED.value:
            return
        self._ledger.upsert_bet(BetRow.model_validate({**known.model_dump(exclude={"id"}),
                                                       "bet_status": BetStatus.CANCELLED.value}))
        await self._emit(Fill(bet_id, row.request_uuid, known.bookmaker, known.placed_stake, known.placed_price,
                              BetStatus.CANCELLED, self._clock.now(), known.order_id, new_bet=False))

    async def _emergency_news(self, channel: str, payload: Any) -> None:
        """An emergency flag on the `emergency` or `status` channel -> VenueAlert EMERGENCY_ON /
        EMERGENCY_OFF, once per change (a repeat of the last state is not news)."""
        active, reason = _emergency_flag(channel, payload)
        if active is None or active == self._emergency:
            return
        self._emergency = active
        logger.warning("venue emergency {} ({}): {}", "ON" if active else "OFF", channel, reason or "no reason given")
        kind = VenueAlertKind.EMERGENCY_ON if active else VenueAlertKind.EMERGENCY_OFF
        await self._emit(VenueAlert(kind, reason, self._clock.now(), details={"channel": channel}))

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
