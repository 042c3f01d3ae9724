"""The local ABP server answers as the ABP documents do (docs/reference/abp.md §6, §8, §10-12),
over real HTTP on loopback: offered bookmakers, account currencies, limits, duplicate replies,
/status, DELETE of a bet, slow placement and requests that time out before processing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from bot.sim.paper import StakeLimits
from tests.sim.conftest import eventually, order


def declined_reason(body: dict[str, Any]) -> str:
    (declined,) = body["declinedOrders"]
    return declined["declineReason"]


async def test_bookmakers_and_accounts_list_exactly_the_offered_books(abp) -> None:
    # Old: GET /bookmakers listed the quote source's books ("paper") and GET /accounts was empty.
    a = await abp(bookmakers=["pinnacle", "betcris", "sharpbet"], allowed_bookmakers=["pinnacle", "sharpbet", "kalshi"])
    books = (await a.http.get("/bookmakers")).json()
    assert [b["bookmaker"] for b in books] == ["pinnacle", "sharpbet"]
    accounts = (await a.http.get("/accounts")).json()
    assert sorted((x["bookmaker"], x["username"], x["active"], x["currencyId"]) for x in accounts) == [
        ("pinnacle", "pinnacle_main", True, "USD"), ("sharpbet", "sharpbet_main", True, "USD")]


async def test_an_order_naming_no_offered_book_is_declined_bookmaker_not_available(abp) -> None:
    # Old: any slug was quoted and filled (draftkings is not an ABP book; betcris is outside the key's list).
    a = await abp(allowed_bookmakers=["pinnacle", "sharpbet"])
    for books in ("draftkings", "betcris", "draftkings,betcris"):
        r = await a.place(order(bookmakers=books))
        assert r.status_code == 400 and r.json()["status"] == "declined"
        assert declined_reason(r.json()).startswith("Bookmaker not available")
    # a named book outside the list is ignored when an offered one is named too; "*" = any offered
    r = await a.place(order(bookmakers="draftkings,sharpbet"), order(bookmakers="*"))
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    bets = [bet["bookmaker"] for o in r.json()["acceptedOrders"] for bet in o["bets"]]
    assert bets[0] == "sharpbet" and bets[1] in ("pinnacle", "sharpbet")
    assert (await a.http.get("/betslip", params={"fixtureId": "id1", "outcomeId": 101, "playerId": 0,
                                                 "bookmakers": "draftkings"})).status_code == 403


async def test_a_eur_book_places_and_settles_in_eur_and_shows_eur_limits(abp) -> None:
    # Old: every bet was placedCurrency USD with the USD stake; betslip limits were USD only.
    a = await abp(book_currencies={"betcris": "EUR"}, rates={"EUR": 0.92})
    r = await a.place(order(100, bookmakers="betcris"), order(46, bookmakers="betcris", orderCurrency="EUR"))
    usd_order, eur_order = r.json()["acceptedOrders"]
    assert (usd_order["filledStake"], usd_order["orderCurrency"]) == (100.0, "USD")
    (bet,) = usd_order["bets"]
    assert (bet["placedCurrency"], bet["placedStake"], bet["account"]) == ("EUR", 92.0, "betcris_main")
    assert (eur_order["filledStake"], eur_order["bets"][0]["placedStake"]) == (46.0, 46.0)
    settled = (await a.admin("settle", {"betId": bet["betId"], "status": "WON"})).json()
    assert (settled["settlementAmount"], settled["placedCurrency"]) == (184.0, "EUR")  # 92 EUR x 2.0
    (acc,) = (await a.http.get("/accounts", params={"bookmaker": "betcris"})).json()
    assert acc["currencyId"] == "EUR" and acc["currencyInfo"] == {"currency": "EUR", "currencyValue": 0.92}
    slip = (await a.http.get("/betslip", params={"fixtureId": "id1", "outcomeId": 101, "playerId": 0,
                                                 "bookmakers": "betcris"})).json()
    (entry,) = slip["odds"]["betcris"].values()
    assert (entry["limit"], entry["limitCurrency"], entry["limitUsd"]) == (pytest.approx(460.0), "EUR", 500.0)
    assert entry["currencyInfo"] == {"currency": "EUR", "currencyValue": 0.92}


async def test_a_book_currency_without_rate_declines_currency_conversion_failed(abp) -> None:
    # Old: account currencies did not exist; the order filled in USD.
    a = await abp(book_currencies={"betcris": "GBP"})
    r = await a.place(order(bookmakers="betcris"))
    assert r.status_code == 400 and declined_reason(r.json()).startswith("Currency conversion failed")
    r = await a.place(order(bookmakers="*"))  # another book converts: used instead
    assert {b["bookmaker"] for b in r.json()["acceptedOrders"][0]["bets"]} <= {"pinnacle", "sharpbet"}
    await a.admin("rates", {"GBP": 0.8})
    r = await a.place(order(10, bookmakers="betcris"))
    assert r.json()["acceptedOrders"][0]["bets"][0]["placedCurrency"] == "GBP"
    assert r.json()["acceptedOrders"][0]["bets"][0]["placedStake"] == 8.0


async def test_book_limits_decline_mode_1_and_cap_partial_fills(abp) -> None:
    # Old: no per-book limits on the server (every book had the paper default).
    a = await abp(book_limits={"pinnacle": StakeLimits(max_stake=Decimal(50))})
    assert {b["bookmaker"]: b["maxStake"] for b in (await a.http.get("/bookmakers")).json()}["pinnacle"] == 50.0
    r = await a.place(order(100, acceptPartialStake=False))
    assert declined_reason(r.json()) == "Order stake 100.00 USD exceeds available limit 50.00 USD"
    r = await a.place(order(100))
    (accepted,) = r.json()["acceptedOrders"]
    assert (accepted["filledStake"], accepted["orderStatus"]) == (50.0, "PARTIALLY_FILLED")


@pytest.mark.parametrize("reply", ["skip", "409", "decline"])
async def test_duplicate_request_uuid_replies(abp, reply: str) -> None:
    # Old: only the R2 silent skip existed; Faults had no duplicate_reply (the admin POST was a 422).
    a = await abp()
    await a.admin("faults", {"duplicate_reply": reply})
    dup = order()
    assert (await a.place(dup)).status_code == 200
    fresh = order()
    r = await a.place(dup, fresh)
    body = r.json()
    if reply == "skip":  # R2: skipped, the rest proceeds
        assert r.status_code == 200 and [o["requestUuid"] for o in body["acceptedOrders"]] == [fresh["requestUuid"]]
        assert body["declinedOrders"] == []
    elif reply == "409":  # R1 spec: the request is rejected, nothing of it stored
        assert r.status_code == 409 and body["detail"]["duplicateUuids"] == [dup["requestUuid"]]
        assert (await a.http.get("/orders", params={"requestUuids": fresh["requestUuid"]})).status_code == 404
    else:  # R1 Errors page: declined "Duplicate requestUuid"
        assert r.status_code == 200 and body["status"] == "partial-success"
        assert [(d["requestUuid"], d["declineReason"]) for d in body["declinedOrders"]] == [
            (dup["requestUuid"], "Duplicate requestUuid")]
    only_dup = await a.place(dup)
    assert only_dup.status_code == (400 if reply == "decline" else 409)


async def test_no_status_answers_404(abp) -> None:
    # Old: GET /status always answered.
    a = await abp()
    assert (await a.http.get("/status")).json()["emergency"]["active"] is False
    await a.admin("faults", {"no_status": True})
    r = await a.http.get("/status")
    assert r.status_code == 404 and r.json() == {"detail": "Not Found"}


async def test_delete_bet_removes_it_from_every_view(abp) -> None:
    # Old: there was no way to delete a bet; it stayed in /bets, /orders and /positions.
    a = await abp()
    (placed,) = (await a.place(order())).json()["acceptedOrders"]
    bet_id, order_id = placed["bets"][0]["betId"], placed["orderId"]
    row = (await a.admin("delete-bet", {"betId": bet_id})).json()
    assert row["betId"] == bet_id
    assert (await a.http.get("/bets", params={"betIds": bet_id})).status_code == 404
    assert (await a.http.get(f"/bets/{bet_id}")).status_code == 404
    (o,) = (await a.http.get("/orders", params={"orderIds": order_id})).json()["orders"]
    assert o["bets"] == []
    assert (await a.http.get("/positions")).json()["totalOpenBets"] == 0
    assert (await a.http.post("/_admin/delete-bet", json={"betId": bet_id})).status_code == 400


async def test_slow_placement_stores_after_the_client_gave_up(abp) -> None:
    # Old: no place_delay_seconds; a placement was stored at once (or answered late after storing).
    a = await abp()
    await a.admin("faults", {"place_delay_seconds": 0.5})
    o = order()
    with pytest.raises(httpx.ReadTimeout):
        await a.place(o, timeout=0.1)
    query = {"requestUuids": o["requestUuid"]}
    assert (await a.http.get("/orders", params=query)).status_code == 404  # not stored yet

    async def filled() -> bool:
        r = await a.http.get("/orders", params=query)
        return r.status_code == 200 and r.json()["orders"][0]["orderStatus"] == "FILLED"
    await eventually(filled)


async def test_timeout_n_hangs_without_processing(abp) -> None:
    # Old: no timeout_n; a request was either answered or failed at once.
    a = await abp()
    await a.admin("faults", {"timeout_n": 2, "drop_hang_seconds": 0.3})
    with pytest.raises(httpx.ReadTimeout):
        await a.http.get("/bookmakers", timeout=0.1)
    o = order()
    r = await a.place(o)  # waited out: 504, and nothing was stored
    assert r.status_code == 504
    assert (await a.http.get("/orders", params={"requestUuids": o["requestUuid"]})).status_code == 404
    assert (await a.place(o)).json()["status"] == "accepted"  # the UUID was never processed
