"""Async REST client of the 55-Tech MM API, read-only but for cancel-all (55-Tech docs, "MM API
Overview" > Endpoints at a glance, "MM Quickstart", "MM Error Handling", "MM Authentication";
our notes on what they leave out: docs/reference/mm.md).

- `X-API-Key` from a SecretStr on every request (MM Authentication > Client API authentication);
- a client-side budget of `mm.requests_per_minute` (at most the documented 100/min per key,
  MM Authentication > Rate limiting) with aiolimiter, shared by every request of this client;
- retries with tenacity on 5xx, timeouts and connection errors only, exponential backoff;
  a 4xx is never retried here. A 429 raises `MmRateLimited` at once: the caller backs off as
  the document asks (MM Error Handling > Rate limiting: "wait 1s, 2s, 4s, etc."), the poller by
  skipping polls (bot/execution/mm.py), cancel-all on the kill switch by retrying with that backoff;
- error bodies (MM Error Handling > Error response format): `{"detail": "..."}`, or for 422
  `{"detail": [{"loc", "msg", "type"}]}`; each status its own exception (401, 404, 422, 426, 429).

Amounts are Decimal, in the MM's currency (undocumented: `mm.currency`, docs/reference/mm.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Self

import httpx
import orjson
from aiolimiter import AsyncLimiter
from loguru import logger
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_exponential

from bot.execution.errors import FieldError, error_text
from bot.execution.mm_config import MmConfig

ZERO = Decimal(0)
# MM API Overview > Order lifecycle: orders still on the exchange (List open orders: "PLACED or PENDING_PLACEMENT")
OPEN_ORDER_STATUSES = frozenset({"PENDING_PLACEMENT", "PLACED", "PARTIAL"})


class MmError(Exception):
    """An MM request failed. `status` is the HTTP status (None: no response), `body` the raw body,
    `message` the normalised error text (never the API key)."""

    def __init__(self, message: str, status: int | None = None, body: Any = None) -> None:
        super().__init__(f"{status or '-'} {message}")
        self.status = status
        self.body = body
        self.message = message


class MmUnavailable(MmError):
    """No usable answer after retries: timeout, connection error or 5xx."""


class MmProtocolError(MmError):
    """A success status with a body we cannot read (not JSON, wrong shape)."""


class MmAuthError(MmError):
    """401: invalid or missing API key, or not a UUID (MM Authentication > Error responses)."""


class MmNotFound(MmError):
    """404: the resource does not exist."""


class MmValidationError(MmError):
    """422: request parameters failed validation; `field_errors` from the `detail` list."""

    def __init__(self, message: str, status: int | None = None, body: Any = None) -> None:
        super().__init__(message, status, body)
        detail = body.get("detail") if isinstance(body, dict) else None
        self.field_errors: list[FieldError] = [
            FieldError(tuple(d.get("loc") or ()), str(d.get("msg", "")), str(d.get("type", "")))
            for d in (detail if isinstance(detail, list) else []) if isinstance(d, dict)
        ]


class MmUpgradeRequired(MmError):
    """426: the WebSocket endpoint was called over plain HTTP."""


class MmRateLimited(MmError):
    """429: over 100 requests/minute. The caller waits 1 s, 2 s, 4 s... before trying again."""


def mm_error_for(status: int, body: Any) -> MmError:
    """The exception for a non-success status (MM Error Handling > HTTP status codes)."""
    text = error_text(body)
    kinds: dict[int, type[MmError]] = {401: MmAuthError, 404: MmNotFound, 422: MmValidationError,
                                       426: MmUpgradeRequired, 429: MmRateLimited}
    if status in kinds:
        return kinds[status](text, status, body)
    if status >= 500:
        return MmUnavailable(text, status, body)
    return MmError(text, status, body)


class MmModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow", frozen=True)


class MmIdentity(MmModel):
    """GET /api/v1/me (MM Quickstart > Step 1)."""

    client: str
    client_name: str | None = None
    active: bool | None = None


class MmOrder(MmModel):
    """An exchange order (MM Quickstart > Step 2, its documented fields). Stakes in MM currency."""

    order_id: int
    fixture_id: str
    outcome_id: int | None = None
    exchange: str
    order_status: str
    matched_status: str | None = None
    order_stake: Decimal = Field(ge=0)
    matched_stake: Decimal = Field(ZERO, ge=0)
    settlement_status: str | None = None

    @property
    def open_stake(self) -> Decimal:
        """The part still on the exchange (unmatched)."""
        return max(self.order_stake - self.matched_stake, ZERO)


class MmPosition(MmModel):
    """A position: the orders of one fixture/outcome/exchange (MM docs, List positions: "total
    stake, matched stake, and open stake"). The field names are not documented; ours follow the
    order's (`matchedStake`), docs/reference/mm.md."""

    fixture_id: str
    outcome_id: int | None = None
    exchange: str
    matched_stake: Decimal = Field(ge=0)
    open_stake: Decimal | None = Field(None, ge=0)
    total_stake: Decimal | None = Field(None, ge=0)


def _rows(body: Any, *keys: str) -> list[Any]:
    """A list answer, bare or under one of `keys` (a paginated envelope)."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for key in keys:
            if isinstance(body.get(key), list):
                return list(body[key])
    raise MmProtocolError(f"expected a list (or {'/'.join(keys)}), got {str(body)[:200]}", 200, body)


def _parse(model: type[MmModel], rows: Sequence[Any], what: str) -> list[Any]:
    """Every row or none: exposure built from some of the rows would be too low (fail closed)."""
    out = []
    for i, row in enumerate(rows):
        try:
            out.append(model.model_validate(row))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise MmProtocolError(f"{what}[{i}]: {where}: {first.get('msg')}: {str(row)[:200]}", 200, row) from None
    return out


class MmClient:
    """MM REST endpoints. Every method raises `MmError` subclasses. Use as an async context
    manager or call `aclose()`."""

    def __init__(self, config: MmConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        headers = {"accept": "application/json"}
        if config.api_key is not None:
            headers["x-api-key"] = config.api_key.get_secret_value()
        self._config = config
        self._http = httpx.AsyncClient(base_url=config.base_url.rstrip("/"), headers=headers,
                                       timeout=config.timeout_seconds, transport=transport)
        self._limiter = AsyncLimiter(config.requests_per_minute, 60)
        self._backoff = wait_exponential(multiplier=config.backoff_initial_seconds, max=config.backoff_max_seconds)
        self.requests = 0  # sent, retries included
        self.errors: dict[str, int] = {}  # by exception class name

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- transport ---------------------------------------------------------------------------

    async def _request(self, method: str, path: str, params: dict[str, Any] | None = None) -> Any:
        """Send within the budget; retry 5xx/timeouts; return the parsed 2xx body."""

        def log_retry(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            logger.warning("MM {} {} retry {} after {}", method, path, state.attempt_number, exc)

        retrying = AsyncRetrying(retry=retry_if_exception_type(MmUnavailable),
                                 stop=stop_after_attempt(self._config.max_attempts),
                                 wait=self._backoff, before_sleep=log_retry, reraise=True)
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._once(method, path, clean)
        except MmError as exc:
            name = type(exc).__name__
            self.errors[name] = self.errors.get(name, 0) + 1
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _once(self, method: str, path: str, params: dict[str, Any]) -> Any:
        async with self._limiter:
            self.requests += 1
            try:
                response = await self._http.request(method, path, params=params)
            except httpx.TimeoutException as exc:
                raise MmUnavailable(f"timeout: {exc!r}") from exc
            except httpx.TransportError as exc:
                raise MmUnavailable(f"connection error: {exc!r}") from exc
        body: Any = None
        if response.content:
            try:
                body = orjson.loads(response.content)
            except orjson.JSONDecodeError:
                body = response.text[:2000]
        if 200 <= response.status_code < 300:
            if body is None or isinstance(body, str):
                raise MmProtocolError("no JSON body", response.status_code, body)
            return body
        raise mm_error_for(response.status_code, body)

    # -- endpoints (MM API Overview > Endpoints at a glance) -----------------------------------

    async def me(self) -> MmIdentity:
        """GET /api/v1/me: who the key belongs to (MM Quickstart > Step 1)."""
        body = await self._request("GET", "/api/v1/me")
        try:
            return MmIdentity.model_validate(body)
        except ValidationError:
            raise MmProtocolError(f"/api/v1/me: unreadable {str(body)[:200]}", 200, body) from None

    async def open_orders(self, fixture_id: str | None = None) -> list[MmOrder]:
        """GET /api/v1/orders/open: every open order of the client, not paginated (List open orders)."""
        body = await self._request("GET", "/api/v1/orders/open", {"fixture_id": fixture_id})
        return _parse(MmOrder, _rows(body, "orders", "items", "data"), "/api/v1/orders/open")

    async def positions(self, status: str = "matched") -> list[MmPosition]:
        """GET /api/v1/positions?status=...: aggregated positions (List positions; `status` one or
        more of open, matched, filled, cancelled, active, comma-separated)."""
        body = await self._request("GET", "/api/v1/positions", {"status": status})
        return _parse(MmPosition, _rows(body, "positions", "items", "data"), "/api/v1/positions")

    async def pnl(self, from_date: str | None = None, to_date: str | None = None) -> dict[str, Any]:
        """GET /api/v1/pnl (Get profit and loss; dates YYYY-MM-DD). Its shape is not documented:
        returned as parsed."""
        body = await self._request("GET", "/api/v1/pnl", {"from_date": from_date, "to_date": to_date})
        if not isinstance(body, dict):
            raise MmProtocolError(f"/api/v1/pnl: expected an object, got {str(body)[:200]}", 200, body)
        return body

    async def cancel_all(self, exchange: str | None = None, fixture_id: str | None = None) -> Any:
        """POST /api/v1/orders/cancel-all (Cancel all open orders; optional `exchange`,
        `fixture_id`). Safe to repeat: what is cancelled stays cancelled, so 5xx/timeouts retry."""
        return await self._request("POST", "/api/v1/orders/cancel-all",
                                   {"exchange": exchange, "fixture_id": fixture_id})
