"""MM WebSocket: the `emergency` channel (55-Tech docs, "MM WebSocket - Real-Time Updates";
"Real-time Subscription (WebSocket)"; docs/reference/mm.md).

- connect to `/ws/subscribe` (no auth at connect), send `{"type": "subscribe", "api_key",
  "channels"}` at once (the server closes after 30 s without one) and wait for `subscribed`;
  an error (`api_key required`, `Invalid api_key format`, `Invalid API key`, `Connection limit
  exceeded`: MM WebSocket > Error messages) ends the attempt, logged and counted;
- keep-alive: `{"type": "ping"}` every `ws_ping_seconds` (30 s recommended), the server answers
  `pong` and sends `heartbeat` every 60 s; no frame for `ws_dead_after_seconds` counts the
  connection dead: close and reconnect;
- `broadcast` frames of channel `emergency` carry `{"emergency": bool, "reason", "triggeredAt"}`
  (MM WebSocket > Payload examples > Emergency status): each change of the flag is handed to
  `on_emergency(active, reason)`; a payload without a boolean `emergency` is logged and counted,
  the state unchanged;
- reconnect with jittered exponential backoff (`ws_reconnect_initial_seconds` doubling to
  `ws_reconnect_max_seconds`); a refused key waits the maximum;
- at most MAX_WS_CONNECTIONS (5, MM WebSocket > Connection limits) open connections per API key in
  this process: a sixth `MmStream.start` raises instead of connecting.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from loguru import logger
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from bot.execution.mm_config import MAX_WS_CONNECTIONS, MmConfig

OnEmergency = Callable[[bool, str], Awaitable[None]]
CLOSE_TIMEOUT_SECONDS = 2.0
AUTH_ERRORS = ("api_key required", "Invalid api_key format", "Invalid API key")
_open: Counter[str] = Counter()  # streams running per API key in this process


class MmSubscribeError(Exception):
    """The server refused the subscribe (an error frame) or did not confirm it in time."""


class MmStreamDead(Exception):
    """No frame (pong, heartbeat, broadcast) for `ws_dead_after_seconds`."""


class MmConnectionLimit(RuntimeError):
    """Starting one more stream would pass the documented 5 connections per API key."""


class MmStream:
    """Consumes the MM `emergency` channel; run with `start()` / `stop()`."""

    def __init__(self, config: MmConfig, on_emergency: OnEmergency, channels: tuple[str, ...] = ("emergency",)) -> None:
        self._config = config
        self._on_emergency = on_emergency
        self._channels = channels
        self._key = config.api_key.get_secret_value() if config.api_key is not None else ""
        self.emergency: bool | None = None  # last state the channel told; None: none told yet
        self.subscribed = asyncio.Event()
        self.subscriptions = 0
        self.stats: Counter[str] = Counter()  # errors, bad_frames, disconnects, auth_refused...
        self.last_error = ""
        self._task: asyncio.Task[None] | None = None

    async def start(self, wait_seconds: float | None = None) -> None:
        """Run in the background; wait up to `wait_seconds` (default: the subscribe timeout) for
        the first subscription. Does not raise when MM is unreachable: it keeps reconnecting.

        Raises:
            MmConnectionLimit: this key already has MAX_WS_CONNECTIONS streams in this process.
        """
        if self._task is not None:
            return
        if _open[self._key] >= MAX_WS_CONNECTIONS:
            raise MmConnectionLimit(f"MM allows {MAX_WS_CONNECTIONS} WebSocket connections per API key")
        _open[self._key] += 1
        self._task = asyncio.create_task(self.run(), name="mm-stream")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_seconds or self._config.ws_subscribe_timeout_seconds):
                await self.subscribed.wait()

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None
        _open[self._key] -= 1

    async def run(self) -> None:
        """Connect, subscribe, consume; reconnect forever with jittered backoff."""
        failures = 0
        while True:
            before = self.subscriptions
            refused = False
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except MmSubscribeError as exc:
                refused = any(text in str(exc) for text in AUTH_ERRORS)
                self.stats["auth_refused" if refused else "subscribe_failed"] += 1
                self.last_error = str(exc)[:300]
                logger.error("MM stream subscribe refused: {}", self.last_error)
            except (OSError, WebSocketException, MmStreamDead, TimeoutError) as exc:
                self.stats["disconnects"] += 1
                self.last_error = repr(exc)[:300]
                logger.warning("MM stream disconnected: {!r}", exc)
            except Exception:  # noqa: BLE001 - a bug must not end the stream for good: log, reconnect
                self.stats["errors"] += 1
                logger.exception("MM stream failed; reconnecting")
            finally:
                self.subscribed.clear()
            failures = 1 if self.subscriptions > before else failures + 1
            cfg = self._config
            cap = cfg.ws_reconnect_max_seconds if refused else min(
                cfg.ws_reconnect_max_seconds, cfg.ws_reconnect_initial_seconds * 2 ** min(failures - 1, 10))
            await asyncio.sleep(cap * random.uniform(0.5, 1.0))

    async def _session(self) -> None:
        async with connect(self._config.ws_url, ping_interval=None, open_timeout=10,
                           close_timeout=CLOSE_TIMEOUT_SECONDS) as ws:
            await self._subscribe(ws)
            pinger = asyncio.create_task(self._ping(ws))
            try:
                await self._consume(ws)
            finally:
                pinger.cancel()
                await asyncio.gather(pinger, return_exceptions=True)

    async def _subscribe(self, ws: ClientConnection) -> None:
        await ws.send(orjson.dumps({"type": "subscribe", "api_key": self._key,
                                    "channels": list(self._channels)}).decode())
        async with asyncio.timeout(self._config.ws_subscribe_timeout_seconds):
            while True:
                frame = _loads(await ws.recv())
                kind = frame.get("type") if isinstance(frame, dict) else None
                if kind == "subscribed":
                    break
                if kind == "error" or (isinstance(frame, dict) and "error" in frame):
                    raise MmSubscribeError(_error_text(frame))
                if kind == "broadcast":
                    await self._frame(ws, frame)
        self.subscriptions += 1
        self.subscribed.set()
        logger.info("MM stream subscribed (subscription {}, channels {})", frame.get("subscription_id"),
                    frame.get("channels"))

    async def _ping(self, ws: ClientConnection) -> None:
        while True:
            await asyncio.sleep(self._config.ws_ping_seconds)
            await ws.send('{"type":"ping"}')

    async def _consume(self, ws: ClientConnection) -> None:
        while True:
            try:
                async with asyncio.timeout(self._config.ws_dead_after_seconds):
                    text = await ws.recv()
            except TimeoutError:
                raise MmStreamDead(f"no frame for {self._config.ws_dead_after_seconds} s") from None
            await self._frame(ws, _loads(text))

    async def _frame(self, ws: ClientConnection, frame: Any) -> None:
        kind = frame.get("type") if isinstance(frame, dict) else None
        if kind == "broadcast":
            if frame.get("channel") == "emergency":
                await self._emergency(frame.get("payload"))
        elif kind == "ping":
            await ws.send('{"type":"pong"}')
        elif kind in ("pong", "heartbeat", "subscribed", "unsubscribed"):
            pass
        elif kind == "error":
            self.stats["error_frames"] += 1
            logger.warning("MM stream error frame: {:.300}", str(frame))
        else:
            self._bad(frame, f"unknown frame type {kind!r}")

    async def _emergency(self, payload: Any) -> None:
        flag = payload.get("emergency") if isinstance(payload, dict) else None
        if not isinstance(flag, bool):
            self._bad(payload, "emergency payload without a boolean `emergency`")
            return
        assert isinstance(payload, dict)
        reason = payload.get("reason")
        reason = reason if isinstance(reason, str) else ""
        if flag == self.emergency:
            return  # a repeat of the state is not news
        self.emergency = flag
        self.stats["emergency_on" if flag else "emergency_off"] += 1
        try:
            await self._on_emergency(flag, reason)
        except Exception:  # noqa: BLE001 - the consumer's failure must not kill the stream
            self.stats["errors"] += 1
            logger.exception("MM emergency consumer failed")

    def _bad(self, raw: Any, why: str) -> None:
        self.stats["bad_frames"] += 1
        logger.warning("MM stream: {}: {:.200}", why, repr(raw))


def _error_text(frame: Any) -> str:
    if not isinstance(frame, dict):
        return str(frame)[:300]
    for key in ("message", "error", "detail"):
        if isinstance(frame.get(key), str):
            return str(frame[key])
    return str(frame)[:300]


def _loads(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
