"""The messages that pass between pipeline stages (docs/architecture.md, Pipeline).

feeds --OddsUpdate / OddsBatch--> market.OddsBook --> strategies --Signal--> risk --OrderIntent--> execution
execution --OrderUpdate / Fill / Settlement--> ledger, risk, strategies

Units: `price` is decimal odds (> 1.0, float on the hot path); `american` is American odds;
stakes and money are `Decimal` in the order currency; every datetime is timezone-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final


class Side(StrEnum):
    """Back (bet for the outcome) or lay (bet against it, as on an exchange)."""

    BACK = "back"
    LAY = "lay"


@dataclass(frozen=True, slots=True)
class FixtureKey:
    """Identity of one game across feeds and bookmakers.

    `sport` is the league label as the feed names it ("NFL", "EPL"); `home` / `away` are the
    feed's team (or player) names; `start_time` is the scheduled kickoff in UTC.
    """

    sport: str
    home: str
    away: str
    start_time: datetime
    # str(self), made on first use: risk, the ledger and the bus ask for it many times per signal
    _text: str = field(default="", init=False, repr=False, compare=False)

    def __str__(self) -> str:
        if not self._text:
            object.__setattr__(self, "_text", f"{self.sport}|{self.home} vs {self.away}|{self.start_time:%Y-%m-%dT%H:%MZ}")
        return self._text

    @classmethod
    def parse(cls, text: str) -> FixtureKey:
        """Inverse of `str()`. Raises ValueError on a malformed key."""
        sport, teams, start = text.split("|")
        home, away = teams.split(" vs ", 1)
        return cls(sport, home, away, datetime.strptime(start, "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC))


@dataclass(frozen=True, slots=True)
class MarketKey:
    """One market of a fixture: every outcome under one key forms a complete probability space.

    `type`: "moneyline", "spread", "total", "team_total", or a feed's own name for props.
    `period`: "game" (incl. overtime where the market does), "1h", "2h", "1q".."4q", "reg" ...
    `line`: the handicap or total; for spreads it is the HOME side's handicap (as OddsPapi
    states a handicap from participant 1's side), so both sides of one spread share a key.
    """

    type: str
    period: str = "game"
    line: Decimal | None = None

    def __str__(self) -> str:
        line = "" if self.line is None else f"@{self.line}"
        return f"{self.type}/{self.period}{line}"

    @classmethod
    def parse(cls, text: str) -> MarketKey:
        """Inverse of `str()`. Raises ValueError on a malformed key."""
        head, _, line = text.partition("@")
        type_, period = head.split("/", 1)
        return cls(type_, period, Decimal(line) if line else None)


@dataclass(frozen=True, slots=True)
class Selection:
    """What a bet is on: fixture, market and outcome (bookmaker-independent).

    `outcome` is normalised: "home", "away", "draw", "over", "under", or for props the target
    name with an optional " over" / " under" suffix.
    """

    fixture: FixtureKey
    market: MarketKey
    outcome: str
    _key: str = field(default="", init=False, repr=False, compare=False)  # `key`, made on first use

    @property
    def key(self) -> str:
        """Stable text key, used in the ledger, the mapping file and MQTT payloads."""
        if not self._key:
            object.__setattr__(self, "_key", f"{self.fixture}|{self.market}|{self.outcome}")
        return self._key

    @classmethod
    def parse(cls, key: str) -> Selection:
        """Inverse of `key`. Raises ValueError on a malformed key."""
        sport, teams, start, market, outcome = key.split("|")
        return cls(FixtureKey.parse(f"{sport}|{teams}|{start}"), MarketKey.parse(market), outcome)

    def __str__(self) -> str:
        return self.key


@dataclass(frozen=True, slots=True)
class Ladder:
    """An exchange's depth for one selection (Betfair Exchange Stream API, "Market Change
    Message": `atb` / `atl`, `ltp`, `tv`), to the feed's configured depth.

    `back`: the available-to-back levels (decimal price, size), best (highest price) first: a back
    order matches them. `lay`: the available-to-lay levels, best (lowest price) first: a lay
    order matches them. Sizes are the backer's stake in the exchange's currency, as the exchange
    states them. `last_traded` the last traded price, `traded_volume` the selection's matched
    total (exchange currency), None when the feed does not say.
    """

    back: tuple[tuple[float, float], ...] = ()
    lay: tuple[tuple[float, float], ...] = ()
    last_traded: float | None = None
    traded_volume: float | None = None

    @property
    def best_back(self) -> tuple[float, float] | None:
        """(price, size) of the best back level, None when nothing is offered."""
        return self.back[0] if self.back else None

    @property
    def best_lay(self) -> tuple[float, float] | None:
        """(price, size) of the best lay level, None when nothing is offered."""
        return self.lay[0] if self.lay else None


@dataclass(slots=True)
class OddsUpdate:
    """One bookmaker's price for one selection at one moment.

    `price` is decimal odds, None when `suspended` (and on an exchange when nothing is offered to
    back: a quote with a lay alone is not suspended). `feed_time` is the feed's own timestamp,
    `received_at` the engine clock at receipt (UTC). `feed_ids` carries the feed's ids for the
    fixture (e.g. {"oddsapi_event_id": "...", "universal_game_id": "..."}). `instrument` is set by a
    feed that speaks ABP's own ids (OddsPapi v5: fixtureId, outcomeId, playerId; docs/reference/abp.md
    §4, docs/reference/oddspapi.md §1): the instrument mapper then takes it as it is, with no
    mapping file and no lookup (bot/market/mapping.py). `bookmaker` is then ABP's slug too.
    `ladder` is set by exchange feeds only (back and lay depth, `Ladder`); `price` is then the best
    back price. Sportsbook feeds leave it None: a sportsbook quote is a back price alone.

    Read-only like every message here, but by type rather than `frozen=True`: the fields are
    `Final`, so mypy rejects any assignment. A frozen dataclass's `__init__` stores each field
    through `object.__setattr__`, several times the cost of the plain slot stores of this one,
    and feeds build one update per outcome (bench/feed_throughput.py; docs/architecture.md,
    Invariants > Hot path lean).
    """

    source: Final[str]
    bookmaker: Final[str]
    selection: Final[Selection]
    price: Final[float | None]
    american: Final[int | None]
    suspended: Final[bool]
    feed_time: Final[datetime]
    received_at: Final[datetime]
    feed_ids: Final[dict[str, str]] = field(default_factory=dict)
    instrument: Final[Instrument | None] = None
    ladder: Final[Ladder | None] = None


@dataclass(frozen=True, slots=True)
class BookCleared:
    """Forget prices: every field that is set narrows what is cleared (BoltOdds `game_removed`,
    `book_clear`, `sport_clear`; a fixture that left The Odds API's board)."""

    source: str
    at: datetime
    bookmaker: str | None = None
    sport: str | None = None
    fixture: FixtureKey | None = None


@dataclass(frozen=True, slots=True)
class FeedStatus:
    """A feed's connection state. `stale=True` means: do not trade on this feed's prices until
    its fresh snapshot has arrived (after a reconnect)."""

    source: str
    at: datetime
    connected: bool
    stale: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class OddsBatch:
    """Everything one snapshot or one batched frame says, applied to the book as one step
    before any strategy sees any of it (docs/architecture.md, Pipeline).

    `cleared` applies first, then `updates` in order (a later update of the same quote wins);
    a feed whose wire order puts a clear after updates it forgets drops those updates from the
    batch, so the result is the wire order's. Withdrawals are suspended updates (price None) or
    clears: unusable at once.

    `complete=True`: the batch is the source's whole board at `received_at` (a The Odds API
    poll or its replay): every quote of `source` it does not withdraw is confirmed as of
    `received_at`, except those of the `unconfirmed` (fixture, bookmaker) pairs, whose event or
    bookmaker section could not be read (bookmaker None = the whole fixture): their previous
    quotes are kept unchanged but not vouched for, so they age out unless a later snapshot
    confirms them. `complete=False` (a BoltOdds frame): only the quotes it names are refreshed.
    """

    source: str
    received_at: datetime
    updates: tuple[OddsUpdate, ...] = ()
    cleared: tuple[BookCleared, ...] = ()
    complete: bool = False
    unconfirmed: tuple[tuple[FixtureKey, str | None], ...] = ()


FeedEvent = OddsUpdate | BookCleared | FeedStatus | OddsBatch


@dataclass(frozen=True, slots=True)
class Instrument:
    """ABP / OddsPapi v5 identifiers of a selection (docs/reference/abp.md §4, docs/reference/oddspapi.md §1)."""

    fixture_id: str
    outcome_id: int
    player_id: int = 0


@dataclass(frozen=True, slots=True)
class Signal:
    """A strategy's wish to bet.

    `stake` in the order currency (for a lay: the backer's stake, as an exchange states a lay's
    size; its liability is (price - 1) x stake); `min_price` is the order's price limit, sent as
    ABP `orderPrice` ("bets are placed at this price or better", docs/reference/abp.md §8.1): for
    a back the minimum acceptable decimal odds (a floor), for a lay the maximum (a ceiling: lower
    is better for a layer; inferred, the documents word it for backs only); `price` the decimal
    odds the strategy saw; `edge` the expected
    edge as a fraction (0.03 = 3 %); `bookmakers` the target books (empty = any); `tag` is sent
    as ABP `userRef`; legs sharing a `group` are all-or-none (arbitrage).
    """

    signal_id: str
    strategy: str
    selection: Selection
    side: Side
    stake: Decimal
    price: float
    min_price: float
    bookmakers: tuple[str, ...]
    created_at: datetime
    reason: str = ""
    edge: float = 0.0
    expires_at: datetime | None = None
    tag: str = ""
    group: str | None = None


class Verdict(StrEnum):
    APPROVED = "APPROVED"
    RESIZED = "RESIZED"
    REJECTED = "REJECTED"


@dataclass(frozen=True, slots=True)
class Decision:
    """The risk manager's answer to a signal. `reason` is a standard reason code (see
    bot/risk/reasons.py) when rejected or resized; `details` holds the numbers behind it."""

    signal: Signal
    verdict: Verdict
    stake: Decimal
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    at: datetime | None = None

    @property
    def approved(self) -> bool:
        return self.verdict is not Verdict.REJECTED


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """An approved order, ready for the executor. `instrument` is None only for venues that
    accept unmapped selections (the paper venue); `ttl` is how long the order may work, which the
    executor turns into `expiresAt` on the venue's clock (docs/architecture.md, "Two clocks"; None:
    `execution.expiry_seconds`); `bookmakers` are the venue's slugs for the signal's books (None:
    the signal's own, e.g. paper)."""

    signal: Signal
    stake: Decimal
    instrument: Instrument | None
    ttl: timedelta | None = None
    bookmakers: tuple[str, ...] | None = None


class OrderStatus(StrEnum):
    """Our order states (INTENT, SENT, UNKNOWN, DECLINED) plus ABP's (docs/reference/abp.md §9)."""

    INTENT = "INTENT"  # committed to the ledger, not yet sent
    SENT = "SENT"  # request left, no answer yet
    UNKNOWN = "UNKNOWN"  # answer lost or unreadable: reconcile, never guess
    DECLINED = "DECLINED"  # in declinedOrders: ABP never created it
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    FILLED = "FILLED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    FAILED = "FAILED"

    @property
    def final(self) -> bool:
        return self in FINAL_ORDER_STATUSES


FINAL_ORDER_STATUSES = frozenset(
    {
        OrderStatus.DECLINED,
        OrderStatus.FILLED,
        OrderStatus.CANCELLED,
        OrderStatus.REJECTED,
        OrderStatus.EXPIRED,
        OrderStatus.FAILED,
    }
)


class BetStatus(StrEnum):
    PENDING = "PENDING"
    PLACED = "PLACED"
    CONFIRMED = "CONFIRMED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"
    VOID = "VOID"


class SettlementStatus(StrEnum):
    UNSETTLED = "UNSETTLED"
    WON = "WON"
    LOST = "LOST"
    VOID = "VOID"
    HALF_WON = "HALF_WON"
    HALF_LOST = "HALF_LOST"
    PUSH = "PUSH"
    CASHOUT = "CASHOUT"


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """An order's new state as the executor learnt it (from a response, the stream or REST)."""

    request_uuid: str
    status: OrderStatus
    filled_stake: Decimal
    at: datetime
    order_id: int | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Fill:
    """A bet placed for an order (ABP: one order yields 0..N bets). `stake` and `price` are the
    placed stake (account currency) and decimal odds. `new_bet` is True on the bet's first report
    (the fill) and False on a later change of its status (published as MQTT `bet`, docs/mqtt.md)."""

    bet_id: int
    request_uuid: str
    bookmaker: str
    stake: Decimal
    price: float
    status: BetStatus
    at: datetime
    order_id: int | None = None
    new_bet: bool = True


@dataclass(frozen=True, slots=True)
class Settlement:
    """A settled bet. `amount` is what the bookmaker returns (what the bet held included: a back's
    stake, a lay's liability; 0 on a loss); `pnl` = amount - what it held - the exchange
    commission charged on it (bot/execution/commission.py)."""

    bet_id: int
    request_uuid: str
    status: SettlementStatus
    amount: Decimal
    pnl: Decimal
    at: datetime


class VenueAlertKind(StrEnum):
    """What a `VenueAlert` reports (docs/architecture.md, "Risk")."""

    EMERGENCY_ON = "EMERGENCY_ON"  # the venue's emergency channel went active
    EMERGENCY_OFF = "EMERGENCY_OFF"  # ... and cleared (trading resumes only as risk.emergency_resume says)
    UNAVAILABLE = "UNAVAILABLE"  # 5xx, timeout or connection error on an order request
    AUTH_FAILED = "AUTH_FAILED"  # 401 / 403 on an account-level request: halts trading
    BOOKMAKER_UNAVAILABLE = "BOOKMAKER_UNAVAILABLE"  # the venue declined: "Bookmaker not available"
    MISSING_RATE = "MISSING_RATE"  # an amount in a currency with no known rate: fails closed
    MISMATCH = "MISMATCH"  # ledger and venue disagree (positions, PnL cross-check)


@dataclass(frozen=True, slots=True)
class VenueAlert:
    """Venue-level news for risk and the operator (not tied to one order). `bookmakers` names the
    books concerned (empty: the venue as a whole); `details` holds the figures, JSON-ready."""

    kind: VenueAlertKind
    reason: str
    at: datetime
    bookmakers: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)


OrderEvent = OrderUpdate | Fill | Settlement
"""What happens to one order: routed to the strategy that owns it."""
ExecutionEvent = OrderEvent | VenueAlert
