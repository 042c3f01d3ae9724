"""PaperVenue: an in-process venue that behaves like ABP (docs/reference/abp.md §6.2, §8, §9, §10,
cited as § below; revisions R1 and R2 as that file names them).

Deterministic: time comes from the engine Clock, prices from a `QuoteSource`, ids count up from 1.
What it follows:
- 1..100 orders per call; requestUuid dedup within `dedup_window_seconds`, answered per
  `place(duplicate_reply=...)`: "skip" (R2: skipped silently, 409 only when all are duplicates),
  "409" (R1 spec: any duplicate rejects the whole request with 409, nothing of it is stored) or
  "decline" (R1 Errors page: declined "Duplicate requestUuid"); declined UUIDs count as processed (§8.4, §15);
- `bookmakers`: the books the key can reach (None = any the quote source prices): an order naming
  none of them is declined "Bookmaker not available", named books outside them are ignored (§10, §12);
- account currencies (`book_currencies`, rates in `currencies` = units per USD, §11): a bet's
  placedStake and settlementAmount are in its book's account currency (`placedCurrency`); a book
  whose currency has no rate is not used, and an order left with no book is declined
  "Currency conversion failed";
- business declines as `declinedOrders[].declineReason` with ABP's texts (§10), emergency included;
- stake-limit cascade max = account.maxStake -> bookmaker.maxStake -> odds limit (here the paper
  default), min = account.minStake -> bookmaker.minStake -> default min -> 0 (§8.3); limits are
  consumed per (selection, bookmaker), so a book runs out;
- orderPrice is a floor (§8.1, R2): the first bet must be >= orderPrice; later bets may be below
  while the weighted average stays >= orderPrice. acceptBetterOdds=false places at orderPrice
  [inferred]; acceptPartialStake=false is all-or-nothing on one book (mode 1/3 simplified);
- exchange books (a quote with a ladder, `DepthSource`) fill from their levels' sizes: a back
  against the available-to-back levels at or above orderPrice, a lay (`back: false`) against the
  available-to-lay levels at or below it, the lay's ceiling [inferred], best first, a size taken
  staying taken until the book sends a new ladder, nothing below the limit (§8.2 exchange sweep);
  a lay where no book has a lay side is declined "Invalid odds" [inferred: ABP names no decline
  for a lay a sportsbook cannot take];
- best price first, each book exhausted before the next (mode 4); waits until `expiresAt`
  (default now + 5 s, cap 24 h) when no price clears the floor: EXPIRED if nothing was placed,
  else PARTIALLY_FILLED (§8.3);
- cancel: only PENDING / PARTIALLY_FILLED; bets stay; cancel-all leaves orders with bets in
  notCancelled (R1 rule, §8.5);
- settle(bet_id, status) computes settlementAmount: WON stake*price, LOST 0, VOID/PUSH stake,
  HALF_WON stake/2*price + stake/2, HALF_LOST stake/2 (§9); a lay's the same on its liability
  and the backer's stake (`settlement_amount`: WON liability + stake, LOST 0, VOID liability);
- delete_bet(bet_id) removes a bet from every view and emits a `bets` DELETE (§13.2).
Orders with fixtureId/outcomeId null are accepted (unmapped selections priced via meta.selection).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Protocol, runtime_checkable

from loguru import logger
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.clock import Clock
from bot.execution.config import PaperConfig
from bot.execution.venue import OnVenueMessage, PlaceReply, Recovery, VenueMessage
from bot.market.odds import at_risk
from bot.types import BetStatus, Ladder, OrderStatus, SettlementStatus

CENT = Decimal("0.01")
MAX_EXPIRY = timedelta(hours=24)
DEFAULT_EXPIRY = timedelta(seconds=5)
_DEEP = 1e12  # OrderPriceQuotes' ladder size: the local ABP server never runs out of depth


class QuoteSource(Protocol):
    """Prices the paper venue can fill at: ABP order body -> {bookmaker: decimal price}."""

    def quotes(self, order: dict) -> dict[str, float]: ...


@runtime_checkable
class DepthSource(Protocol):
    """A QuoteSource that also knows exchange depth: ABP order body -> {bookmaker: Ladder} for
    the books whose quote can be traded now and carries a ladder (exchanges). Without it, or
    without a ladder at a book, the venue takes no lays there."""

    def ladders(self, order: dict) -> dict[str, Ladder]: ...


@dataclass(frozen=True, slots=True)
class StakeLimits:
    """Stake limits in USD (the paper accounts' currency); None = fall through the cascade."""

    min_stake: Decimal | None = None
    max_stake: Decimal | None = None


class PlaceOrderIn(BaseModel):
    """PlaceOrderRequest (abp-openapi.json) as the venue validates it (422 on failure)."""

    model_config = ConfigDict(extra="ignore")
    requestUuid: str = Field(min_length=1)
    fixtureId: str | None = None
    futureId: str | None = None
    outcomeId: int | None = None
    playerId: int | None = 0
    orderPrice: Decimal = Field(gt=0)
    orderStake: Decimal = Field(gt=0)
    userRef: str = Field(min_length=1)
    testOrder: bool
    bookmakers: str | None = None
    orderCurrency: str = "USD"
    back: bool = True
    expiresAt: datetime | None = None
    acceptBetterOdds: bool = True
    acceptPartialStake: bool = True
    meta: dict[str, Any] | None = None


class PlaceOrdersIn(BaseModel):
    orders: list[PlaceOrderIn] = Field(min_length=1, max_length=100)


def settlement_amount(stake: Decimal, price: float, status: SettlementStatus, back: bool = True) -> Decimal:
    """What the bookmaker returns for a settled bet, what it held included (docs/reference/abp.md
    §9: `settlementAmount`), so that PnL = amount - what the bet put at risk (`at_risk`).

    With R the amount at risk and W the winnings: WON R + W, LOST 0, VOID / PUSH R, HALF_WON
    R + W/2, HALF_LOST R/2. A back risks its stake and wins stake x (price - 1): WON stake x price.
    A lay (`back` False, `stake` the backer's stake) risks its liability (price - 1) x stake and
    wins the backer's stake: WON (the selection lost) liability + stake, LOST 0, VOID liability.
    ABP does not document a lay's settlementAmount; this is inferred from its back semantics and
    an exchange's (the liability is what the exchange holds).

    Raises:
        ValueError: a status with no formula (UNSETTLED, CASHOUT).
    """
    risk = at_risk(back, stake, price).quantize(CENT, ROUND_HALF_EVEN)  # a lay's liability is held in cents
    win = stake * (Decimal(str(price)) - 1) if back else stake
    amounts = {
        SettlementStatus.WON: risk + win,
        SettlementStatus.LOST: Decimal(0),
        SettlementStatus.VOID: risk,
        SettlementStatus.PUSH: risk,
        SettlementStatus.HALF_WON: risk + win / 2,
        SettlementStatus.HALF_LOST: risk / 2,
    }
    if status not in amounts:
        raise ValueError(f"cannot compute a settlement amount for {status}")
    return amounts[status].quantize(CENT, ROUND_HALF_EVEN)


@dataclass
class _Bet:
    bet_id: int
    order: _Order
    bookmaker: str
    stake: Decimal  # USD: what limits and the order's filled stake count
    price: float
    placed_at: datetime
    status: BetStatus = BetStatus.CONFIRMED
    settlement: SettlementStatus = SettlementStatus.UNSETTLED
    amount: Decimal | None = None  # account currency
    settled_at: datetime | None = None
    updated_at: datetime | None = None
    currency: str = "USD"  # the book's account currency (placedCurrency)
    placed: Decimal | None = None  # placedStake in `currency`; None = `stake` (USD account)

    def __post_init__(self) -> None:
        if self.placed is None:
            self.placed = self.stake

    def row(self) -> dict[str, Any]:
        o = self.order
        return {
            "betId": self.bet_id, "orderId": o.order_id, "bookmaker": self.bookmaker,
            "bookmakerBetId": f"paper-{self.bet_id}", "betStatus": self.status.value,
            "settlementStatus": self.settlement.value, "placedStake": float(self.placed or 0),
            "placedPrice": self.price, "placedCurrency": self.currency, "account": account_name(self.bookmaker),
            "requestUuid": o.body.requestUuid, "userRef": o.body.userRef, "testBet": o.body.testOrder,
            "client": "paper", "clientName": "paper",
            "settlementAmount": None if self.amount is None else float(self.amount),
            "settlementReason": None, "settledAt": _iso(self.settled_at), "declineReason": None,
            "betRequestId": None, "oddsInfo": None, "meta": o.body.meta or {},
            "placedAt": _iso(self.placed_at), "createdAt": _iso(self.placed_at),
            "updatedAt": _iso(self.updated_at or self.placed_at),
        }


@dataclass
class _Order:
    order_id: int
    body: PlaceOrderIn
    fx: Decimal  # order currency units per USD
    created_at: datetime
    expires_at: datetime
    status: OrderStatus = OrderStatus.PENDING
    status_reason: str | None = None
    bets: list[_Bet] = field(default_factory=list)
    filled_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def filled(self) -> Decimal:
        """Filled stake in the order currency."""
        return sum((b.stake * self.fx for b in self.bets), Decimal(0)).quantize(CENT)

    @property
    def weighted(self) -> Decimal:
        return sum((b.stake * self.fx * Decimal(str(b.price)) for b in self.bets), Decimal(0))

    def row(self, with_bets: bool = True) -> dict[str, Any]:
        b = self.body
        filled = self.filled
        row: dict[str, Any] = {
            "orderId": self.order_id, "requestUuid": b.requestUuid, "client": "paper",
            "clientName": "paper", "fixtureId": b.fixtureId, "outcomeId": b.outcomeId,
            "playerId": b.playerId, "orderPrice": float(b.orderPrice), "orderStake": float(b.orderStake),
            "filledStake": float(filled), "remainingStake": float(max(b.orderStake - filled, Decimal(0))),
            "orderStatus": self.status.value, "statusReason": self.status_reason, "userRef": b.userRef,
            "testOrder": b.testOrder, "acceptBetterOdds": b.acceptBetterOdds,
            "acceptPartialStake": b.acceptPartialStake, "orderCurrency": b.orderCurrency, "back": b.back,
            "allowedBookmakers": b.bookmakers or "*", "oddsInfo": None, "meta": b.meta or {},
            "expiresAt": _iso(self.expires_at), "filledAt": _iso(self.filled_at),
            "createdAt": _iso(self.created_at), "updatedAt": _iso(self.updated_at or self.created_at),
        }
        if with_bets:
            row["bets"] = [bet.row() for bet in self.bets]
        return row


def account_name(bookmaker: str) -> str:
    """The username of the one account the simulated key holds at a bookmaker."""
    return f"{bookmaker}_main"


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


Listener = Callable[[VenueMessage], None]


_WORKING = (OrderStatus.PENDING, OrderStatus.PROCESSING, OrderStatus.PARTIALLY_FILLED)
_OPEN_BETS = frozenset({BetStatus.PENDING.value, BetStatus.PLACED.value, BetStatus.CONFIRMED.value})


def _open_bet(row: Any) -> bool:
    """A ledger bet that can still settle (bot/ledger/store.py OPEN_BET_STATUSES, UNSETTLED)."""
    return row.bet_status in _OPEN_BETS and row.settlement_status == SettlementStatus.UNSETTLED.value


class VenueHistory(Protocol):
    """What `PaperVenue.restore_open` reads (bot/ledger/store.py `Ledger`)."""

    def unfinished_orders(self) -> Sequence[Any]: ...

    def bets_of_orders(self, request_uuids: Collection[str]) -> Sequence[Any]: ...

    def last_venue_ids(self) -> tuple[int, int]: ...
_ABP_ORDER_STATUSES = {"PENDING", "PROCESSING", "FILLED", "PARTIALLY_FILLED", "CANCELLED", "REJECTED",
                       "EXPIRED", "FAILED"}


class PaperVenue:
    """In-process ABP. Implements the `Venue` protocol; the local ABP server exposes the same
    object over HTTP/WS (`place`, `orders`, `cancel`, `bets` give ABP bodies)."""

    name = "paper"
    accepts_unmapped = True
    recovery: Recovery | None = None  # in process: no message is ever lost

    def __init__(
        self,
        clock: Clock,
        quotes: QuoteSource,
        config: PaperConfig | None = None,
        *,
        bookmaker_limits: Mapping[str, StakeLimits] | None = None,
        accounts: Mapping[str, StakeLimits] | None = None,
        currencies: Mapping[str, Decimal] | None = None,
        conflict_shape: str = "r2",
        bookmakers: Sequence[str] | None = None,
        book_currencies: Mapping[str, str] | None = None,
    ) -> None:
        """`accounts`: bookmaker -> account limits; None = an account at every bookmaker.
        `currencies`: units per USD (docs/reference/abp.md §11) of every currency the venue can
        convert (order and account currencies). `conflict_shape`: the 409 body, "r2"
        ({"detail": {...}}), "r1" (top level) or "text" ({"detail": "Duplicate request - ..."}).
        `bookmakers`: the books offered to the key (None = any). `book_currencies`: account
        currency per book (default USD)."""
        self._clock = clock
        self._quotes = quotes
        self._config = config or PaperConfig()
        self._book_limits = dict(bookmaker_limits or {})
        self._accounts = None if accounts is None else dict(accounts)
        self._currencies = {k: Decimal(v) for k, v in (currencies or {"USD": Decimal(1)}).items()}
        self._currencies["USD"] = Decimal(1)
        self._conflict_shape = conflict_shape
        self._offered = None if bookmakers is None else tuple(bookmakers)
        self._book_currencies = dict(book_currencies or {})
        self._orders: dict[str, _Order] = {}
        self._working: dict[str, _Order] = {}  # orders advance() may still fill or expire
        self._by_id: dict[int, _Order] = {}
        self._bets: dict[int, _Bet] = {}
        self._processed: dict[str, datetime] = {}  # requestUuid -> first seen (incl. declined)
        self._used: dict[tuple[str, str], Decimal] = {}  # (selection, bookmaker) -> USD staked
        self._depth = quotes if isinstance(quotes, DepthSource) else None
        # (selection, bookmaker) -> the ladder last filled against and the size taken per (back, price)
        # (exchange currency): a later order finds that size gone until the book sends a new ladder
        self._taken: dict[tuple[str, str], tuple[Ladder, dict[tuple[bool, float], Decimal]]] = {}
        self._next_order = 1
        self._next_bet = 1
        self._listeners: list[Listener] = []
        self._outbox: list[VenueMessage] = []
        self._on_message: OnVenueMessage | None = None
        self._drain_task: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()  # one deliverer at a time keeps updates in order
        self.emergency: bool = False
        self.emergency_reason: str = ""

    # -- Venue protocol --------------------------------------------------------------------

    async def connect(self, on_message: OnVenueMessage) -> None:
        self._on_message = on_message
        self.listen(self._outbox.append)

    async def close(self) -> None:
        await self.flush()
        self._on_message = None

    async def place_orders(self, orders: Sequence[dict[str, Any]]) -> PlaceReply:
        status, body = self.place({"orders": list(orders)})
        await self.flush()
        return PlaceReply(status, body)

    async def find_orders(self, request_uuids: Sequence[str]) -> list[Any]:
        # Read-only (no advance()): polling must not change when orders fill, or a replay
        # would depend on wall-time polling. The engine calls advance() when its clock moves.
        await self.flush()
        return self.orders(request_uuids=request_uuids)

    async def find_bets(self, order_ids: Sequence[int]) -> list[Any]:
        await self.flush()  # read-only, like find_orders
        return self.bets(order_ids=order_ids)

    async def cancel_orders(self, request_uuids: Sequence[str]) -> list[Any]:
        result = self.cancel(request_uuids=request_uuids)
        await self.flush()
        return result["cancelled"]

    async def cancel_all_orders(self) -> list[Any]:
        result = self.cancel(all_orders=True)
        await self.flush()
        return result["cancelled"]

    async def emergency_active(self) -> bool | None:
        return self.emergency

    async def flush(self) -> None:
        """Deliver queued updates to the connected executor, in order."""
        async with self._flush_lock:
            while self._outbox and self._on_message is not None:
                await self._on_message(self._outbox.pop(0))

    # -- engine hooks ------------------------------------------------------------------------

    def listen(self, listener: Listener) -> None:
        """Receive every update as ABP would push it on the WS channels."""
        self._listeners.append(listener)

    def restore(self, orders: Iterable[Any], bets: Iterable[Any], *, last_ids: tuple[int, int] = (0, 0)) -> int:
        """Adopt a previous run's orders and bets (ledger `OrderRow` / `BetRow`) that can still
        change: orders whose status is not final and orders with an open bet (PENDING, PLACED or
        CONFIRMED, UNSETTLED), each with all its bets. Returns orders adopted.

        ABP keeps its state across our restarts; the in-process paper venue starts empty, so
        without this a restarted paper run could neither reconcile nor settle its earlier bets.
        Finished history (final orders whose bets are all closed) is not held: nothing asks the
        venue about it (the executor looks up non-final orders and the bets of orders with an
        open bet, bot/execution/executor.py), so the venue's memory and `advance()` stay
        proportional to what is open. Only orders still working enter `advance()`. Orders that
        never reached the venue (no orderId) are skipped. New ids start above every id fed and
        above `last_ids` (highest orderId, betId; `Ledger.last_venue_ids`), so a venue fed only
        the live rows (`restore_open`) never hands out an id of a finished order again.
        """
        by_order: dict[str, list[Any]] = {}
        top_order, top_bet = last_ids
        for b in bets:
            by_order.setdefault(b.request_uuid, []).append(b)
            top_bet = max(top_bet, b.bet_id)
        adopted = 0
        for row in orders:
            if row.order_id is None:
                continue
            top_order = max(top_order, row.order_id)
            own = by_order.get(row.request_uuid, ())
            if row.request_uuid in self._orders or (OrderStatus(row.status).final and not any(map(_open_bet, own))):
                continue
            self._adopt(row, own)
            adopted += 1
        self._next_order = max(self._next_order, top_order + 1)
        self._next_bet = max(self._next_bet, top_bet + 1)
        return adopted

    def restore_open(self, history: VenueHistory) -> int:
        """`restore` from a ledger reading only what can still change (`unfinished_orders`, their
        bets, `last_venue_ids`): start-up costs what is open, not the ledger's history."""
        orders = history.unfinished_orders()
        bets = history.bets_of_orders({o.request_uuid for o in orders})
        return self.restore(orders, bets, last_ids=history.last_venue_ids())

    def _adopt(self, row: Any, bets: Iterable[Any]) -> None:
        body = PlaceOrderIn(
            requestUuid=row.request_uuid, fixtureId=row.fixture_id, outcomeId=row.outcome_id,
            playerId=row.player_id, orderPrice=Decimal(str(row.order_price)), orderStake=row.stake,
            userRef=row.user_ref or row.strategy, testOrder=False, bookmakers=row.bookmakers or None,
            orderCurrency=row.currency, back=row.back,
            meta={"selection": row.selection, "signal_id": row.signal_id, "strategy": row.strategy},
        )
        status = OrderStatus(row.status)
        order = _Order(
            row.order_id, body, self._currencies.get(row.currency, Decimal(1)), row.created_at,
            row.expires_at or row.created_at,
            status=status if status.value in _ABP_ORDER_STATUSES else OrderStatus.PENDING,
            status_reason=row.status_reason, updated_at=row.updated_at,
        )
        self._orders[row.request_uuid] = self._by_id[row.order_id] = order
        if order.status in _WORKING:
            self._working[row.request_uuid] = order
        self._processed[row.request_uuid] = row.created_at
        for b in bets:
            if b.bet_id in self._bets:
                continue
            bet = _Bet(
                b.bet_id, order, b.bookmaker, b.placed_stake, b.placed_price, b.placed_at or order.created_at,
                status=BetStatus(b.bet_status), settlement=SettlementStatus(b.settlement_status),
                amount=b.settlement_amount, settled_at=b.settled_at, updated_at=b.updated_at,
            )
            order.bets.append(bet)
            self._bets[b.bet_id] = bet

    def set_emergency(self, active: bool, reason: str = "") -> None:
        """Emergency mode: while active every new order is declined (docs/reference/abp.md §8.3)."""
        self.emergency, self.emergency_reason = active, reason
        now = self._clock.now()
        self._emit("emergency", "STATUS", {"active": active, "reason": reason, "ts": int(now.timestamp() * 1000)})

    def settle(self, bet_id: int, status: SettlementStatus, amount: Decimal | None = None) -> None:
        """Settle a confirmed bet; `amount` is needed only for CASHOUT.

        Raises:
            KeyError: unknown bet. ValueError: bet not CONFIRMED, or CASHOUT without amount.
        """
        status = SettlementStatus(status)
        bet = self._bets[bet_id]
        if bet.status is not BetStatus.CONFIRMED:
            raise ValueError(f"bet {bet_id} is {bet.status}, only CONFIRMED bets settle")
        if status is SettlementStatus.CASHOUT:
            if amount is None:
                raise ValueError("CASHOUT needs the amount returned")
            bet.amount = amount
        else:
            bet.amount = settlement_amount(bet.placed or bet.stake, bet.price, status, bet.order.body.back)
        bet.settlement = status
        bet.settled_at = bet.updated_at = self._clock.now()
        self._emit("settlements", "SETTLED", bet.row())

    def delete_bet(self, bet_id: int) -> dict[str, Any]:
        """Remove a bet from every view (GET /bets, its order's bets, positions) and emit a `bets`
        DELETE with its last row (docs/reference/abp.md §13.2). Returns that row.

        Raises:
            KeyError: unknown bet.
        """
        bet = self._bets.pop(bet_id)
        bet.order.bets.remove(bet)
        row = bet.row()
        self._emit("bets", "DELETE", row)
        return row

    @property
    def offered(self) -> tuple[str, ...] | None:
        """The books the key can reach; None = any book the quote source prices."""
        return self._offered

    @property
    def rates(self) -> dict[str, Decimal]:
        """Units of each currency per 1 USD (docs/reference/abp.md §11)."""
        return dict(self._currencies)

    def set_rates(self, changes: Mapping[str, Decimal | float | None]) -> None:
        """Change rates (units per USD); None removes a rate (conversions to it then fail)."""
        for currency, value in changes.items():
            if currency == "USD":
                continue  # USD is the reference: always 1
            if value is None:
                self._currencies.pop(currency, None)
            else:
                self._currencies[currency] = Decimal(str(value))

    def book_currency(self, bookmaker: str) -> str:
        """The account currency at a bookmaker."""
        return self._book_currencies.get(bookmaker, "USD")

    def advance(self) -> None:
        """Retry open orders against current quotes and expire those past `expiresAt`. Call it
        when the clock moves (the local server does on a timer); every query also calls it."""
        now = self._clock.now()
        for uuid, order in list(self._working.items()):
            if order.status in _WORKING and order.expires_at > now and not order.body.testOrder:
                self._fill(order, now)
            self._expire(order, now)
            if order.status not in _WORKING or order.expires_at <= now:
                del self._working[uuid]  # it can change no more: advance() stays O(open orders)

    # -- ABP bodies (also served by the local ABP server) -----------------------------------------

    def place(self, request: Any, duplicate_reply: str = "skip") -> tuple[int, dict[str, Any]]:
        """POST /place-orders: (HTTP status, body) exactly as ABP answers (docs/reference/abp.md §6.2,
        §8.4). `duplicate_reply` picks the documented answer to a duplicate requestUuid: "skip" (R2),
        "409" (R1 spec: the whole request is rejected) or "decline" (R1 Errors page)."""
        try:
            parsed = PlaceOrdersIn.model_validate(request)
        except ValidationError as exc:
            return 422, {"detail": [
                {"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in exc.errors()
            ]}
        self.advance()
        now = self._clock.now()
        if duplicate_reply == "409":
            dups = self._duplicates(parsed.orders, now)
            if dups:
                every = len(dups) == len(parsed.orders)
                return 409, self._conflict_body(dups, self._in_progress(dups), every)
        accepted, declined, duplicates = [], [], []
        for body in parsed.orders:
            if self._duplicates([body], now):
                duplicates.append(body.requestUuid)
                if duplicate_reply == "decline":
                    declined.append(self._declined(body, "Duplicate requestUuid"))
                continue  # R2: silently skipped
            self._processed[body.requestUuid] = now
            reason = self._decline_reason(body)
            if reason is not None:
                declined.append(self._declined(body, reason))
                continue
            accepted.append(self._accept(body, now).row())
        if duplicates and not accepted and not declined:
            return 409, self._conflict_body(duplicates, self._in_progress(duplicates))
        status = "accepted" if not declined else ("partial-success" if accepted else "declined")
        body_out = {"status": status, "acceptedOrders": accepted, "declinedOrders": declined}
        return (400 if status == "declined" else 200), body_out

    def orders(
        self,
        *,
        request_uuids: Sequence[str] | None = None,
        order_ids: Sequence[int] | None = None,
        user_ref: str | None = None,
    ) -> list[dict[str, Any]]:
        """Matching orders (filters OR-combined), newest first, with bets."""
        uuids, ids = set(request_uuids or ()), set(order_ids or ())
        found = [
            o for o in self._orders.values()
            if o.body.requestUuid in uuids or o.order_id in ids or (user_ref and o.body.userRef == user_ref)
        ]
        return [o.row() for o in sorted(found, key=lambda o: -o.order_id)]

    def bets(
        self,
        *,
        bet_ids: Sequence[int] | None = None,
        order_ids: Sequence[int] | None = None,
        user_ref: str | None = None,
    ) -> list[dict[str, Any]]:
        """Matching bets (filters OR-combined), newest first."""
        bids, oids = set(bet_ids or ()), set(order_ids or ())
        found = [
            b for b in self._bets.values()
            if b.bet_id in bids or b.order.order_id in oids or (user_ref and b.order.body.userRef == user_ref)
        ]
        return [b.row() for b in sorted(found, key=lambda b: -b.bet_id)]

    def all_orders(self) -> list[dict[str, Any]]:
        return [o.row() for o in sorted(self._orders.values(), key=lambda o: o.order_id)]

    def all_bets(self) -> list[dict[str, Any]]:
        return [b.row() for b in sorted(self._bets.values(), key=lambda b: b.bet_id)]

    def cancel(
        self,
        *,
        request_uuids: Sequence[str] | None = None,
        order_ids: Sequence[int] | None = None,
        user_ref: str | None = None,
        all_orders: bool = False,
    ) -> dict[str, Any]:
        """POST /cancel-orders (filters OR) or /cancel-all-orders: CancelOrdersResponse body.
        The `matched` key (not sent by the server) is False when no filter matched (ABP 404)."""
        self.advance()
        now = self._clock.now()
        if all_orders:
            targets = [o for o in self._orders.values() if not o.status.final]
        else:
            uuids, ids = set(request_uuids or ()), set(order_ids or ())
            targets = [
                o for o in self._orders.values()
                if o.body.requestUuid in uuids or o.order_id in ids or (user_ref and o.body.userRef == user_ref)
            ]
        cancelled, refused = [], []
        for o in sorted(targets, key=lambda o: o.order_id):
            cancellable = o.status in (OrderStatus.PENDING, OrderStatus.PARTIALLY_FILLED)
            if cancellable and not (all_orders and o.bets):
                o.status, o.expires_at, o.updated_at = OrderStatus.CANCELLED, now, now
                self._emit("orders", "UPDATE", o.row(with_bets=False))
                cancelled.append(o.row())
            else:
                refused.append(o.row())
        return {
            "status": "cancelled", "cancelledCount": len(cancelled), "cancelled": cancelled,
            "notCancelled": {"reason": "Order not cancellable", "orders": refused},
            "matched": bool(targets) or all_orders,
        }

    # -- placement internals -------------------------------------------------------------------

    def _duplicates(self, orders: Sequence[PlaceOrderIn], now: datetime) -> list[str]:
        """requestUuids already processed within the dedup window, or repeated in `orders`."""
        window = timedelta(seconds=self._config.dedup_window_seconds)
        seen: set[str] = set()
        found = []
        for body in orders:
            first = self._processed.get(body.requestUuid)
            if body.requestUuid in seen or (first is not None and now - first < window):
                found.append(body.requestUuid)
            seen.add(body.requestUuid)
        return found

    def _in_progress(self, uuids: Sequence[str]) -> list[str]:
        return [u for u in uuids if (o := self._orders.get(u)) is not None and not o.status.final]

    @staticmethod
    def _declined(body: PlaceOrderIn, reason: str) -> dict[str, Any]:
        return {**body.model_dump(mode="json", exclude_none=True), "declineReason": reason}

    def _conflict_body(self, duplicates: list[str], in_progress: list[str], every: bool = True) -> dict[str, Any]:
        error = "All orders are duplicates" if every else "Duplicate requestUuid"
        inner = {"error": error, "duplicateUuids": duplicates, "inProgressUuids": in_progress}
        if self._conflict_shape == "r1":
            return inner
        if self._conflict_shape == "text":
            return {"detail": "Duplicate request - requestUuid already in-flight"}
        return {"detail": inner}

    def _selection(self, body: PlaceOrderIn) -> str:
        sel = (body.meta or {}).get("selection")
        return str(sel) if sel else f"{body.fixtureId}:{body.outcomeId}:{body.playerId}"

    @staticmethod
    def _named(body: PlaceOrderIn) -> list[str] | None:
        """The books an order names; None = any ("*" or absent)."""
        if body.bookmakers is None or body.bookmakers.strip() in ("", "*"):
            return None
        return [b.strip() for b in body.bookmakers.split(",") if b.strip()]

    def _targets(self, body: PlaceOrderIn) -> list[str] | None:
        """The books an order may use: those it names that the key can reach (None = any)."""
        named = self._named(body)
        if self._offered is None:
            return named
        return list(self._offered) if named is None else [b for b in named if b in self._offered]

    def _limits(self, bookmaker: str) -> tuple[Decimal, Decimal]:
        """(min, max) stake in USD by the cascade account -> bookmaker -> odds/default
        (docs/reference/abp.md §8.3)."""
        acc = (self._accounts or {}).get(bookmaker, StakeLimits())
        book = self._book_limits.get(bookmaker, StakeLimits())
        default_max = Decimal(str(self._config.default_max_stake))
        default_min = Decimal(str(self._config.default_min_stake))
        hi = next(v for v in (acc.max_stake, book.max_stake, default_max) if v is not None)
        lo = next(v for v in (acc.min_stake, book.min_stake, default_min, Decimal(0)) if v is not None)
        return lo, hi

    def _ladders(self, body: PlaceOrderIn) -> dict[str, Ladder]:
        return {} if self._depth is None else self._depth.ladders(body.model_dump(mode="json"))

    def _prices(self, body: PlaceOrderIn) -> dict[str, float]:
        """The price each book offers the order's side: a back's price, a lay's best lay price
        (the lowest available-to-lay level of its ladder); a book without one is left out."""
        if body.back:
            return self._quotes.quotes(body.model_dump(mode="json"))
        return {b: ladder.lay[0][0] for b, ladder in self._ladders(body).items() if ladder.lay}

    def _priced(self, body: PlaceOrderIn) -> dict[str, float]:
        """Usable prices at targeted bookmakers where we hold an account."""
        prices = self._prices(body)
        targets = self._targets(body)
        return {
            b: p for b, p in prices.items()
            if p is not None and p > 1.0 and (targets is None or b in targets)
            and (self._accounts is None or b in self._accounts)
        }

    def _offers(self, body: PlaceOrderIn) -> dict[str, float]:
        """Priced books whose account currency converts (docs/reference/abp.md §11: no guessing)."""
        return {b: p for b, p in self._priced(body).items() if self.book_currency(b) in self._currencies}

    def _decline_reason(self, body: PlaceOrderIn) -> str | None:
        """ABP decline texts (docs/reference/abp.md §10); None when the order is accepted."""
        cur = body.orderCurrency
        if self.emergency:
            return f"Emergency mode active: {self.emergency_reason or 'new orders are paused'}"
        if body.futureId is not None:
            return "Futures order placement is not yet implemented"
        fx = self._currencies.get(cur)
        if fx is None:
            return f"Currency conversion failed: no rate for {cur}"
        targets = self._targets(body)
        if targets == []:
            return f"Bookmaker not available: {body.bookmakers or '*'} not available for this key"
        if self._accounts is not None and not [b for b in (targets or self._accounts) if b in self._accounts]:
            return "No active accounts for this market"
        prices = self._prices(body)
        if not body.back and not [b for b in (targets or prices) if prices.get(b) is not None]:
            # ABP names no decline for a lay a book cannot take; "Invalid odds" (the price is not
            # available) is the documented category that fits (docs/reference/abp.md §10; inferred)
            return f"Invalid odds: no lay price at {body.bookmakers or 'any bookmaker'} (a lay needs an exchange)"
        named = targets if self._named(body) is not None else None
        if named is not None:
            missing = [b for b in named if prices.get(b) is None]
            if len(missing) == len(named):
                return f"Bookmaker not available: {','.join(missing)} has no odds for this selection"
        offers = self._offers(body)
        if not offers:
            unconvertible = sorted({self.book_currency(b) for b in self._priced(body)})
            if unconvertible:
                return f"Currency conversion failed: no rate for account currency {','.join(unconvertible)}"
            return "Invalid odds: price not available or market suspended"
        stake_usd = body.orderStake / fx
        limits = {b: self._limits(b) for b in offers}
        lo = min(lim[0] for lim in limits.values())
        if stake_usd < lo:
            return f"Order stake {body.orderStake:.2f} {cur} is below minimum stake {lo * fx:.2f} {cur}"
        if not body.acceptPartialStake:
            hi = max(lim[1] - self._used.get((self._selection(body), b), Decimal(0)) for b, lim in limits.items())
            if stake_usd > hi:
                available = max(hi, Decimal(0)) * fx
                return f"Order stake {body.orderStake:.2f} {cur} exceeds available limit {available:.2f} {cur}"
        return None

    def _accept(self, body: PlaceOrderIn, now: datetime) -> _Order:
        expires = body.expiresAt or now + DEFAULT_EXPIRY
        expires = min(expires, now + MAX_EXPIRY)
        order = _Order(self._next_order, body, self._currencies[body.orderCurrency], now, expires)
        self._next_order += 1
        self._orders[body.requestUuid] = order
        self._working[body.requestUuid] = order
        self._by_id[order.order_id] = order
        self._emit("orders", "INSERT", order.row(with_bets=False))
        if not body.testOrder:
            self._fill(order, now)
        return order

    def _fill(self, order: _Order, now: datetime) -> None:
        """Place bets for the order's remaining stake, best price first (docs/reference/abp.md §8.1-8.2).

        A book whose quote carries a ladder with levels on the order's side (an exchange) is
        swept level by level: a back against the available-to-back levels at or above
        orderPrice, highest first; a lay against the available-to-lay levels at or below it,
        lowest first (orderPrice is a lay's ceiling: inferred, "this price or better" and lower
        is better for a layer). Each level fills up to its size (the backer's stake, in the book's
        currency) less what earlier orders took from that same ladder, with no averaging below
        the limit (§8.2 exchange sweep). A book without one (a sportsbook) takes backs only, up
        to its stake limit, later bets below the floor while the average stays at or above it
        (§8.1, R2). acceptPartialStake=false is one bet for the whole stake (modes 1 and 3)."""
        body = order.body
        limit = body.orderPrice
        sel = self._selection(body)
        remaining = body.orderStake - order.filled
        ladders = self._ladders(body)

        def better(p: Decimal) -> bool:  # strictly better for the bettor than the limit
            return p > limit if body.back else p < limit

        candidates: list[tuple[float, str, float | None]] = []  # (price, book, level size or None)
        for book, price in self._offers(body).items():
            ladder = ladders.get(book)
            levels = () if ladder is None else ladder.back if body.back else ladder.lay
            if levels:
                candidates += [(lp, book, size) for lp, size in levels if better(Decimal(str(lp))) or
                               Decimal(str(lp)) == limit]
            elif body.back:
                candidates.append((price, book, None))
        candidates.sort(key=lambda c: (-c[0] if body.back else c[0], c[1]))
        placed = False
        for price, book, size in candidates:
            if remaining <= 0:
                break
            p = Decimal(str(price))
            lo, hi = self._limits(book)
            room = (hi - self._used.get((sel, book), Decimal(0))) * order.fx
            if size is not None:  # an exchange level: what is left of it, in the order currency
                rate = self._currencies[self.book_currency(book)]
                cap = self._free(sel, book, ladders[book], body.back, price, size) / rate * order.fx
            elif p >= limit:
                cap = remaining
            elif order.bets and body.acceptPartialStake:  # below the floor: keep the average >= floor
                cap = ((order.weighted - limit * order.filled) / (limit - p)).quantize(CENT, rounding="ROUND_DOWN")
            else:
                continue
            stake = min(remaining, room, cap).quantize(CENT, rounding="ROUND_DOWN")
            if not body.acceptPartialStake and stake < remaining:
                continue  # all-or-nothing at one book
            if stake <= 0 or stake / order.fx < lo:
                continue
            fill_price = price if (body.acceptBetterOdds or not better(p)) else float(limit)
            bet = self._place_bet(order, sel, book, stake, fill_price, now)
            if size is not None:
                taken = self._taken[(sel, book)][1]
                taken[(body.back, price)] = taken.get((body.back, price), Decimal(0)) + (bet.placed or bet.stake)
            remaining -= stake
            placed = True
        if placed:
            self._filled(order, remaining, now)

    def _free(self, sel: str, book: str, ladder: Ladder, back: bool, price: float, size: float) -> Decimal:
        """Size left at a level of `ladder` (book currency); a new ladder starts afresh."""
        held = self._taken.get((sel, book))
        if held is None or held[0] is not ladder:
            held = self._taken[(sel, book)] = (ladder, {})
        return max(Decimal(str(size)) - held[1].get((back, price), Decimal(0)), Decimal(0))

    def _place_bet(self, order: _Order, sel: str, book: str, stake: Decimal, price: float, now: datetime) -> _Bet:
        """One bet of `stake` (order currency) at `book`, counted against its stake limit."""
        currency = self.book_currency(book)
        native = (stake / order.fx * self._currencies[currency]).quantize(CENT)
        bet = _Bet(self._next_bet, order, book, (stake / order.fx).quantize(CENT), price, now,
                   currency=currency, placed=native)
        self._next_bet += 1
        self._bets[bet.bet_id] = bet
        order.bets.append(bet)
        self._used[(sel, book)] = self._used.get((sel, book), Decimal(0)) + bet.stake
        self._emit("bets", "INSERT", bet.row())
        return bet

    def _filled(self, order: _Order, remaining: Decimal, now: datetime) -> None:
        """A pass placed bets: FILLED, or PARTIALLY_FILLED with the rest working (§8.3)."""
        order.updated_at = now
        order.filled_at = now
        order.status = OrderStatus.FILLED if remaining <= 0 else OrderStatus.PARTIALLY_FILLED
        self._emit("orders", "UPDATE", order.row(with_bets=False))

    def _expire(self, order: _Order, now: datetime) -> None:
        if order.status not in (OrderStatus.PENDING, OrderStatus.PROCESSING) or order.expires_at > now:
            return
        order.status = OrderStatus.EXPIRED
        order.status_reason = "expiresAt reached with nothing placed"
        order.updated_at = now
        self._emit("orders", "UPDATE", order.row(with_bets=False))

    def _emit(self, channel: str, event: str, payload: dict[str, Any]) -> None:
        msg = VenueMessage(channel, event, payload)
        for listener in self._listeners:
            try:
                listener(msg)
            except Exception:  # noqa: BLE001 - a broken listener must not break the venue
                logger.exception("paper venue listener failed on {} {}", channel, event)
        if self._on_message is not None and self._outbox and self._drain_task is None:
            self._schedule_drain()

    def _schedule_drain(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: the next flush() delivers

        async def drain() -> None:
            try:
                await self.flush()
            finally:
                self._drain_task = None

        self._drain_task = loop.create_task(drain())


class OrderPriceQuotes:
    """QuoteSource (and DepthSource) of the local ABP server: every targeted bookmaker (or
    `bookmakers`) offers exactly the order's orderPrice, to back and to lay, so a replay over HTTP
    fills as paper mode does."""

    def __init__(self, bookmakers: Sequence[str] = ("paper",)) -> None:
        self._bookmakers = tuple(bookmakers)

    def quotes(self, order: dict) -> dict[str, float]:
        raw = order.get("bookmakers")
        books = [b.strip() for b in raw.split(",") if b.strip() and b.strip() != "*"] if raw else []
        return {b: float(order["orderPrice"]) for b in (books or self._bookmakers)}

    def ladders(self, order: dict) -> dict[str, Ladder]:
        """Each book lays at exactly orderPrice too, with depth no order exhausts."""
        price = float(order["orderPrice"])
        return {b: Ladder(back=((price, _DEEP),), lay=((price, _DEEP),)) for b in self.quotes(order)}
