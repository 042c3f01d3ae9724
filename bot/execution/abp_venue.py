"""AbpVenue: the `Venue` protocol over ABP's REST API (AbpClient) and WebSocket (AbpStream)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from loguru import logger

from bot.clock import Clock
from bot.execution.abp_client import AbpClient
from bot.execution.abp_stream import AbpStream
from bot.execution.config import AbpConfig
from bot.execution.errors import AbpConflict, AbpError, AbpUnavailable
from bot.execution.venue import OnVenueMessage, PlaceReply, VenueUnavailable
from bot.ledger.store import Ledger


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

    async def connect(self, on_message: OnVenueMessage) -> None:
        if self._use_stream:
            self.stream = AbpStream(self._config, self._ledger, on_message)
            await self.stream.start()

    async def close(self) -> None:
        if self.stream is not None:
            await self.stream.stop()
        await self.client.aclose()

    async def place_orders(self, orders: Sequence[dict[str, Any]]) -> PlaceReply:
        try:
            result = await self.client.place_orders(orders)
        except AbpConflict as exc:
            return PlaceReply(409, exc.body)
        except AbpUnavailable as exc:
            raise VenueUnavailable(str(exc)) from exc
        except AbpError as exc:
            if exc.status is None:
                raise VenueUnavailable(str(exc)) from exc
            return PlaceReply(exc.status, exc.body)
        return PlaceReply(result.http_status, result.raw)

    async def find_orders(self, request_uuids: Sequence[str]) -> list[Any]:
        try:
            return await self.client.get_orders(request_uuids=list(request_uuids))
        except AbpError as exc:
            raise VenueUnavailable(str(exc)) from exc

    async def cancel_orders(self, request_uuids: Sequence[str]) -> list[Any]:
        try:
            return (await self.client.cancel_orders(request_uuids=list(request_uuids))).cancelled
        except AbpError as exc:
            raise VenueUnavailable(str(exc)) from exc

    async def cancel_all_orders(self) -> list[Any]:
        try:
            return (await self.client.cancel_all_orders()).cancelled
        except AbpError as exc:
            raise VenueUnavailable(str(exc)) from exc

    async def emergency_active(self) -> bool | None:
        """From the stream when it knows; else GET /status (R2); None (fail closed) if neither."""
        if self.stream is not None and self.stream.emergency is not None:
            return self.stream.emergency
        try:
            status = await self.client.system_status()
        except AbpError as exc:
            logger.warning("emergency state unknown: {}", exc)
            return None
        emergency = status.get("emergency")
        active = emergency.get("active") if isinstance(emergency, dict) else None
        if isinstance(active, bool) and self.stream is not None and self.stream.logged_in.is_set():
            self.stream.emergency = active
        return active if isinstance(active, bool) else None
