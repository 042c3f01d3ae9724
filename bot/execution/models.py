"""Typed ABP wire models (docs/reference/abp.md §6-§7, §13.5; components of
tests/data/abp/abp-openapi.json).

Tolerant readers: every model accepts unknown fields (kept in `model_extra`) and most fields are
optional, because R1 and R2 differ and examples omit fields. Orders and bets are strict only where
acting on them needs it: an order needs `requestUuid` and a known `orderStatus`, a bet `betId` and a
known `betStatus`. Money is Decimal (order currency for order stakes, account currency for bets);
prices are decimal odds.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from bot.types import BetStatus, OrderStatus, SettlementStatus


class AbpModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="allow", frozen=True
    )

    @property
    def unknown_fields(self) -> list[str]:
        """Fields the venue sent that this model does not document."""
        return sorted((self.model_extra or {}).keys() - _DOCUMENTED_EXTRA)


# Documented fields we carry but do not model (docs/reference/abp.md §7, §13.5), so they are not "unknown".
_DOCUMENTED_EXTRA = frozenset(
    ["client", "clientName", "fixtureInfo", "outcomeInfo", "playerInfo", "currencyInfo", "oddsInfo", "sentData", "receivedData", "betRequestId", "bookmakerBetId", "settlementReason", "testBet", "testOrder", "account", "allowedBookmakers", "acceptBetterOdds", "acceptPartialStake", "orderCurrency", "back", "remainingStake", "statusReason", "filledAt", "createdAt", "updatedAt", "meta", "userRef", "expiresAt", "declineReason", "futureId", "participantId"]
)


class AbpBet(AbpModel):
    """A bet (fill) of an order: `placedStake` in `placedCurrency` (account currency)."""

    bet_id: int
    bet_status: BetStatus
    order_id: int | None = None
    request_uuid: str | None = None
    bookmaker: str = ""
    settlement_status: SettlementStatus = SettlementStatus.UNSETTLED
    placed_stake: Decimal | None = None
    placed_price: float | None = None
    placed_currency: str | None = None
    settlement_amount: Decimal | None = None
    placed_at: datetime | None = None
    settled_at: datetime | None = None


class AbpOrder(AbpModel):
    """An enriched order (acceptedOrders, /orders, WS `orders` rows). `filledStake` is in the
    order currency; `bets` is present on REST answers, absent on WS rows."""

    request_uuid: str
    order_status: OrderStatus
    order_id: int | None = None
    fixture_id: str | None = None
    outcome_id: int | None = None
    player_id: int | None = None
    order_price: float | None = None
    order_stake: Decimal | None = None
    filled_stake: Decimal | None = None
    status_reason: str | None = None
    bets: list[AbpBet] | None = None


class DeclinedOrder(AbpModel):
    """An echo of a declined order: no orderId, keyed by requestUuid (docs/reference/abp.md §6.2)."""

    request_uuid: str
    decline_reason: str = ""


class PlaceOrdersResult(BaseModel):
    """Answer of POST /place-orders, on 200 and on 400 (all declined). Items stay raw dicts so that
    one malformed order cannot hide the others: parse each with `AbpOrder` / `DeclinedOrder`."""

    http_status: int
    status: str | None = None  # accepted | partial-success | declined
    accepted_orders: list[Any] = []
    declined_orders: list[Any] = []
    raw: Any = None
    written_ns: int = 0  # when the request's last byte was written (bot/latency.py)


class CancelOrdersResult(BaseModel):
    """Answer of POST /cancel-orders and /cancel-all-orders (docs/reference/abp.md §6.3)."""

    status: str | None = None
    cancelled_count: int = 0
    cancelled: list[Any] = []
    not_cancelled: list[Any] = []
    not_cancelled_reason: str | None = None
    raw: Any = None


class Account(AbpModel):
    bookmaker: str
    username: str
    client: str | None = None
    balance: Decimal | None = None
    active: bool | None = None
    priority: int | None = None
    max_stake: Decimal | None = None
    min_stake: Decimal | None = None
    currency_id: str | None = None
    verify_betslip: bool | None = None
    multi_limit_allowed: bool | None = None
    meta: dict[str, Any] | None = None


class Bookmaker(AbpModel):
    bookmaker: str
    bookmaker_id: int | None = None
    bookmaker_name: str | None = None
    active: bool | None = None
    max_stake: Decimal | None = None
    min_stake: Decimal | None = None


class OddsType(AbpModel):
    outcome_id: int
    outcome_name: str | None = None


class Market(AbpModel):
    market_id: int
    sport_id: int | None = None
    market_length: int | None = None
    player_prop: bool | None = None
    handicap: float | None = None
    market_name: str | None = None
    market_name_short: str | None = None
    market_type: str | None = None
    period: str | None = None
    odds_types: list[OddsType] = []


class BetslipOdds(AbpModel):
    """One bookmaker's offer: `limit`/`limitMin` in `limitCurrency` after the limit cascade."""

    price: float | None = None
    limit: Decimal | None = None
    limit_min: Decimal | None = None
    limit_currency: str | None = None
    limit_usd: Decimal | None = None
    limit_min_usd: Decimal | None = None
    active: bool | None = None
    account: str | None = None


class Betslip(AbpModel):
    fixture_id: str | None = None
    outcome_id: int | None = None
    player_id: int | None = None
    odds: dict[str, dict[str, BetslipOdds]] = {}


class PositionEntry(AbpModel):
    open_bets: int | None = None
    total_stake: Decimal | None = None
    avg_price: float | None = None
    fixture_ids: int | None = None  # ABP: number of distinct orders


class Positions(AbpModel):
    status: str | None = None
    group_by: str | None = None
    positions: list[PositionEntry] = []
    count: int | None = None
    total_stake: Decimal | None = None
    total_open_bets: int | None = None


class PnlEntry(AbpModel):
    settled_bets: int | None = None
    wins: int | None = None
    losses: int | None = None
    voids: int | None = None
    pushes: int | None = None
    total_staked: Decimal | None = None
    total_won: Decimal | None = None
    total_lost: Decimal | None = None
    net_pnl: Decimal | None = None
    win_rate: float | None = None


class Pnl(AbpModel):
    status: str | None = None
    group_by: str | None = None
    pnl: list[PnlEntry] = []
    count: int | None = None
    total_net_pnl: Decimal | None = None
    total_staked: Decimal | None = None
    total_settled_bets: int | None = None


class AccountCreate(AbpModel):
    """POST /accounts body (AccountCreateRequest)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")
    bookmaker: str
    username: str
    password: str | None = None
    balance: float = 0.0
    active: bool = True
    priority: int = 0
    max_stake: float | None = None
    min_stake: float | None = None
    currency_id: str = "USD"
    meta: dict[str, Any] = Field(default_factory=dict)


class AccountUpdate(AbpModel):
    """PATCH /accounts/{bookmaker}/{username} body: only the fields set are sent."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")
    password: str | None = None
    balance: float | None = None
    active: bool | None = None
    priority: int | None = None
    max_stake: float | None = None
    min_stake: float | None = None
    currency_id: str | None = None
    meta: dict[str, Any] | None = None
