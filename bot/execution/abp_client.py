"""Async REST client of the 55-Tech ABP API (docs/reference/abp.md §5-§6; R1 schema in
tests/data/abp/abp-openapi.json).

One keep-alive `httpx.AsyncClient`, and for POST /place-orders the placement lane (its own
keep-alive connections, bot/execution/order_lane.py; `abp.order_lane`); `x-api-key` from a
SecretStr; client-side pacing with aiolimiter; retries with tenacity:
- 429 is always retried (the request was refused before processing), waiting `Retry-After`
  (header), else `retry_after` (body), else exponential backoff (docs/reference/abp.md §2);
- timeouts, connection errors and 5xx are retried only for safe requests (GET, PATCH, cancels);
  POST /place-orders and POST /accounts are never resent here: a lost placement is the
  executor's to resolve by requestUuid (docs/reference/abp.md §8.4);
- POST /place-orders has its own, shorter timeout (`place_timeout_seconds`) and a deadline (the
  batch's earliest expiresAt): a 429 wait that would end past it is not waited, so no order
  leaves after its expiry.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Self

import httpx
import orjson
from aiolimiter import AsyncLimiter
from loguru import logger
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception
from tenacity.wait import wait_exponential

from bot.execution.config import AbpConfig
from bot.execution.errors import (
    AbpNotFound,
    AbpProtocolError,
    AbpRateLimited,
    AbpUnavailable,
    error_for,
)
from bot.execution.models import (
    AbpBet,
    Account,
    AccountCreate,
    AccountUpdate,
    Betslip,
    Bookmaker,
    CancelOrdersResult,
    Market,
    PlaceOrdersResult,
    Pnl,
    Positions,
)
from bot.execution.order_lane import LaneError, LaneTimeout, OrderLane

Trace = Callable[[str, dict[str, Any]], Awaitable[None]]
"""A request trace: (event, info), httpcore's events; the placement lane reports one,
"lane.send_request_body.complete" with info {"written_ns": its write stamp}, once answered."""

MAX_ORDERS_PER_REQUEST = 100  # docs/reference/abp.md §6.2


def _retry_after(headers: Mapping[str, str], body: Any) -> float | None:
    for raw in (headers.get("retry-after"), body.get("retry_after") if isinstance(body, dict) else None):
        try:
            if raw is not None:
                return max(0.0, float(raw))
        except (TypeError, ValueError):
            continue
    return None


def _csv(values: Sequence[Any] | None) -> str | None:
    return None if not values else ",".join(str(v) for v in values)


class AbpClient:
    """ABP REST endpoints. Every method raises `AbpError` subclasses (bot/execution/errors.py):
    `AbpUnavailable` for no usable answer, `AbpRateLimited` once retries are exhausted, and the
    4xx kinds. Use as an async context manager or call `aclose()`."""

    def __init__(self, config: AbpConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        headers = {"accept": "application/json"}
        if config.api_key is not None:
            headers["x-api-key"] = config.api_key.get_secret_value()
        self._config = config
        self._http = httpx.AsyncClient(
            base_url=config.base_url.rstrip("/"),
            headers=headers,
            timeout=config.timeout_seconds,
            transport=transport,
            limits=httpx.Limits(max_keepalive_connections=10, keepalive_expiry=60),
        )
        # The placement lane unless a test injects a transport or the environment names a proxy
        # for the URL (httpx honours those; the lane speaks to the origin directly).
        proxied = urllib.request.getproxies().get(config.base_url.partition(":")[0])
        self._lane = (OrderLane(config.base_url, headers, connect_timeout=config.place_timeout_seconds)
                      if config.order_lane and transport is None and not proxied else None)
        self._limiter = AsyncLimiter(1, 1 / config.requests_per_second)
        self._backoff = wait_exponential(
            multiplier=config.backoff_initial_seconds, max=config.backoff_max_seconds
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._lane is not None:
            await self._lane.aclose()
        await self._http.aclose()

    # -- transport ---------------------------------------------------------------------------

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, AbpRateLimited) and exc.retry_after is not None:
            return exc.retry_after
        return float(self._backoff(state))

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        safe: bool,
        timeout: float | None = None,
        deadline: float | None = None,
        trace: Trace | None = None,
    ) -> tuple[int, Any]:
        """Send with pacing and retries; return (status, parsed body) for 2xx and for
        place-orders' all-declined 400. Raises the AbpError for anything else.

        `timeout` overrides the client's (seconds); `deadline` (epoch seconds): no retry starts
        after it, and none whose wait would end past it; `trace` receives httpcore's request
        events (the tick-to-order stamp)."""

        def retryable(exc: BaseException) -> bool:
            return isinstance(exc, AbpRateLimited) or (safe and isinstance(exc, AbpUnavailable))

        def stop(state: RetryCallState) -> bool:
            if state.attempt_number >= self._config.max_attempts:
                return True
            # tenacity computes the wait before asking stop (upcoming_sleep)
            return deadline is not None and time.time() + state.upcoming_sleep > deadline

        def log_retry(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            logger.warning("ABP {} {} retry {} after {}", method, path, state.attempt_number, exc)

        retrying = AsyncRetrying(
            retry=retry_if_exception(retryable),
            wait=self._wait,
            stop=stop,
            before_sleep=log_retry,
            reraise=True,
        )
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        async for attempt in retrying:
            with attempt:
                return await self._once(method, path, clean, json, timeout, trace)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _once(
        self, method: str, path: str, params: dict[str, Any], json: Any, timeout: float | None = None,
        trace: Trace | None = None,
    ) -> tuple[int, Any]:
        async with self._limiter:
            content = None if json is None else orjson.dumps(json)
            if self._lane is not None and method == "POST" and path == "/place-orders" and content is not None:
                status, headers, raw = await self._via_lane(path, content, timeout, trace)
            else:
                status, headers, raw = await self._via_httpx(method, path, params, content, timeout, trace)
        body: Any = None
        if raw:
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                body = raw[:2000].decode("utf-8", "replace")
        if 200 <= status < 300:
            if body is None and status != 204:
                raise AbpProtocolError("empty body", status, body)
            return status, body
        if status == 400 and path == "/place-orders" and isinstance(body, dict) and "declinedOrders" in body:
            return status, body  # all declined: a normal answer (docs/reference/abp.md §6.2)
        raise error_for(status, body, _retry_after(headers, body))

    async def _via_httpx(
        self, method: str, path: str, params: dict[str, Any], content: bytes | None, timeout: float | None,
        trace: Trace | None,
    ) -> tuple[int, Mapping[str, str], bytes]:
        headers = None if content is None else {"content-type": "application/json"}
        try:
            response = await self._http.request(
                method, path, params=params, content=content, headers=headers,
                timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
                extensions=None if trace is None else {"trace": trace},
            )
        except httpx.TimeoutException as exc:
            raise AbpUnavailable(f"timeout: {exc!r}") from exc
        except httpx.TransportError as exc:
            raise AbpUnavailable(f"connection error: {exc!r}") from exc
        return response.status_code, response.headers, response.content

    async def _via_lane(
        self, path: str, content: bytes, timeout: float | None, trace: Trace | None
    ) -> tuple[int, Mapping[str, str], bytes]:
        assert self._lane is not None
        try:
            answer = await self._lane.post(path, content, self._config.timeout_seconds if timeout is None else timeout)
        except LaneTimeout as exc:
            raise AbpUnavailable(f"timeout: {exc}") from exc
        except LaneError as exc:
            raise AbpUnavailable(f"connection error: {exc}") from exc
        if trace is not None:
            await trace("lane.send_request_body.complete", {"written_ns": answer.written_ns})
        return answer.status, answer.headers, answer.content

    async def _get(self, path: str, **params: Any) -> Any:
        return (await self._request("GET", path, params=params, safe=True))[1]

    # -- accounts (docs/reference/abp.md §6.6) -------------------------------------------------

    async def list_accounts(self, bookmaker: str | None = None) -> list[Account]:
        return [Account.model_validate(a) for a in _list(await self._get("/accounts", bookmaker=bookmaker))]

    async def get_account(self, bookmaker: str, username: str) -> Account:
        return Account.model_validate(await self._get(f"/accounts/{bookmaker}/{username}"))

    async def create_account(self, account: AccountCreate) -> Account:
        """Raises AbpConflict if the bookmaker+username pair exists."""
        body = account.model_dump(by_alias=True)
        return Account.model_validate((await self._request("POST", "/accounts", json=body, safe=False))[1])

    async def update_account(self, bookmaker: str, username: str, update: AccountUpdate) -> Account:
        body = update.model_dump(by_alias=True, exclude_unset=True)
        _, data = await self._request("PATCH", f"/accounts/{bookmaker}/{username}", json=body, safe=True)
        return Account.model_validate(data)

    async def delete_account(self, bookmaker: str, username: str) -> None:
        await self._request("DELETE", f"/accounts/{bookmaker}/{username}", safe=True)

    # -- odds and catalogue --------------------------------------------------------------------

    async def betslip(
        self,
        fixture_id: str,
        outcome_id: int,
        player_id: int = 0,
        bookmakers: Sequence[str] | None = None,
    ) -> Betslip:
        """Live odds and effective limits (docs/reference/abp.md §6.1); also opens a 60 s betslip subscription."""
        data = await self._get(
            "/betslip", fixtureId=fixture_id, outcomeId=outcome_id, playerId=player_id,
            bookmakers=_csv(bookmakers),
        )
        return Betslip.model_validate(data)

    async def bookmakers(self) -> list[Bookmaker]:
        return [Bookmaker.model_validate(b) for b in _list(await self._get("/bookmakers"))]

    async def markets(self, sport_id: int | None = None) -> list[Market]:
        return [Market.model_validate(m) for m in _list(await self._get("/markets", sportId=sport_id))]

    async def markets_rows(self, sport_id: int | None = None) -> list[dict[str, Any]]:
        """GET /markets as raw rows (for the instrument mapper, which reads `oddsTypes`)."""
        return [m for m in _list(await self._get("/markets", sportId=sport_id)) if isinstance(m, dict)]

    async def positions(
        self, group_by: str = "bookmaker", *, bookmaker: str | None = None,
        user_ref: str | None = None, account: str | None = None,
    ) -> Positions:
        return Positions.model_validate(
            await self._get("/positions", groupBy=group_by, bookmaker=bookmaker, userRef=user_ref, account=account)
        )

    async def pnl(
        self, group_by: str = "bookmaker", *, bookmaker: str | None = None,
        user_ref: str | None = None, account: str | None = None,
    ) -> Pnl:
        return Pnl.model_validate(
            await self._get("/pnl", groupBy=group_by, bookmaker=bookmaker, userRef=user_ref, account=account)
        )

    # -- orders (docs/reference/abp.md §6.2-6.4) -----------------------------------------------

    async def place_orders(
        self, orders: Sequence[dict[str, Any]], *, deadline: datetime | None = None
    ) -> PlaceOrdersResult:
        """POST /place-orders with 1..100 PlaceOrderRequest bodies (camelCase dicts), with the
        `place_timeout_seconds` timeout. A 429 is retried (it was not processed) only while the
        wait ends before `deadline` (the batch's earliest expiresAt).

        Returns the result for 200 (accepted / partial-success) and 400 (all declined).
        Raises:
            ValueError: 0 or more than 100 orders.
            AbpConflict: 409, every order a duplicate; read `duplicate_uuids`.
            AbpRateLimited: 429 on the last try: nothing was placed.
            AbpUnavailable: timeout, connection error or 5xx: the outcome is unknown.
            AbpValidationError: 422, see `field_errors`.
        """
        if not 1 <= len(orders) <= MAX_ORDERS_PER_REQUEST:
            raise ValueError(f"place-orders takes 1..{MAX_ORDERS_PER_REQUEST} orders, got {len(orders)}")
        written = 0

        async def trace(event: str, info: dict[str, Any]) -> None:  # httpcore's request trace, or the lane's
            nonlocal written
            if event.endswith("send_request_body.complete"):
                written = info.get("written_ns") or time.perf_counter_ns()  # the lane stamps its own write

        status, body = await self._request(
            "POST", "/place-orders", json={"orders": list(orders)}, safe=False,
            timeout=self._config.place_timeout_seconds,
            deadline=None if deadline is None else deadline.timestamp(), trace=trace,
        )
        if not isinstance(body, dict):
            raise AbpProtocolError("place-orders answer is not an object", status, body)
        return PlaceOrdersResult(
            http_status=status,
            status=body.get("status") if isinstance(body.get("status"), str) else None,
            accepted_orders=_list(body.get("acceptedOrders")),
            declined_orders=_list(body.get("declinedOrders")),
            raw=body,
            written_ns=written,
        )

    async def cancel_orders(
        self,
        *,
        order_ids: Sequence[int] | None = None,
        request_uuids: Sequence[str] | None = None,
        user_ref: str | None = None,
    ) -> CancelOrdersResult:
        """Cancel by any of the filters (OR). A 404 (nothing matched) gives an empty result.

        Raises:
            ValueError: no filter given.
        """
        body: dict[str, Any] = {}
        if order_ids:
            body["orderIds"] = [int(i) for i in order_ids]
        if request_uuids:
            body["requestUuids"] = list(request_uuids)
        if user_ref:
            body["userRef"] = user_ref
        if not body:
            raise ValueError("cancel_orders needs orderIds, requestUuids or userRef")
        try:
            _, data = await self._request("POST", "/cancel-orders", json=body, safe=True)
        except AbpNotFound as exc:
            return CancelOrdersResult(status="not-found", raw=exc.body)
        return _cancel_result(data)

    async def cancel_all_orders(self) -> CancelOrdersResult:
        _, data = await self._request("POST", "/cancel-all-orders", safe=True)
        return _cancel_result(data)

    async def iter_orders(
        self,
        *,
        order_ids: Sequence[int] | None = None,
        request_uuids: Sequence[str] | None = None,
        user_ref: str | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every matching order (raw dicts, newest first), following `nextCursor` over all pages.
        Nothing matching (404) yields nothing."""
        if not (order_ids or request_uuids or user_ref):
            raise ValueError("GET /orders needs orderIds, requestUuids or userRef")
        params = {"orderIds": _csv(order_ids), "requestUuids": _csv(request_uuids), "userRef": user_ref}
        async for item in self._pages("/orders", "orders", "afterOrderId", params):
            yield item

    async def get_orders(self, **filters: Any) -> list[dict[str, Any]]:
        """All pages of `iter_orders` as a list."""
        return [o async for o in self.iter_orders(**filters)]

    async def iter_bets(
        self,
        *,
        bet_ids: Sequence[int] | None = None,
        order_ids: Sequence[int] | None = None,
        user_ref: str | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every matching bet (raw dicts, betId desc) over all pages; 404 yields nothing."""
        if not (bet_ids or order_ids or user_ref):
            raise ValueError("GET /bets needs betIds, orderIds or userRef")
        params = {"betIds": _csv(bet_ids), "orderIds": _csv(order_ids), "userRef": user_ref}
        async for item in self._pages("/bets", "bets", "afterBetId", params):
            yield item

    async def get_bets(self, **filters: Any) -> list[dict[str, Any]]:
        return [b async for b in self.iter_bets(**filters)]

    async def get_bet(self, bet_id: int) -> AbpBet:
        """Raises AbpNotFound if the bet is missing or not ours."""
        return AbpBet.model_validate(await self._get(f"/bets/{int(bet_id)}"))

    async def system_status(self) -> dict[str, Any]:
        """GET /status [R2]: system status including the emergency state (unauthenticated)."""
        data = await self._get("/status")
        if not isinstance(data, dict):
            raise AbpProtocolError("/status answer is not an object", 200, data)
        return data

    async def _pages(
        self, path: str, key: str, cursor_param: str, params: dict[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        cursor: int | None = None
        seen: set[int] = set()
        while True:
            try:
                page = await self._get(path, **params, limit=self._config.page_limit, **{cursor_param: cursor})
            except AbpNotFound:
                return
            if not isinstance(page, dict):
                raise AbpProtocolError(f"{path} answer is not an object", 200, page)
            for item in _list(page.get(key)):
                yield item
            nxt = page.get("nextCursor")
            if not page.get("hasMore") or nxt is None:
                return
            if nxt in seen:  # a server repeating a cursor would loop forever
                raise AbpProtocolError(f"{path} repeated cursor {nxt}", 200, page)
            seen.add(nxt)
            cursor = nxt


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _cancel_result(data: Any) -> CancelOrdersResult:
    if not isinstance(data, dict):
        raise AbpProtocolError("cancel answer is not an object", 200, data)
    nc = data.get("notCancelled")
    nc_orders = _list(nc.get("orders")) if isinstance(nc, dict) else _list(nc)
    count = data.get("cancelledCount")
    return CancelOrdersResult(
        status=data.get("status") if isinstance(data.get("status"), str) else None,
        cancelled_count=count if isinstance(count, int) else len(_list(data.get("cancelled"))),
        cancelled=_list(data.get("cancelled")),
        not_cancelled=nc_orders,
        not_cancelled_reason=nc.get("reason") if isinstance(nc, dict) else None,
        raw=data,
    )

