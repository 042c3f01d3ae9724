"""AbpClient against the local ABP server over loopback: every endpoint, both error shapes,
retries, pagination, and every request we send validated against abp-openapi.json."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from typing import Any

import httpx
import jsonschema
import pytest

from bot.execution.abp_client import AbpClient
from bot.execution.errors import (
    AbpAuthError,
    AbpConflict,
    AbpNotFound,
    AbpRateLimited,
    AbpUnavailable,
    AbpValidationError,
    error_for,
    error_text,
)
from bot.execution.models import AbpBet, AbpOrder, AccountCreate, AccountUpdate, DeclinedOrder
from bot.sim.abp_server import LocalAbpServer
from tests.execution.conftest import abp_config


def order(stake: float = 10.0, **kw: Any) -> dict[str, Any]:
    body = {
        "requestUuid": str(uuid.uuid4()), "fixtureId": "id1000004461512432", "outcomeId": 101,
        "playerId": 0, "orderPrice": 2.0, "orderStake": stake, "userRef": "client-test",
        "testOrder": False, "bookmakers": "paper", "orderCurrency": "USD", "back": True,
        "acceptBetterOdds": True, "acceptPartialStake": True, "expiresAt": None,
        "meta": {"selection": "NFL|A vs B|2025-11-16T18:00Z|moneyline/game|home", "signal_id": "s", "strategy": "t"},
    }
    body.update(kw)
    return body


def validate_requests(requests: list[dict[str, Any]], spec: dict[str, Any]) -> set[tuple[str, str]]:
    """Validate every logged request's body and query against the OpenAPI operation; return the
    (method, path template) pairs seen."""
    seen = set()
    for req in requests:
        for template, ops in spec["paths"].items():
            pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
            if re.match(pattern, req["path"]) and req["method"].lower() in ops:
                op = ops[req["method"].lower()]
                break
        else:
            raise AssertionError(f"request to an undocumented endpoint: {req['method']} {req['path']}")
        seen.add((req["method"], template))
        schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        if schema is not None:
            resolver_doc = {**schema, "components": spec["components"]}
            jsonschema.validate(req["body"], resolver_doc)
        else:
            assert req["body"] is None, f"{req['method']} {req['path']} sent a body"
        params = {p["name"]: p for p in op.get("parameters", []) if p["in"] == "query"}
        for name, value in req["query"].items():
            assert name in params, f"undocumented query parameter {name} on {template}"
            ptype = params[name]["schema"].get("type")
            if ptype == "integer":
                int(value)
        for name, p in params.items():
            if p.get("required"):
                assert name in req["query"], f"missing required {name} on {template}"
    return seen


async def test_every_endpoint_and_schema(server: LocalAbpServer, openapi: dict[str, Any]) -> None:
    async with AbpClient(abp_config(server, page_limit=3)) as client:
        # accounts CRUD
        acc = await client.create_account(AccountCreate(bookmaker="paper", username="u1", password="pw", max_stake=200))
        assert acc.username == "u1" and acc.max_stake == Decimal(200)
        with pytest.raises(AbpConflict):
            await client.create_account(AccountCreate(bookmaker="paper", username="u1"))
        assert [a.username for a in await client.list_accounts("paper")] == ["u1"]
        upd = await client.update_account("paper", "u1", AccountUpdate(priority=5, active=False))
        assert upd.priority == 5 and upd.active is False and upd.max_stake == Decimal(200)
        assert (await client.get_account("paper", "u1")).priority == 5
        await client.delete_account("paper", "u1")
        with pytest.raises(AbpNotFound):
            await client.get_account("paper", "u1")
        # catalogue and odds
        assert [b.bookmaker for b in await client.bookmakers()] == ["paper"]
        markets = await client.markets(sport_id=10)
        assert markets[0].odds_types[0].outcome_id == 101
        slip = await client.betslip("id1000004461512432", 101, 0, bookmakers=["paper"])
        (entry,) = slip.odds["paper"].values()
        assert entry.limit == Decimal(500) and entry.active
        # orders: accepted, all-declined 400 (a result, not an exception), pagination
        placed = await client.place_orders([order() for _ in range(7)])
        assert placed.http_status == 200 and placed.status == "accepted" and len(placed.accepted_orders) == 7
        first = AbpOrder.model_validate(placed.accepted_orders[0])
        assert first.order_status == "FILLED" and first.filled_stake == Decimal(10)
        declined = await client.place_orders([order(orderCurrency="XYZ")])
        assert declined.http_status == 400 and declined.status == "declined"
        assert DeclinedOrder.model_validate(declined.declined_orders[0]).decline_reason.startswith("Currency")
        rows = await client.get_orders(user_ref="client-test")
        assert len(rows) == 7 and len({r["orderId"] for r in rows}) == 7
        pages = [r for r in server.requests if r["path"] == "/orders"]
        assert len(pages) == 3 and pages[1]["query"]["afterOrderId"]
        assert await client.get_orders(request_uuids=[str(uuid.uuid4())]) == []  # 404 = none
        bets = await client.get_bets(user_ref="client-test")
        assert len(bets) == 7
        assert len(await client.get_bets(order_ids=[first.order_id], bet_ids=[bets[0]["betId"]])) == 2
        bet = await client.get_bet(first.bets[0].bet_id)
        assert isinstance(bet, AbpBet) and bet.placed_price == 2.0
        with pytest.raises(AbpNotFound):
            await client.get_bet(99999)
        # positions, pnl
        pos = await client.positions()
        assert pos.total_open_bets == 7 and pos.positions[0].total_stake == Decimal(70)
        server.venue.settle(first.bets[0].bet_id, "WON")
        pnl = await client.pnl(group_by="userRef")
        assert pnl.total_settled_bets == 1 and pnl.pnl[0].net_pnl == Decimal(10)
        # cancels
        pending = order(testOrder=True)  # stored, never placed: stays PENDING
        await client.place_orders([pending])
        res = await client.cancel_orders(request_uuids=[pending["requestUuid"], first.request_uuid], order_ids=[first.order_id])
        assert res.cancelled_count == 1 and len(res.not_cancelled) == 1
        assert (await client.cancel_orders(user_ref="nobody")).cancelled_count == 0
        await client.place_orders([order(testOrder=True)])
        assert (await client.cancel_all_orders()).cancelled_count == 1
        status = await client.system_status()
        assert status["emergency"]["active"] is False
    seen = validate_requests(server.requests, openapi)
    every = {(m.upper(), p) for p, ops in openapi["paths"].items() for m in ops}
    assert every - seen == set(), f"endpoints not exercised: {every - seen}"


async def test_422_field_errors_and_auth_shapes(server: LocalAbpServer) -> None:
    async with AbpClient(abp_config(server)) as client:
        with pytest.raises(AbpValidationError) as err:
            await client.place_orders([order(orderStake=0)])
        assert err.value.field_errors[0].loc == ("body", "orders", 0, "orderStake")
        with pytest.raises(ValueError):
            await client.place_orders([order() for _ in range(101)])
    async with AbpClient(abp_config(server, api_key="wrong")) as client:
        with pytest.raises(AbpAuthError) as err:
            await client.bookmakers()
        assert err.value.status == 401 and err.value.message == "Invalid or inactive API key"
    async with AbpClient(abp_config(server, api_key=None)) as client:
        with pytest.raises(AbpAuthError) as err:
            await client.bookmakers()
        assert err.value.status == 403 and "x-api-key" in err.value.message


@pytest.mark.parametrize("shape", ["r1", "r2", "text"])
async def test_409_bodies(server: LocalAbpServer, shape: str) -> None:
    server.venue._conflict_shape = shape
    body = order()
    async with AbpClient(abp_config(server)) as client:
        await client.place_orders([body])
        with pytest.raises(AbpConflict) as err:
            await client.place_orders([body])
    if shape == "text":
        assert err.value.duplicate_uuids == [] and "Duplicate" in err.value.message
    else:
        assert err.value.duplicate_uuids == [body["requestUuid"]]


async def test_429_burst_waits_retry_after(server: LocalAbpServer) -> None:
    server.faults.rate_limit, server.faults.retry_after = 2, 0.3
    async with AbpClient(abp_config(server)) as client:
        placed = await client.place_orders([order()])  # 429 is safe to retry even for placements
    assert placed.status == "accepted"
    times = [r["at"] for r in server.requests if r["path"] == "/place-orders"]
    assert len(times) == 3
    assert times[1] - times[0] >= 0.3 and times[2] - times[1] >= 0.3  # waited as told
    server.faults.rate_limit = 10
    async with AbpClient(abp_config(server, max_attempts=2)) as client:
        with pytest.raises(AbpRateLimited) as err:
            await client.bookmakers()
    assert err.value.retry_after == 0.3


async def test_5xx_and_timeouts_retried_only_when_safe(server: LocalAbpServer) -> None:
    async with AbpClient(abp_config(server)) as client:
        server.faults.fail_5xx = 2
        assert len(await client.bookmakers()) == 1  # GET: retried
        server.faults.fail_5xx = 1
        body = order()
        with pytest.raises(AbpUnavailable):
            await client.place_orders([body])  # placement: never resent by the client
        assert server.venue.orders(request_uuids=[body["requestUuid"]]) == []
        server.faults.drop_after_store = 1
        lost = order()
        with pytest.raises(AbpUnavailable):
            await client.place_orders([lost])
    assert len(server.venue.orders(request_uuids=[lost["requestUuid"]])) == 1  # stored, answer lost
    assert sum(1 for r in server.requests if r["path"] == "/place-orders") == 2


def test_error_text_normalisation() -> None:
    assert error_text({"error": "Invalid or inactive API key"}) == "Invalid or inactive API key"
    assert error_text({"detail": {"message": "API key is inactive", "code": "FORBIDDEN"}}) == "API key is inactive"
    assert error_text({"detail": [{"msg": "a"}, {"msg": "b"}]}) == "a; b"
    assert error_text("<html>bad gateway</html>") == "<html>bad gateway</html>"
    assert error_for(501, {"detail": "Futures order placement is not yet implemented"}).status == 501
    assert not isinstance(error_for(501, {}), AbpUnavailable)
    assert isinstance(error_for(503, {}), AbpUnavailable)


async def test_admin_faults_refuse_a_misspelt_or_invalid_fault(server: LocalAbpServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        typo = await http.post("/_admin/faults", json={"fail_5x": 2})
        assert typo.status_code == 422 and "fail_5x" in typo.text
        negative = await http.post("/_admin/faults", json={"rate_limit": -1})
        assert negative.status_code == 422 and "rate_limit" in negative.text
        assert server.faults.fail_5xx == 0 and server.faults.rate_limit == 0
        ok = await http.post("/_admin/faults", json={"fail_5xx": 2})
        assert ok.status_code == 200 and ok.json()["fail_5xx"] == 2 and server.faults.fail_5xx == 2
