"""AbpVenue: the `Venue` protocol over ABP's REST API (AbpClient) and WebSocket (AbpStream).

Errors become the venue's terms: no usable answer -> `VenueUnavailable`; 401/403 ->
`VenueAuthError` (a placement answers it as PlaceReply(401/403) instead: nothing was created);
409 and 429 on a placement are PlaceReplys (both mean "not placed by this request").
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from loguru import logger

from bot.clock import Clock
from bot.execution.abp_client import AbpClient
from bot.execution.abp_stream import AbpStream
from bot.execution.config import AbpConfig
from bot.execution.errors import AbpAuthError, AbpConflict, AbpError, AbpRateLimited, AbpUnavailable
from bot.execution.venue import OnVenueMessage, PlaceReply, Recovery, VenueAuthError, VenueUnavailable
from bot.ledger.store import Ledger

EMERGENCY_WAIT_SLACK_SECONDS = 1.0  # beyond the stream's own wait: a login in progress


def _venue_error(exc: AbpError) -> VenueUnavailable:
    return VenueAuthError(str(exc)) if isinstance(exc, AbpAuthError) else VenueUnavailable(str(exc))


def earliest_expiry(orders: Sequence[dict[str, Any]]) -> datetime | None:
    """The earliest `expiresAt` of a batch (None if no order carries a readable one)."""
    found = []
    for order in orders:
        raw = order.get("expiresAt")
        if not isinstance(raw, str):
            continue
        try:
            at = datetime.fromisoformat(raw)
        except ValueError:
            logger.warning("order {} has an unreadable expiresAt {!r}", order.get("requestUuid"), raw)
            continue
        found.append(at if at.tzinfo else at.replace(tzinfo=UTC))  # ABP times are UTC
    return min(found, default=None)


class AbpVenue:
    """Live ABP. `stream=False` runs REST only (updates then come from reconciliation)."""

    name = "abp"
    accepts_unmapped = False

    def __init__(
        self, config: AbpConfig, ledger: Ledger | None, *, stream: bool = True, clock: Clock | None = None
    ) -> None:
        """`clock` is accepted for symmetry with PaperVenue; ABP judges expiry on its own clock."""
        self.client = AbpClient(config)
        self._config = config
        self._ledger = ledger
        self._use_stream = stream
        self.stream: AbpStream | None = None
        self.recovery: Recovery | None = Recovery(config.recovery_interval_seconds, config.recovery_days)

    async def connect(self, on_message: OnVenueMessage) -> None:
        if self._use_stream:
            self.stream = AbpStream(self._config, self._ledger, on_message)
            await self.stream.start()

    async def close(self) -> None:
        if self.stream is not None:
            await self.stream.stop()
        await self.client.aclose()

    async def place_orders(self, orders: Sequence[dict[str, Any]]) -> PlaceReply:
        """POST /place-orders; a 429 is not waited out past the batch's earliest expiresAt."""
        try:
            result = await self.client.place_orders(orders, deadline=earliest_expiry(orders))
        except AbpConflict as exc:
            return PlaceReply(409, exc.body)
        except AbpRateLimited as exc:
            return PlaceReply(429, exc.body, exc.retry_after)
        except AbpUnavailable as exc:
            raise VenueUnavailable(str(exc)) from exc
        except AbpError as exc:
            if exc.status is None:
                raise VenueUnavailable(str(exc)) from exc
            return PlaceReply(exc.status, exc.body)
        return PlaceReply(result.http_status, result.raw, written_ns=result.written_ns)

    async def find_orders(self, request_uuids: Sequence[str]) -> list[Any]:
        try:
            return await self.client.get_orders(request_uuids=list(request_uuids))
        except AbpError as exc:
            raise _venue_error(exc) from exc

    async def find_bets(self, order_ids: Sequence[int]) -> list[Any]:
        try:
            return await self.client.get_bets(order_ids=list(order_ids))
        except AbpError as exc:
            raise _venue_error(exc) from exc

    async def cancel_orders(self, request_uuids: Sequence[str]) -> list[Any]:
        try:
            return (await self.client.cancel_orders(request_uuids=list(request_uuids))).cancelled
        except AbpError as exc:
            raise _venue_error(exc) from exc

    async def cancel_all_orders(self) -> list[Any]:
        try:
            return (await self.client.cancel_all_orders()).cancelled
        except AbpError as exc:
            raise _venue_error(exc) from exc

    async def emergency_active(self) -> bool | None:
        """The venue's emergency state; None (fail closed) while unknown. After a (re)connect the
        stream knows it from the first emergency/status frame, or takes it as clear
        `emergency_wait_seconds` after login (docs/architecture.md "Live venue"), so an order
        waits for that (bounded) rather than being declined. GET /status is asked only with
        `status_endpoint`: it is not in the ABP documents."""
        stream = self.stream
        if stream is not None and stream.emergency is not None:
            return stream.emergency
        if self._config.status_endpoint:
            active = await self._status_emergency()
            if active is not None:
                return active
        if stream is None:
            return None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._config.emergency_wait_seconds + EMERGENCY_WAIT_SLACK_SECONDS):
                await stream.emergency_known.wait()
        return stream.emergency

    async def _status_emergency(self) -> bool | None:
        try:
            status = await self.client.system_status()
        except AbpError as exc:
            logger.warning("emergency state unknown: GET /status failed: {}", exc)
            return None
        emergency = status.get("emergency")
        active = emergency.get("active") if isinstance(emergency, dict) else emergency
        return active if isinstance(active, bool) else None
