"""ABP WebSocket stream (ABP docs, WebSocket - Real-Time Updates; docs/reference/abp.md §13).

- `login` with the chosen channels (and reliable delivery) within the 30 s auth window;
- liveness: answers server pings and sends its own every `ws_ping_seconds` (a live server answers
  pong); no frame at all for `ws_dead_after_seconds` counts the connection dead: close, reconnect;
- `seq` (per subscription, strictly increasing, docs/reference/abp.md §13.3-13.4):
  - a re-send of a processed seq is acked again and dropped (at-least-once delivery);
  - a new `subscriptionId` restarts the expected seq; so does a first frame after a login numbered
    at or below what we processed (a server restart), then RESYNC "RENUMBERED" follows;
  - a gap holds the later frames, asks `replay` from the last contiguous seq and acks only
    contiguous seqs; frames are processed in order as the gap closes. A gap still open after
    `ws_gap_wait_seconds` (replay cannot fill it past the 100-message buffer) is skipped: the held
    frames are processed, acked, and RESYNC "GAP" makes the executor reconcile over REST;
- each processed seq is persisted in the ledger (`Ledger.set_state`, group-committed) and acked with
  `ack_batch`;
  after a reconnect `replay` asks for everything after it, and RESYNC "RECONNECT" follows;
- emergency state (docs/reference/abp.md §14, item 6): unknown (None, callers fail closed) while
  disconnected and after each login until an `emergency` or `status` frame tells it, or until
  `emergency_wait_seconds` pass (ABP sends `emergency` on a change, so silence means clear);
- every data frame reaches `on_message` with its channel and `event` unchanged (DELETE included);
- reconnects with jittered exponential backoff.
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
HELD_MAX = 2000
"""Out-of-order frames held while a gap waits for replay: the documented per-client output queue
(docs/reference/abp.md §13.7); reaching it skips the gap at once."""
CLOSE_TIMEOUT_SECONDS = 2.0
"""Closing handshake wait: a dead peer never answers it, so do not let it delay the reconnect."""
EMERGENCY_CHANNELS = ("emergency", "status")


class StreamLoginError(Exception):
    """The server refused the login or did not confirm it within the auth window."""


class StreamDead(Exception):
    """No frame (ping, pong, data...) for `ws_dead_after_seconds`."""


class AbpStream:
    """Pushes `VenueMessage`s to `on_message`; run with `start()` / `stop()`."""

    def __init__(self, config: AbpConfig, ledger: Ledger | None, on_message: OnVenueMessage) -> None:
        self._config = config
        self._ledger = ledger
        self._on_message = on_message
        state = (ledger.get_state(STATE_KEY) if ledger else None) or {}
        self.last_seq: int = int(state.get("seq", 0))  # last contiguous processed seq
        self._subscription: Any = state.get("subscription_id")
        self._emergency: bool | None = None
        self.emergency_known = asyncio.Event()  # set while `emergency` is True or False
        self.logged_in = asyncio.Event()
        self.logins = 0
        self.gaps = 0
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._held: dict[int, dict[str, Any]] = {}  # seq -> frame received past a gap
        self._gap_due: float | None = None  # loop time the open gap is given up
        self._emergency_due: float | None = None  # loop time silence means "no emergency"
        self._first_after_login = False

    @property
    def emergency(self) -> bool | None:
        """The venue's emergency state; None while unknown (fail closed)."""
        return self._emergency

    @emergency.setter
    def emergency(self, value: bool | None) -> None:
        self._emergency = value
        if value is None:
            self.emergency_known.clear()
        else:
            self.emergency_known.set()

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
            logins = self.logins
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except (OSError, WebSocketException, StreamLoginError, StreamDead, TimeoutError) as exc:
                logger.warning("ABP stream disconnected: {!r}", exc)
            except Exception:  # noqa: BLE001 - a bug must not end the stream for good: log, reconnect
                logger.exception("ABP stream failed; reconnecting")
            finally:
                self._disconnected()
            failures = 1 if self.logins > logins else failures + 1  # a session that logged in resets
            cap = min(self._config.ws_reconnect_max_seconds,
                      self._config.ws_reconnect_initial_seconds * 2 ** min(failures - 1, 10))
            await asyncio.sleep(cap * random.uniform(0.5, 1.0))

    def _disconnected(self) -> None:
        self.logged_in.clear()
        self.emergency = None  # unknown until the venue tells us again
        self._emergency_due = None
        self._ws = None
        if self._held:  # unacked, so replay after the reconnect re-sends them in order
            logger.info("ABP stream: dropping {} held frames past seq {}", len(self._held), self.last_seq)
        self._held.clear()
        self._gap_due = None

    async def _session(self) -> None:
        async with connect(self._config.ws_url, ping_interval=None, max_size=2**24, open_timeout=10,
                           close_timeout=CLOSE_TIMEOUT_SECONDS) as ws:
            await self._login(ws)
            pinger = asyncio.create_task(self._ping(ws))
            try:
                await self._consume(ws)
            finally:
                pinger.cancel()
                await asyncio.gather(pinger, return_exceptions=True)

    async def _login(self, ws: ClientConnection) -> None:
        key = self._config.api_key.get_secret_value() if self._config.api_key else ""
        await ws.send(orjson.dumps({
            "type": "login", "apiKey": key, "channels": list(self._config.ws_channels),
            "reliableDelivery": self._config.ws_reliable_delivery,
        }).decode())
        async with asyncio.timeout(self._config.ws_login_timeout_seconds):  # not wait_for: it can swallow a cancel on 3.11
            while True:
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
        self._first_after_login = True
        self._emergency_due = asyncio.get_running_loop().time() + self._config.emergency_wait_seconds
        if self._config.ws_reliable_delivery and self.last_seq:
            await self._send_replay(ws)
        self.logged_in.set()
        logger.info("ABP stream logged in (subscription {}, last seq {})", sub, self.last_seq)
        if self.logins > 1 or self.last_seq:
            await self._deliver(VenueMessage(RESYNC, "RECONNECT", {"lastSeq": self.last_seq}))

    async def _ping(self, ws: ClientConnection) -> None:
        while True:
            await asyncio.sleep(self._config.ws_ping_seconds)
            await ws.send('{"type":"ping"}')

    async def _consume(self, ws: ClientConnection) -> None:
        """Read frames until the connection ends or goes silent; run the gap and emergency
        timers in between (on this task, so they never interleave with a frame)."""
        loop = asyncio.get_running_loop()
        heard = loop.time()
        while True:
            await self._run_timers(ws, loop.time())
            dead_at = heard + self._config.ws_dead_after_seconds
            wake = min([dead_at, *(t for t in (self._gap_due, self._emergency_due) if t is not None)])
            try:
                async with asyncio.timeout_at(wake):
                    text = await ws.recv()  # cancel-safe: an interrupted recv loses no message
            except TimeoutError:
                if loop.time() >= dead_at:
                    raise StreamDead(f"no frame for {self._config.ws_dead_after_seconds} s") from None
                continue
            heard = loop.time()
            await self._frame(ws, text)

    async def _run_timers(self, ws: ClientConnection, now: float) -> None:
        if self._emergency_due is not None and now >= self._emergency_due:
            self._emergency_due = None
            self.emergency = False
            why = (f"no emergency frame within {self._config.emergency_wait_seconds} s: taking the emergency "
                   "state as clear (ABP sends emergency on a change)")
            logger.info(why)
            # told like a frame, so an emergency that ended while we were away ends in risk too
            await self._deliver(VenueMessage("emergency", "ASSUMED", {"active": False, "reason": why}))
        if self._gap_due is not None and now >= self._gap_due:
            await self._skip_gap(ws)

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
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1 or not isinstance(frame.get("channel"), str):
            self._store_bad(frame, "data frame without a positive integer seq / string channel")
            await self._deliver(VenueMessage(RESYNC, "BAD_FRAME", {}))
            return
        first, self._first_after_login = self._first_after_login, False
        if first and seq <= self.last_seq:  # the server restarted (and may have sent frames meanwhile)
            await self._renumbered(ws, frame)
        elif seq <= self.last_seq or seq in self._held:  # at-least-once delivery: a re-send
            await self._ack(ws)
        elif seq == self.last_seq + 1 or (self.last_seq == 0 and not self._held):  # 0: no baseline yet
            await self._process(frame)
            await self._drain_held()
            await self._ack(ws)
        else:
            await self._hold(ws, frame)

    async def _renumbered(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        """The first frame after a login is numbered at or below what we processed, under the same
        subscription: the server restarted its numbering, possibly sending frames while we were
        away. Processed (a re-sent row applies idempotently), then REST recovery fills the rest."""
        before = self.last_seq
        logger.warning("ABP stream seq {} after a login (last seq {}): renumbered", frame["seq"], before)
        self.last_seq = frame["seq"] - 1
        await self._process(frame)
        await self._ack(ws)
        await self._deliver(VenueMessage(RESYNC, "RENUMBERED", {
            "lastSeq": before, "seq": frame["seq"], "subscriptionId": self._subscription}))

    async def _hold(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        """Keep a frame received past a gap; the first one opens the gap and asks for replay."""
        self._held[frame["seq"]] = frame
        if _emergency_flag(frame["channel"], frame.get("payload")) is True:
            self.emergency = True  # fail closed now rather than after the gap
            self._emergency_due = None
        if len(self._held) >= HELD_MAX:
            logger.warning("ABP stream: {} frames held past seq {}: skipping the gap", len(self._held), self.last_seq)
            await self._skip_gap(ws)
        elif len(self._held) == 1:
            self.gaps += 1
            logger.warning("ABP stream gap: seq {} after {}", frame["seq"], self.last_seq)
            if not self._config.ws_reliable_delivery:  # no server buffer to replay from
                await self._skip_gap(ws)
                return
            self._gap_due = asyncio.get_running_loop().time() + self._config.ws_gap_wait_seconds
            await self._send_replay(ws)

    async def _drain_held(self) -> None:
        while self.last_seq + 1 in self._held:
            await self._process(self._held.pop(self.last_seq + 1))
        if self._gap_due is not None and not self._held:
            logger.info("ABP stream gap closed by replay at seq {}", self.last_seq)
            self._gap_due = None

    async def _skip_gap(self, ws: ClientConnection) -> None:
        """Replay did not fill the gap in time: process what we hold in order, ack past the gap,
        and have the executor fetch what was missed over REST."""
        before, held = self.last_seq, sorted(self._held)
        self._gap_due = None
        if not held:
            return
        for seq in held:
            await self._process(self._held.pop(seq))
        missing = held[-1] - before - len(held)
        logger.warning("ABP stream: {} messages after seq {} never arrived; reconciling over REST", missing, before)
        await self._ack(ws)
        await self._deliver(VenueMessage(RESYNC, "GAP", {"from": before, "to": held[0], "missing": missing}))

    async def _process(self, frame: dict[str, Any]) -> None:
        """Deliver one frame in seq order, then persist its seq (so a restart replays after it)."""
        channel, payload = frame["channel"], frame.get("payload")
        self._track_emergency(channel, payload)
        event = frame.get("event")
        await self._deliver(VenueMessage(channel, event if isinstance(event, str) else "", payload))
        self.last_seq = frame["seq"]
        if self._ledger is not None:
            # group-committed: a restart that finds an older seq replays or recovers the rest
            self._ledger.set_state(STATE_KEY, {"seq": self.last_seq, "subscription_id": self._subscription},
                                   defer=True)

    def _track_emergency(self, channel: str, payload: Any) -> None:
        if channel not in EMERGENCY_CHANNELS:
            return
        active = _emergency_flag(channel, payload)
        if active is None and channel == "emergency":
            self._store_bad(payload, "emergency frame without a boolean `active`")  # state left as it was
            return
        self._emergency_due = None
        if active is not None:
            self.emergency = active
        elif self.emergency is None:  # a status frame that reports no emergency
            self.emergency = False

    async def _send_replay(self, ws: ClientConnection) -> None:
        await ws.send(orjson.dumps({"type": "replay", "fromSeq": self.last_seq}).decode())

    async def _ack(self, ws: ClientConnection) -> None:
        """`ack_batch` up to the last contiguous processed seq (never past a gap)."""
        if self._config.ws_reliable_delivery and self.last_seq:
            await ws.send(orjson.dumps({"type": "ack_batch", "upToSeq": self.last_seq}).decode())

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


def _emergency_flag(channel: str, payload: Any) -> bool | None:
    """The emergency flag a frame carries, if any: `emergency` {active, reason, ts}; `status`
    {"emergency": {"active": bool}} or {"emergency": bool} (docs/reference/abp.md §13.2)."""
    if channel not in EMERGENCY_CHANNELS or not isinstance(payload, dict):
        return None
    if channel == "emergency":
        flag = payload.get("active")
    else:
        flag = payload.get("emergency")
        flag = flag.get("active") if isinstance(flag, dict) else flag
    return flag if isinstance(flag, bool) else None


def _loads(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
