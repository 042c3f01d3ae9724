"""Ledger tables (SQLModel; SQLite in WAL mode, or PostgreSQL: bot/ledger/store.py): signals, risk decisions, orders, bets (fills),
settlements, balances, the append-only execution event log and persisted key/value state.

Money is exact: `Money` columns store Decimal as TEXT and give Decimal back (never float
arithmetic). Times are UTC. Bets and settlements hold their amounts in the bot's one currency
(`execution.currency`, what risk and PnL read) and, beside them, the venue's original amounts in
the bookmaker account's currency (`venue_*`, docs/reference/abp.md §11). Order rows are keyed
by `request_uuid` (unique), which is committed BEFORE the placement request leaves
(docs/architecture.md, Invariants > Exactly-once placement).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Column, DateTime, String, TypeDecorator
from sqlmodel import Field, SQLModel

# The newest schema version: Alembic revision "000N" (bot/ledger/revisions/versions/ says what each added).
SCHEMA_VERSION = 5


class Money(TypeDecorator[Decimal]):
    """Decimal stored as TEXT: exact on SQLite (whose NUMERIC is a float), and the same column
    type on PostgreSQL so one set of revisions serves both."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Any) -> str | None:
        return None if value is None else str(Decimal(value))

    def process_result_value(self, value: str | None, dialect: Any) -> Decimal | None:
        return None if value is None else Decimal(value)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes, stored naive in UTC (SQLite drops the offset; PostgreSQL's
    `timestamp` has none): the offset is put back on reading."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the ledger; use UTC-aware datetimes")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def money(**kw: Any) -> Any:
    return Field(sa_column=Column(Money(), **kw))


def money_default(default: Decimal = Decimal(0)) -> Any:
    return Field(default=default, sa_column=Column(Money(), nullable=False))


def utc(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UtcDateTime(), nullable=nullable, index=index))


def json_col() -> Any:
    return Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class SignalRow(SQLModel, table=True):
    __tablename__ = "signals"
    id: int | None = Field(default=None, primary_key=True)
    signal_id: str = Field(unique=True, index=True)
    strategy: str = Field(index=True)
    selection: str = Field(index=True)  # Selection.key
    sport: str
    fixture: str = Field(index=True)  # str(FixtureKey)
    market: str
    outcome: str
    side: str
    stake: Decimal = money(nullable=False)
    price: float
    min_price: float
    edge: float = 0.0
    bookmakers: str = ""  # comma-separated
    reason: str = ""
    tag: str = ""
    group: str | None = None
    created_at: datetime | None = utc(nullable=False, index=True)


class DecisionRow(SQLModel, table=True):
    __tablename__ = "decisions"
    id: int | None = Field(default=None, primary_key=True)
    signal_id: str = Field(index=True)
    strategy: str = Field(index=True)
    verdict: str  # Verdict
    reason: str | None = Field(default=None, index=True)  # reason code
    requested_stake: Decimal = money(nullable=False)
    approved_stake: Decimal = money(nullable=False)
    details: dict[str, Any] = json_col()
    at: datetime | None = utc(nullable=False)


class OrderRow(SQLModel, table=True):
    __tablename__ = "orders"
    id: int | None = Field(default=None, primary_key=True)
    request_uuid: str = Field(unique=True, index=True)
    order_id: int | None = Field(default=None, index=True)  # ABP's id
    signal_id: str = Field(index=True)
    strategy: str = Field(index=True)
    selection: str
    sport: str = ""
    fixture: str = Field(default="", index=True)  # a market's bets are found by it (commission)
    bookmakers: str = ""  # comma-separated target books ("" = any)
    fixture_id: str | None = None  # ABP instrument (None when unmapped, paper only)
    outcome_id: int | None = None
    player_id: int = 0
    back: bool = True
    order_price: float  # ABP orderPrice: a back's minimum acceptable decimal odds, a lay's maximum
    stake: Decimal = money(nullable=False)
    filled_stake: Decimal = money_default()
    currency: str = "USD"
    status: str = Field(index=True)  # OrderStatus
    status_reason: str | None = None
    user_ref: str = ""
    # the bot instance that placed it (docs/operations.md, "Several instances")
    instance: str = Field(default="", index=True, sa_column_kwargs={"server_default": ""})
    attempts: int = 0
    expires_at: datetime | None = utc()
    created_at: datetime | None = utc(nullable=False)
    updated_at: datetime | None = utc(nullable=False)


_ORDER_PROTOTYPE = OrderRow(request_uuid="", signal_id="", strategy="", selection="", order_price=0.0,
                            stake=Decimal(0), status="")


def new_order_row(**fields: Any) -> OrderRow:
    """`OrderRow(**fields)`, built as a copy of a prototype: the same row (neither way validates),
    in ~4 us instead of the 70-130 us SQLAlchemy spends setting up a new instance, which the
    executor would pay per order between signal and request (bench/tick_to_order.py). Like every
    order row the executor holds, it is a data carrier: inserted by `Ledger.add_orders`'
    statement, never added to a session. Fields left out take OrderRow's defaults."""
    return _ORDER_PROTOTYPE.model_copy(update=fields)


class BetRow(SQLModel, table=True):
    """A bet (fill). `placed_stake` and `settlement_amount` are in `placed_currency`, the bot's
    currency; `venue_stake` / `venue_amount` are ABP's `placedStake` / `settlementAmount` in the
    account currency `venue_currency` (ABP's `placedCurrency`). Left None they are taken as the
    same currency when the row is first stored (`Ledger.upsert_bet`). Rows written before schema
    version 2 were never converted: there `placed_currency` is the venue's currency."""

    __tablename__ = "bets"
    id: int | None = Field(default=None, primary_key=True)
    bet_id: int = Field(unique=True, index=True)
    order_id: int | None = Field(default=None, index=True)
    request_uuid: str = Field(index=True)
    bookmaker: str = Field(index=True)
    placed_stake: Decimal = money(nullable=False)
    placed_price: float
    placed_currency: str = "USD"
    bet_status: str
    settlement_status: str = Field(default="UNSETTLED", index=True)  # open bets are found by it
    settlement_amount: Decimal | None = money(nullable=True)
    venue_currency: str | None = None
    venue_stake: Decimal | None = money(nullable=True)
    venue_amount: Decimal | None = money(nullable=True)
    placed_at: datetime | None = utc()
    settled_at: datetime | None = utc()
    updated_at: datetime | None = utc(nullable=False, index=True)  # paper settlement reads changes by it
    # The closing line (bot/market/closing.py): the bet's bookmaker's last pre-start price, the
    # reference's no-vig probability of the selection then, and CLV = placed_price x that - 1.
    # `closed_at` (the kickoff) is set once the close was looked for, found or not.
    closing_price: float | None = None
    closing_probability: float | None = None
    clv: float | None = None
    closed_at: datetime | None = utc()


class SettlementRow(SQLModel, table=True):
    """A settled bet: `stake`, `amount` and `pnl` in `currency` (the bot's); `venue_stake` and
    `venue_amount` as the venue settled them, in `venue_currency` (see `BetRow`). `pnl` = amount -
    what the bet put at risk (a back's stake, a lay's liability) - `commission`, the exchange
    commission on the market's net winnings charged on this row (bot/execution/commission.py)."""

    __tablename__ = "settlements"
    id: int | None = Field(default=None, primary_key=True)
    bet_id: int = Field(unique=True, index=True)
    request_uuid: str = Field(index=True)
    strategy: str = Field(index=True)
    bookmaker: str = ""
    sport: str = ""
    status: str
    stake: Decimal = money(nullable=False)
    amount: Decimal = money(nullable=False)  # returned incl. what the bet held (stake or liability)
    pnl: Decimal = money(nullable=False)
    commission: Decimal = Field(default=Decimal(0), sa_column=Column(Money(), nullable=False, server_default="0"))
    at: datetime | None = utc(nullable=False, index=True)
    currency: str = "USD"
    venue_currency: str | None = None
    venue_stake: Decimal | None = money(nullable=True)
    venue_amount: Decimal | None = money(nullable=True)


class BalanceRow(SQLModel, table=True):
    __tablename__ = "balances"
    id: int | None = Field(default=None, primary_key=True)
    bookmaker: str = Field(index=True)
    username: str = ""
    currency: str = "USD"
    balance: Decimal = money(nullable=False)
    at: datetime | None = utc(nullable=False)


class EventRow(SQLModel, table=True):
    """Append-only execution event log: every request, response, stream message and anomaly,
    raw where it came from the wire (bad venue input is stored here, never dropped)."""

    __tablename__ = "events"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime | None = utc(nullable=False, index=True)
    kind: str = Field(index=True)
    request_uuid: str | None = Field(default=None, index=True)
    payload: dict[str, Any] = json_col()


class StateRow(SQLModel, table=True):
    """Small persisted state: risk trading state, last processed stream seq, peak equity."""

    __tablename__ = "state"
    key: str = Field(primary_key=True)
    value: dict[str, Any] = json_col()
    updated_at: datetime | None = utc(nullable=False)


class RunRow(SQLModel, table=True):
    """One `bot run` (docs/architecture.md, "Invariants > Runs never re-bet"): what it read
    (`source`), with which config (`config_hash`), how far it got (`last_event_seq`: feed events
    fully handled, `last_event_at`: their trading-clock time) and how it ended (`outcome`:
    running | finished | stopped | interrupted | resumed)."""

    __tablename__ = "runs"
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(unique=True, index=True)
    instance: str = ""
    mode: str = ""
    source: str = Field(index=True)
    config_hash: str = ""
    pid: int = 0
    host: str = ""
    resumed_from: str | None = None
    warmup_events: int = 0  # events replayed without trading to rebuild the book
    last_event_seq: int = 0
    last_event_at: datetime | None = utc()
    outcome: str = "running"
    started_at: datetime | None = utc(nullable=False)
    ended_at: datetime | None = utc()
