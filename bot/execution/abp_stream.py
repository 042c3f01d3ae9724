"""ABP WebSocket stream (ABP docs, WebSocket - Real-Time Updates; docs/reference/abp.md §13).

- `login` with the chosen channels (and reliable delivery) within the 30 s auth window;
- answers server pings, sends its own ping every `ws_ping_seconds` (30 s);
- tracks `seq`: a duplicate is acked and dropped, a gap emits RESYNC (reconcile over REST);
- reliable delivery: each message is processed, then its seq is persisted in the ledger
  (`Ledger.set_state`) and acked with `ack_batch`; after a reconnect `replay` asks for everything
  after the last persisted seq, and RESYNC is emitted because replay cannot fill a gap past the
  100-message buffer (docs/reference/abp.md §13.4);
- reconnects with jittered exponential backoff; the emergency state is unknown (None) while
  disconnected, so callers fail closed (docs/reference/abp.md §14, item 6).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any

import orjson
from loguru import logger
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from bot.execution.config import AbpConfig
from bot.execution.venue import RESYNC, OnVenueMessage, VenueMessage
from bot.ledger.store import Ledger

STATE_KEY = "abp.stream"


class StreamLoginError(Exception):
    """The server refused the login or did not confirm it within the auth window."""


class AbpStream:
    """Pushes `VenueMessage`s to `on_message`; run with `start()` / `stop()`."""

    def __init__(self, config: AbpConfig, ledger: Ledger | None, on_message: OnVenueMessage) -> None:
        self._config = config
        self._ledger = ledger
        self._on_message = on_message
        state = (ledger.get_state(STATE_KEY) if ledger else None) or {}
        self.last_seq: int = int(state.get("seq", 0))
        self._subscription: Any = state.get("subscription_id")
        self.emergency: bool | None = None
        self.logged_in = asyncio.Event()
        self.logins = 0
        self.gaps = 0
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, wait_seconds: float | None = None) -> None:
        """Run in the background; wait up to `wait_seconds` (default: login timeout) for the
        first login. Does not raise if the venue is unreachable: it keeps reconnecting."""
        self._task = asyncio.create_task(self.run(), name="abp-stream")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_seconds or self._config.ws_login_timeout_seconds):
                await self.logged_in.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def run(self) -> None:
        """Connect, log in, consume; reconnect forever with jittered backoff."""
        failures = 0
        while True:
            try:
                await self._session()
                failures = 0
            except asyncio.CancelledError:
                raise
            except (OSError, WebSocketException, StreamLoginError, TimeoutError) as exc:
                logger.warning("ABP stream disconnected: {!r}", exc)
            finally:
                self.logged_in.clear()
                self.emergency = None  # unknown until the venue tells us again
                self._ws = None
            failures += 1
            cap = min(self._config.ws_reconnect_max_seconds,
                      self._config.ws_reconnect_initial_seconds * 2 ** min(failures - 1, 10))
            await asyncio.sleep(cap * random.uniform(0.5, 1.0))

    async def _session(self) -> None:
        async with connect(self._config.ws_url, ping_interval=None, max_size=2**24, open_timeout=10) as ws:
            await self._login(ws)
            pinger = asyncio.create_task(self._ping(ws))
            try:
                async for text in ws:
                    await self._frame(ws, text)
            finally:
                pinger.cancel()

    async def _login(self, ws: ClientConnection) -> None:
        key = self._config.api_key.get_secret_value() if self._config.api_key else ""
        await ws.send(orjson.dumps({
            "type": "login", "apiKey": key, "channels": list(self._config.ws_channels),
            "reliableDelivery": self._config.ws_reliable_delivery,
        }).decode())
        deadline = self._config.ws_login_timeout_seconds
        while True:
            async with asyncio.timeout(deadline):  # not wait_for: it can swallow a cancel on 3.11
                frame = _loads(await ws.recv())
            kind = frame.get("type") if isinstance(frame, dict) else None
            if kind == "login_ok":
                break
            if kind == "error":
                raise StreamLoginError(str(frame)[:300])
        sub = frame.get("subscriptionId")
        if self._subscription is not None and sub != self._subscription:
            logger.info("new stream subscription {} (was {}): seq restarts", sub, self._subscription)
            self.last_seq = 0
        self._subscription = sub
        self._ws = ws
        self.logins += 1
        if self._config.ws_reliable_delivery and self.last_seq:
            await ws.send(orjson.dumps({"type": "replay", "fromSeq": self.last_seq}).decode())
        self.logged_in.set()
        logger.info("ABP stream logged in (subscription {}, last seq {})", sub, self.last_seq)
        if self.logins > 1 or self.last_seq:
            await self._deliver(VenueMessage(RESYNC, "RECONNECT", {"lastSeq": self.last_seq}))

    async def _ping(self, ws: ClientConnection) -> None:
        while True:
            await asyncio.sleep(self._config.ws_ping_seconds)
            await ws.send('{"type":"ping"}')

    async def _frame(self, ws: ClientConnection, text: str | bytes) -> None:
        frame = _loads(text)
        if not isinstance(frame, dict):
            self._store_bad(text, "not a JSON object")
            return
        kind = frame.get("type")
        if kind == "ping":
            await ws.send('{"type":"pong"}')
        elif kind == "data":
            await self._data(ws, frame)
        elif kind in ("pong", "heartbeat", "channels_updated", "subscribed_betslip", "unsubscribed_betslip"):
            logger.debug("ABP stream {}", kind)
        elif kind == "error":
            logger.warning("ABP stream error frame: {:.300}", str(frame))
        else:
            self._store_bad(frame, f"unknown frame type {kind!r}")

    async def _data(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        seq = frame.get("seq")
        channel, event = frame.get("channel"), frame.get("event")
        if not isinstance(seq, int) or not isinstance(channel, str):
            self._store_bad(frame, "data frame without integer seq / channel")
            await self._deliver(VenueMessage(RESYNC, "BAD_FRAME", {}))
            return
        if seq <= self.last_seq:  # at-least-once delivery: already processed
            await self._ack(ws, frame, self.last_seq)
            return
        gap = self.last_seq and seq > self.last_seq + 1
        if channel == "emergency" and isinstance(frame.get("payload"), dict):
            self.emergency = bool(frame["payload"].get("active"))
        await self._deliver(VenueMessage(channel, str(event), frame.get("payload")))
        if gap:
            self.gaps += 1
            logger.warning("ABP stream gap: seq {} after {}; reconciling over REST", seq, self.last_seq)
            await self._deliver(VenueMessage(RESYNC, "GAP", {"from": self.last_seq, "to": seq}))
        self.last_seq = seq
        if self._ledger is not None:
            self._ledger.set_state(STATE_KEY, {"seq": seq, "subscription_id": self._subscription})
        await self._ack(ws, frame, seq)

    async def _ack(self, ws: ClientConnection, frame: dict[str, Any], seq: int) -> None:
        if frame.get("requireAck") or self._config.ws_reliable_delivery:
            await ws.send(orjson.dumps({"type": "ack_batch", "upToSeq": seq}).decode())

    async def _deliver(self, msg: VenueMessage) -> None:
        try:
            await self._on_message(msg)
        except Exception:  # noqa: BLE001 - the consumer's failure must not kill the stream
            logger.exception("stream consumer failed on {} {}", msg.channel, msg.event)

    def _store_bad(self, raw: Any, why: str) -> None:
        logger.warning("ABP stream: {}: {:.200}", why, repr(raw))
        if self._ledger is not None:
            self._ledger.append_event("ws.bad_frame", {"error": why, "raw": raw if not isinstance(raw, bytes) else raw.decode(errors="replace")})

    # -- control messages (R2) ----------------------------------------------------------------------

    async def send(self, message: dict[str, Any]) -> None:
        """Send a control message on the live connection.

        Raises:
            ConnectionError: not logged in.
        """
        if self._ws is None or not self.logged_in.is_set():
            raise ConnectionError("ABP stream is not connected")
        await self._ws.send(orjson.dumps(message).decode())

    async def subscribe_betslip(
        self, fixture_id: str, outcome_id: int, player_id: int, bookmakers: list[str], ttl: int = 60
    ) -> None:
        """Live betslip odds on the `betslip` channel for `ttl` s (10..3600), docs/reference/abp.md §13.6."""
        if not bookmakers:
            raise ValueError("subscribe_betslip needs a non-empty bookmakers list")
        await self.send({"type": "subscribe_betslip", "fixtureId": fixture_id, "outcomeId": outcome_id,
                         "playerId": player_id, "bookmakers": list(bookmakers), "ttl": min(max(ttl, 10), 3600)})

    async def unsubscribe_betslip(self, fixture_id: str, outcome_id: int, player_id: int) -> None:
        await self.send({"type": "unsubscribe_betslip", "fixtureId": fixture_id, "outcomeId": outcome_id,
                         "playerId": player_id})

    async def update_channels(self, channels: list[str]) -> None:
        await self.send({"type": "update_channels", "channels": list(channels)})


def _loads(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
