"""Periodic ABP upkeep the engine schedules in live mode:

- balances: `GET /accounts` -> a balance row per account in the ledger, and the exchange rates of
  the accounts' `currencyInfo` (docs/reference/abp.md §6.6, §11);
- betslip keep-alive: every open order that targets named bookmakers keeps a betslip
  subscription alive (`subscribe_betslip`, docs/reference/abp.md §13.6), so the stream carries the
  live odds and limits of selections with pending intent. At most 20 subscriptions per client;
- cross-check: `GET /positions` and `GET /pnl` by bookmaker against the ledger (§6.8). ABP sums
  `placedStake` and `settlementAmount` per group without converting currencies, so each book is
  compared in the venue's own units: the ledger's `venue_stake` / `venue_amount` summed the same
  way (in the book's account currency when it has one). A difference above a cent is logged with
  both figures, stored as ledger event "venue.mismatch" and reported as a `VenueAlert` MISMATCH.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from loguru import logger

from bot.clock import Clock, WallClock
from bot.execution.currency import CurrencyRates
from bot.ledger.models import BetRow
from bot.ledger.store import Ledger
from bot.types import BetStatus, SettlementStatus, VenueAlert, VenueAlertKind

MAX_BETSLIP_SUBSCRIPTIONS = 20
BETSLIP_TTL_SECONDS = 120
CROSS_CHECK_EVERY = timedelta(minutes=15)
TOLERANCE = Decimal("0.01")  # a cent: rounding of the venue's float figures is not a mismatch
# What ABP's /positions and /pnl count (docs/reference/abp.md §6.8).
_COUNTED = (BetStatus.PLACED.value, BetStatus.CONFIRMED.value)
log = logger.bind(stage="upkeep")

OnAlert = Callable[[VenueAlert], Awaitable[None]]


class _Sums:
    """One bookmaker's ledger figure in the venue's units (summed as ABP sums them) and in the
    bot's currency, and the account currencies it sums."""

    def __init__(self) -> None:
        self.venue = Decimal(0)
        self.bot = Decimal(0)
        self.currencies: set[str] = set()

    def add(self, venue: Decimal, bot: Decimal, currency: str) -> None:
        self.venue += venue
        self.bot += bot
        self.currencies.add(currency)


class AbpUpkeep:
    """`jobs()` lists (name, interval, coroutine function) for `bot.engine.jobs.Jobs`.

    Args:
        rates: the executor's `CurrencyRates` (GET /accounts adds its rates); None keeps none.
        on_alert: called with each cross-check mismatch (the engine sends it as an alert).
    """

    def __init__(self, venue: Any, ledger: Ledger, *, rates: CurrencyRates | None = None,
                 on_alert: OnAlert | None = None, clock: Clock | None = None) -> None:
        self._venue = venue  # AbpVenue: .client (AbpClient), .stream (AbpStream | None)
        self._ledger = ledger
        self._rates = rates
        self._on_alert = on_alert
        self._clock = clock or WallClock()
        self._book_currencies: dict[str, set[str]] = defaultdict(set)  # from GET /accounts

    def jobs(self) -> list[tuple[str, timedelta, Any]]:
        return [
            ("balances_refresh", timedelta(minutes=5), self.refresh_balances),
            ("betslip_keepalive", timedelta(seconds=BETSLIP_TTL_SECONDS // 2), self.keep_betslips),
            ("cross_check", CROSS_CHECK_EVERY, self.cross_check),
        ]

    async def refresh_balances(self) -> None:
        accounts = await self._venue.client.list_accounts()
        if self._rates is not None:
            self._rates.update_from_accounts(accounts)
        for account in accounts:
            if account.currency_id:
                self._book_currencies[account.bookmaker].add(account.currency_id)
            if account.balance is None:
                continue
            self._ledger.record_balance(account.bookmaker, Decimal(account.balance),
                                        account.currency_id or "USD", account.username)

    async def keep_betslips(self) -> int:
        """Refresh the subscriptions; returns how many were sent."""
        stream = self._venue.stream
        if stream is None:
            return 0
        wanted: dict[tuple[str, int, int], set[str]] = {}
        for order in self._ledger.open_orders():
            books = {b for b in order.bookmakers.split(",") if b and b != "*"}
            if order.fixture_id is None or order.outcome_id is None or not books:
                continue
            wanted.setdefault((order.fixture_id, order.outcome_id, order.player_id), set()).update(books)
        if len(wanted) > MAX_BETSLIP_SUBSCRIPTIONS:
            log.warning("{} selections pending, betslip subscriptions capped at {}", len(wanted),
                        MAX_BETSLIP_SUBSCRIPTIONS)
        sent = 0
        for (fixture_id, outcome_id, player_id), books in list(wanted.items())[:MAX_BETSLIP_SUBSCRIPTIONS]:
            await stream.subscribe_betslip(fixture_id, outcome_id, player_id, sorted(books), ttl=BETSLIP_TTL_SECONDS)
            sent += 1
        return sent

    async def cross_check(self) -> list[dict[str, Any]]:
        """Compare open stake (GET /positions) and settled net PnL (GET /pnl) per bookmaker with
        the ledger; returns the mismatches (each also logged, stored and alerted)."""
        client = self._venue.client
        positions, pnl = await client.positions("bookmaker"), await client.pnl("bookmaker")
        bets = self._ledger.bets()  # read after the venue answered: bets it counted have arrived
        venue_open = _by_book(positions.positions, "total_stake", "/positions")
        venue_pnl = _by_book(pnl.pnl, "net_pnl", "/pnl")
        mismatches = [
            *_compare("open_stake", venue_open, _open_stakes(bets), self._book_currencies),
            *_compare("settled_pnl", venue_pnl, _settled_pnl(bets), self._book_currencies),
        ]
        for m in mismatches:
            await self._report(m)
        return mismatches

    async def _report(self, mismatch: dict[str, Any]) -> None:
        book, figure = mismatch["bookmaker"], mismatch["figure"]
        reason = (f"{figure} at {book}: venue {mismatch['venue']}, ledger {mismatch['ledger']} "
                  f"({mismatch['currency']})")
        log.warning("ledger and ABP disagree: {}", reason)
        self._ledger.append_event("venue.mismatch", mismatch)
        if self._on_alert is None:
            return
        try:
            await self._on_alert(VenueAlert(VenueAlertKind.MISMATCH, reason, self._clock.now(), (book,), mismatch))
        except Exception:  # a failing consumer must not stop the check
            log.exception("on_alert failed for {}", reason)


def _by_book(entries: Iterable[Any], figure: str, endpoint: str) -> dict[str, Decimal]:
    """The venue's figure per bookmaker (the group key is a field the models keep as extra)."""
    out: dict[str, Decimal] = {}
    for entry in entries:
        book = (entry.model_extra or {}).get("bookmaker")
        value = getattr(entry, figure)
        if not isinstance(book, str) or value is None:
            log.warning("{}: ignored an entry without bookmaker or {}: {!r:.200}", endpoint, figure, entry)
            continue
        out[book] = out.get(book, Decimal(0)) + value
    return out


def _open_stakes(bets: Iterable[BetRow]) -> dict[str, _Sums]:
    sums: dict[str, _Sums] = defaultdict(_Sums)
    for b in bets:
        if b.bet_status in _COUNTED and b.settlement_status == SettlementStatus.UNSETTLED.value:
            sums[b.bookmaker].add(_venue_stake(b), b.placed_stake, b.venue_currency or b.placed_currency)
    return sums


def _settled_pnl(bets: Iterable[BetRow]) -> dict[str, _Sums]:
    sums: dict[str, _Sums] = defaultdict(_Sums)
    for b in bets:
        if b.bet_status in _COUNTED and b.settlement_status != SettlementStatus.UNSETTLED.value:
            venue = b.venue_amount if b.venue_amount is not None else b.settlement_amount
            sums[b.bookmaker].add((venue or Decimal(0)) - _venue_stake(b),
                                  (b.settlement_amount or Decimal(0)) - b.placed_stake,
                                  b.venue_currency or b.placed_currency)
    return sums


def _venue_stake(bet: BetRow) -> Decimal:
    return bet.venue_stake if bet.venue_stake is not None else bet.placed_stake


def _compare(
    figure: str, venue: dict[str, Decimal], ledger: dict[str, _Sums], accounts: dict[str, set[str]]
) -> list[dict[str, Any]]:
    """Mismatches of one figure, per bookmaker, both sides in the venue's units. `currency` is
    the book's account currency (from its ledger bets, else its accounts): "EUR+USD" when the
    venue's figure sums several, "-" when unknown."""
    out = []
    for book in sorted(venue.keys() | ledger.keys()):
        ours = ledger.get(book, _Sums())
        theirs = venue.get(book, Decimal(0))
        if abs(theirs - ours.venue) > TOLERANCE:
            currencies = ours.currencies or accounts.get(book, set())
            out.append({"figure": figure, "bookmaker": book, "venue": str(theirs), "ledger": str(ours.venue),
                        "difference": str(theirs - ours.venue), "currency": "+".join(sorted(currencies)) or "-",
                        "ledger_in_bot_currency": str(ours.bot)})
    return out
