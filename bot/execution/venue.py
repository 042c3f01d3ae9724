"""The venue interface the executor places through: ABP's order API, spoken in ABP's own JSON.

Both implementations (AbpVenue over HTTP + WebSocket, PaperVenue in-process) take and give ABP
wire dicts (docs/reference/abp.md §6-7, §13.5), so the executor has ONE parsing path, and malformed
venue data is caught, stored raw and reconciled in one place.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

RESYNC = "resync"
"""Pseudo channel: the stream lost messages (seq gap, reconnect); reconcile over REST."""


@dataclass(frozen=True, slots=True)
class VenueMessage:
    """One pushed update: `channel` is an ABP WS channel (orders, bets, settlements, balance,
    emergency, status, betslip, ...) or RESYNC; `payload` is the raw row as received."""

    channel: str
    event: str
    payload: Any


OnVenueMessage = Callable[[VenueMessage], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class PlaceReply:
    """The raw answer to a placement: HTTP status (200 accepted/partial, 400 all declined,
    409 all duplicates, 429 rate limited: not processed, 401/403 key refused) and the body as ABP
    sent it. `retry_after`: on a 429, the wait ABP asked for before the next try (seconds).
    `written_ns`: the tick-to-order stamp (bot/latency.py)."""

    status: int
    body: Any
    retry_after: float | None = None
    written_ns: int = 0  # time.perf_counter_ns() when the request's last byte was written; 0 unknown


@dataclass(frozen=True, slots=True)
class Recovery:
    """REST recovery of what the stream may have missed (docs/reference/abp.md §13.4, "Gaps"):
    every `interval_seconds`, the bets of orders created within the last `days`."""

    interval_seconds: float
    days: int


class VenueUnavailable(Exception):
    """No usable answer (timeout, connection error, 5xx): a placement's outcome is UNKNOWN."""


class VenueAuthError(VenueUnavailable):
    """401/403: the venue refused the key (docs/reference/abp.md §3); nothing was processed."""


class Venue(Protocol):
    """ABP's order API. Every method raises `VenueUnavailable` when the venue cannot answer
    (`VenueAuthError` when it refuses the key)."""

    name: str
    accepts_unmapped: bool  # orders without fixtureId/outcomeId (paper only)
    recovery: Recovery | None  # None: nothing can be missed (an in-process venue)

    async def connect(self, on_message: OnVenueMessage) -> None:
        """Start pushing updates to `on_message` (returns once subscribed)."""

    async def close(self) -> None: ...

    async def place_orders(self, orders: Sequence[dict[str, Any]]) -> PlaceReply:
        """POST /place-orders with 1..100 PlaceOrderRequest dicts (docs/reference/abp.md §6.2)."""

    async def find_orders(self, request_uuids: Sequence[str]) -> list[Any]:
        """GET /orders?requestUuids=... over all pages: raw enriched orders (with `bets`);
        an empty list when the venue knows none of them (ABP 404)."""

    async def find_bets(self, order_ids: Sequence[int]) -> list[Any]:
        """GET /bets?orderIds=... over all pages: raw bets (docs/reference/abp.md §6.5); an empty
        list when the venue has none (ABP 404)."""

    async def cancel_orders(self, request_uuids: Sequence[str]) -> list[Any]:
        """POST /cancel-orders: the raw cancelled orders."""

    async def cancel_all_orders(self) -> list[Any]:
        """POST /cancel-all-orders: the raw cancelled orders."""

    async def emergency_active(self) -> bool | None:
        """The venue's emergency state as last known (None: unknown, fail closed)."""
