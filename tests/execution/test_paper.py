"""PaperVenue follows ABP placement semantics (docs/reference/abp.md §6.2, §8, §9, §10)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.clock import ReplayClock
from bot.execution.config import PaperConfig
from bot.execution.venue import VenueMessage
from bot.sim.paper import PaperVenue, StakeLimits, settlement_amount
from bot.types import SettlementStatus

T0 = datetime(2025, 11, 16, 18, 0, tzinfo=UTC)


class BookQuotes:
    """Quote source for tests: fixed prices per bookmaker, changeable between calls."""

    def __init__(self, prices: dict[str, float | None]) -> None:
        self.prices = prices

    def quotes(self, order: dict) -> dict[str, float]:
        return dict(self.prices)


def order(stake: str = "10", price: float = 2.0, **kw) -> dict:
    body = {
        "requestUuid": str(uuid.uuid4()), "fixtureId": "id1000004461512432", "outcomeId": 101,
        "playerId": 0, "orderPrice": price, "orderStake": float(stake), "userRef": "test",
        "testOrder": False,
    }
    body.update(kw)
    return body


def venue(prices: dict[str, float | None], **kw) -> tuple[PaperVenue, ReplayClock, BookQuotes]:
    clock = ReplayClock(T0)
    q = BookQuotes(prices)
    return PaperVenue(clock, q, PaperConfig(default_max_stake=1000, default_min_stake=1), **kw), clock, q


def place_one(v: PaperVenue, body: dict) -> tuple[int, dict]:
    status, out = v.place({"orders": [body]})
    return status, (out["acceptedOrders"] or out["declinedOrders"])[0]


# -- declines, one test per reason (docs/reference/abp.md §10) ---------------------------------------------------


def test_decline_stake_exceeds_limit_all_or_nothing() -> None:
    v, _, _ = venue({"pinnacle": 2.1}, bookmaker_limits={"pinnacle": StakeLimits(max_stake=Decimal(50))})
    status, d = place_one(v, order("100", bookmakers="pinnacle", acceptPartialStake=False))
    assert status == 400
    assert d["declineReason"] == "Order stake 100.00 USD exceeds available limit 50.00 USD"
    assert "orderId" not in d


def test_limit_cascade_account_overrides_bookmaker() -> None:
    v, _, _ = venue(
        {"pinnacle": 2.1},
        bookmaker_limits={"pinnacle": StakeLimits(max_stake=Decimal(500))},
        accounts={"pinnacle": StakeLimits(max_stake=Decimal(20))},
    )
    _, d = place_one(v, order("30", acceptPartialStake=False))
    assert d["declineReason"] == "Order stake 30.00 USD exceeds available limit 20.00 USD"


def test_decline_stake_below_minimum() -> None:
    v, _, _ = venue({"pinnacle": 2.1}, bookmaker_limits={"pinnacle": StakeLimits(min_stake=Decimal(5))})
    _, d = place_one(v, order("2"))
    assert d["declineReason"] == "Order stake 2.00 USD is below minimum stake 5.00 USD"


def test_decline_invalid_odds_when_suspended() -> None:
    v, _, _ = venue({"pinnacle": None})
    _, d = place_one(v, order())
    assert d["declineReason"].startswith("Invalid odds")


def test_decline_no_active_accounts() -> None:
    v, _, _ = venue({"pinnacle": 2.1}, accounts={"betcris": StakeLimits()})
    _, d = place_one(v, order(bookmakers="pinnacle"))
    assert d["declineReason"] == "No active accounts for this market"


def test_decline_currency_conversion_failed() -> None:
    v, _, _ = venue({"pinnacle": 2.1})
    _, d = place_one(v, order(orderCurrency="XYZ"))
    assert d["declineReason"].startswith("Currency conversion failed")


def test_decline_bookmaker_not_available() -> None:
    v, _, _ = venue({"pinnacle": 2.1})
    _, d = place_one(v, order(bookmakers="sharpbet"))
    assert d["declineReason"].startswith("Bookmaker not available")


def test_decline_in_emergency_and_recovery() -> None:
    v, _, _ = venue({"pinnacle": 2.1})
    seen: list[VenueMessage] = []
    v.listen(seen.append)
    v.set_emergency(True, "maintenance")
    _, d = place_one(v, order())
    assert d["declineReason"] == "Emergency mode active: maintenance"
    v.set_emergency(False)
    status, o = place_one(v, order())
    assert status == 200 and o["orderStatus"] == "FILLED"
    assert [m.payload["active"] for m in seen if m.channel == "emergency"] == [True, False]


def test_partial_success_batch_status() -> None:
    v, _, _ = venue({"pinnacle": 2.1})
    status, out = v.place({"orders": [order(), order(orderCurrency="XYZ")]})
    assert status == 200 and out["status"] == "partial-success"
    assert len(out["acceptedOrders"]) == 1 and len(out["declinedOrders"]) == 1


def test_schema_errors_are_422_field_errors() -> None:
    v, _, _ = venue({"pinnacle": 2.1})
    status, out = v.place({"orders": [order(stake="0")]})
    assert status == 422
    assert out["detail"][0]["loc"] == ["body", "orders", 0, "orderStake"]


# -- fills ------------------------------------------------------------------------------------


def test_fill_best_price_first_and_better_odds() -> None:
    v, _, _ = venue({"pinnacle": 2.05, "betcris": 2.15})
    _, o = place_one(v, order("10", price=2.0))
    assert o["orderStatus"] == "FILLED" and o["filledStake"] == 10.0
    assert [(b["bookmaker"], b["placedPrice"]) for b in o["bets"]] == [("betcris", 2.15)]
    # acceptBetterOdds=false: placed at the requested price, not better [inferred]
    _, o = place_one(v, order("10", price=2.0, acceptBetterOdds=False))
    assert [b["placedPrice"] for b in o["bets"]] == [2.0]


def test_partial_fill_when_limit_runs_out_then_expiry_keeps_partial() -> None:
    v, clock, _ = venue({"pinnacle": 2.1}, bookmaker_limits={"pinnacle": StakeLimits(max_stake=Decimal(60))})
    _, o = place_one(v, order("100"))
    assert o["orderStatus"] == "PARTIALLY_FILLED" and o["filledStake"] == 60.0
    assert o["remainingStake"] == 40.0
    clock.advance(T0 + timedelta(seconds=6))
    v.advance()
    (row,) = v.orders(request_uuids=[o["requestUuid"]])
    assert row["orderStatus"] == "PARTIALLY_FILLED" and row["filledStake"] == 60.0


def test_price_below_floor_waits_then_fills_or_expires() -> None:
    v, clock, q = venue({"pinnacle": 1.9})
    _, waiting = place_one(v, order("10", price=2.0))
    _, expiring = place_one(v, order("10", price=2.0))
    assert waiting["orderStatus"] == "PENDING" and waiting["bets"] == []
    assert waiting["expiresAt"] == (T0 + timedelta(seconds=5)).isoformat()  # default expiry
    clock.advance(T0 + timedelta(seconds=2))
    q.prices = {"pinnacle": 2.02}
    v.cancel(request_uuids=[expiring["requestUuid"]])
    v.advance()
    assert v.orders(request_uuids=[waiting["requestUuid"]])[0]["orderStatus"] == "FILLED"
    _, late = place_one(v, order("10", price=2.5))
    clock.advance(T0 + timedelta(seconds=7, microseconds=1))
    v.advance()
    row = v.orders(request_uuids=[late["requestUuid"]])[0]
    assert row["orderStatus"] == "EXPIRED" and row["filledStake"] == 0.0


def test_expiry_capped_at_24h() -> None:
    v, _, _ = venue({"pinnacle": 1.5})
    _, o = place_one(v, order(expiresAt=(T0 + timedelta(days=3)).isoformat()))
    assert o["expiresAt"] == (T0 + timedelta(hours=24)).isoformat()


@settings(max_examples=60, deadline=None)
@given(
    prices=st.lists(st.floats(min_value=1.5, max_value=3.0), min_size=1, max_size=4),
    limits=st.lists(st.integers(min_value=1, max_value=400), min_size=4, max_size=4),
    stake=st.integers(min_value=1, max_value=1000),
    floor=st.floats(min_value=1.6, max_value=2.5),
)
def test_average_price_never_below_floor(prices, limits, stake, floor) -> None:
    books = {f"b{i}": round(p, 3) for i, p in enumerate(prices)}
    v, _, _ = venue(books, bookmaker_limits={f"b{i}": StakeLimits(max_stake=Decimal(lim)) for i, lim in enumerate(limits)})
    _, o = place_one(v, order(str(stake), price=round(floor, 3)))
    bets = o.get("bets", [])
    staked = sum(Decimal(str(b["placedStake"])) for b in bets)
    assert staked <= stake
    if bets:
        assert bets[0]["placedPrice"] >= round(floor, 3)  # first bet clears the floor
        avg = sum(Decimal(str(b["placedStake"])) * Decimal(str(b["placedPrice"])) for b in bets) / staked
        assert avg >= Decimal(str(round(floor, 3)))


def test_unmapped_selection_is_accepted_via_meta() -> None:
    v, _, _ = venue({"paper": 2.0})
    _, o = place_one(v, order(fixtureId=None, outcomeId=None, meta={"selection": "NFL|A vs B|x|moneyline/game|home"}))
    assert o["orderStatus"] == "FILLED" and o["fixtureId"] is None


def test_test_order_is_stored_not_placed() -> None:
    v, _, _ = venue({"pinnacle": 2.1})
    _, o = place_one(v, order(testOrder=True))
    assert o["orderStatus"] == "PENDING" and o["bets"] == []


# -- idempotency, cancel, settlement -------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "probe"),
    [("r2", lambda b: b["detail"]["duplicateUuids"]), ("r1", lambda b: b["duplicateUuids"]),
     ("text", lambda b: [b["detail"]])],
)
def test_duplicates_skipped_and_409_when_all_duplicate(shape, probe) -> None:
    v, _, _ = venue({"pinnacle": 2.1}, conflict_shape=shape)
    first = order()
    place_one(v, first)
    status, out = v.place({"orders": [first, order()]})
    assert status == 200 and len(out["acceptedOrders"]) == 1 and out["declinedOrders"] == []
    status, out = v.place({"orders": [first]})
    assert status == 409 and probe(out)
    assert len(v.orders(request_uuids=[first["requestUuid"]])) == 1
    # a declined UUID counts as processed (docs/reference/abp.md §8.4 [inferred])
    bad = order(orderCurrency="XYZ")
    place_one(v, bad)
    assert v.place({"orders": [bad]})[0] == 409


def test_cancel_rules() -> None:
    v, _, _ = venue({"pinnacle": 2.1}, bookmaker_limits={"pinnacle": StakeLimits(max_stake=Decimal(5))})
    _, partial = place_one(v, order("10"))
    _, filled = place_one(v, order("10", bookmakers="sharp"))  # declined, not an order
    v2_pending = order("5", price=9.0)
    _, pending = place_one(v, v2_pending)
    assert partial["orderStatus"] == "PARTIALLY_FILLED" and pending["orderStatus"] == "PENDING"
    out = v.cancel(all_orders=True)  # R1 (docs/reference/abp.md §8.5): orders with bets stay
    assert [o["requestUuid"] for o in out["cancelled"]] == [pending["requestUuid"]]
    assert [o["requestUuid"] for o in out["notCancelled"]["orders"]] == [partial["requestUuid"]]
    out = v.cancel(request_uuids=[partial["requestUuid"], pending["requestUuid"]])
    assert out["cancelledCount"] == 1 and out["cancelled"][0]["bets"]  # bets are kept
    assert [o["orderStatus"] for o in out["notCancelled"]["orders"]] == ["CANCELLED"]
    assert not v.cancel(request_uuids=[filled["requestUuid"]])["matched"]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (SettlementStatus.WON, Decimal("21.00")), (SettlementStatus.LOST, Decimal("0.00")),
        (SettlementStatus.VOID, Decimal("10.00")), (SettlementStatus.PUSH, Decimal("10.00")),
        (SettlementStatus.HALF_WON, Decimal("15.50")), (SettlementStatus.HALF_LOST, Decimal("5.00")),
    ],
)
def test_settle_amounts(status, expected) -> None:
    v, _, _ = venue({"pinnacle": 2.1})
    seen: list[VenueMessage] = []
    v.listen(seen.append)
    _, o = place_one(v, order("10"))
    v.settle(o["bets"][0]["betId"], status)
    msg = seen[-1]
    assert msg.channel == "settlements" and msg.payload["settlementStatus"] == status.value
    assert Decimal(str(msg.payload["settlementAmount"])) == expected


@given(stake=st.decimals(min_value=1, max_value=10000, places=2), price=st.floats(min_value=1.01, max_value=50))
def test_settlement_amount_invariants(stake: Decimal, price: float) -> None:
    won = settlement_amount(stake, price, SettlementStatus.WON)
    half_won = settlement_amount(stake, price, SettlementStatus.HALF_WON)
    assert settlement_amount(stake, price, SettlementStatus.LOST) == 0
    assert stake <= half_won <= won + Decimal("0.01")
    assert settlement_amount(stake, price, SettlementStatus.HALF_LOST) == (stake / 2).quantize(Decimal("0.01"))
