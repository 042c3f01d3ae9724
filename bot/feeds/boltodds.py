"""The live BoltOdds WebSocket feed (BoltOdds docs, Quick Start; docs/reference/boltodds.md §1-§4).

One session: connect to `{url}?key=...` (no frame-size limit: batched frames reach tens of
MiB), wait for `socket_connected`, send the subscription with the configured filters, then
decode every frame into events. A session ends on any connection error, a close, or
`dead_after_seconds` without a frame (the server pings every 15-20 s). The feed then emits
`FeedStatus(stale=True)` (the book stops trusting this feed's prices until the snapshot after
the resubscription re-sends them), waits a jittered exponential backoff (tenacity) and starts
a new session. A session that got data resets the backoff.

A poison value in a frame (docs/architecture.md, "Invariants > Nothing lost, nothing silent")
costs the one outcome that carries it (bot/feeds/boltodds_decode.py); should decoding a frame
raise anyway (a decoder bug), the frame is logged with its traceback and counted as
"decoder_error", and the session goes on. `run` can be called again after it ended (the engine
restarts a live feed that failed): it reopens the recorder the previous run closed.
"""

from __future__ import annotations

import asyncio
import random
from datetime import datetime
from urllib.parse import quote

import orjson
from loguru import logger
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_random_exponential
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, WebSocketException

from bot.clock import Clock
from bot.feeds.base import EmitFn, FeedStats, truncate
from bot.feeds.boltodds_decode import SOURCE, BoltOddsDecoder, BoltOddsStream
from bot.feeds.boltodds_rest import BoltOddsRest, BoltOddsRestError, unknown_filters
from bot.feeds.config import BoltOddsConfig
from bot.feeds.recording import Recorder
from bot.latency import frame_received
from bot.types import FeedEvent, FeedStatus

FILTERS = ("sports", "sportsbooks", "games", "markets")


class SessionLost(Exception):
    """The connection ended or went silent (the feed reconnects)."""


class _HealthyEnd(Exception):
    """A session that delivered data ended: reconnect with a fresh backoff."""


RECONNECT_ON = (OSError, asyncio.TimeoutError, WebSocketException, InvalidHandshake, SessionLost)


def subscribe_filters(config: BoltOddsConfig) -> dict[str, list[str]]:
    """The filters that are set (an absent filter means "all"; BoltOdds docs, Quick Start >
    Step 3)."""
    return {name: list(getattr(config, name)) for name in FILTERS if getattr(config, name)}


def subscribe_message(config: BoltOddsConfig) -> dict[str, object]:
    """`{"action": "subscribe", "filters": {...}}` with `subscribe_filters(config)`."""
    return {"action": "subscribe", "filters": subscribe_filters(config)}


class BoltOddsFeed:
    """BoltOdds over WebSocket; see the module docstring. `stats` counts frames, updates,
    reconnects and bad input; `subscriptions` counts subscribe messages sent."""

    name = SOURCE

    def __init__(self, config: BoltOddsConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.stats = FeedStats(SOURCE)
        self._stream = BoltOddsStream(BoltOddsDecoder(SOURCE, self.stats, config.max_frame_bytes))
        self._recorder: Recorder | None = None
        self.subscriptions = 0

    @property
    def _uri(self) -> str:
        return f"{self.config.url}?key={quote(self.config.api_key.get_secret_value(), safe='')}"

    async def run(self, emit: EmitFn) -> None:
        """Stream until cancelled, reconnecting forever."""
        if self.config.check_filters and any(getattr(self.config, f) for f in FILTERS):
            await self._warn_unknown_filters()
        if self.config.record_to and self._recorder is None:
            self._recorder = Recorder(self.config.record_to)
        try:
            while True:
                try:
                    async for attempt in self._retrying():
                        with attempt:
                            await self._session(emit)
                except _HealthyEnd:
                    # Jitter so a fleet of bots does not reconnect in the same instant.
                    await asyncio.sleep(random.uniform(0, self.config.reconnect_initial_seconds))
        finally:
            if self._recorder:
                self._recorder.close()
                self._recorder = None

    def _retrying(self) -> AsyncRetrying:
        return AsyncRetrying(
            wait=wait_random_exponential(
                multiplier=self.config.reconnect_initial_seconds, max=self.config.reconnect_max_seconds
            ),
            retry=retry_if_exception_type(RECONNECT_ON),
            before_sleep=self._log_retry,
            reraise=True,
        )

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        logger.warning("boltodds: connection failed ({}); retry {} in {:.1f} s",
                       truncate(exc), state.attempt_number, wait)

    async def _warn_unknown_filters(self) -> None:
        try:
            async with BoltOddsRest(self.config) as rest:
                await unknown_filters(self.config, rest)
        except BoltOddsRestError as exc:
            logger.warning("boltodds: could not check the filters against the API: {}", exc)

    async def _session(self, emit: EmitFn) -> None:
        got_data = False
        try:
            async with connect(self._uri, max_size=None, open_timeout=self.config.dead_after_seconds) as ws:
                ack = orjson.loads(await self._recv(ws))
                if not (isinstance(ack, dict) and ack.get("action") == "socket_connected"):
                    raise SessionLost(f"expected socket_connected, got {truncate(ack)}")
                await ws.send(orjson.dumps(subscribe_message(self.config)).decode())
                self.subscriptions += 1
                logger.info("boltodds: connected and subscribed ({} filters)", len(subscribe_filters(self.config)))
                while True:
                    frame = await self._recv(ws)
                    frame_received()  # the tick-to-order stamp (bot/latency.py)
                    received = self.clock.now()
                    if self._recorder:
                        self._recorder.write(received, SOURCE, frame)
                    for event in self._decode(frame, received):
                        await emit(event)
                    got_data = True
        except (*RECONNECT_ON, orjson.JSONDecodeError) as exc:
            self.stats["reconnects"] += 1
            now = self.clock.now()
            logger.warning("boltodds: session lost ({}); prices stale until the next snapshot", truncate(exc))
            if self._recorder:
                self._recorder.write(now, SOURCE, None, status="disconnected")
            await emit(FeedStatus(SOURCE, now, connected=False, stale=True, detail=truncate(exc, 120)))
            if got_data:
                raise _HealthyEnd from exc
            if isinstance(exc, orjson.JSONDecodeError):
                raise SessionLost("unreadable handshake") from exc
            raise

    def _decode(self, frame: str | bytes, received: datetime) -> list[FeedEvent]:
        """The frame's events; a decoder bug costs this frame only (see the module docstring)."""
        try:
            return self._stream.decode(frame, received)
        except Exception as exc:  # noqa: BLE001 - the decoder never raises on bad input; a bug must not end the feed
            self.stats["decoder_error"] += 1
            logger.opt(exception=exc).error("boltodds: frame could not be decoded ({}); frame: {}",
                                            truncate(exc), truncate(frame))
            return []

    async def _recv(self, ws: ClientConnection) -> str | bytes:
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that lands as a
        # frame arrives, and the bot would then not stop until the next dead-connection timeout.
        try:
            async with asyncio.timeout(self.config.dead_after_seconds):
                return await ws.recv()
        except TimeoutError:
            raise SessionLost(f"no frame for {self.config.dead_after_seconds:.0f} s") from None
