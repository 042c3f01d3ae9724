"""MqttFeed: normalised odds from any external scraper over MQTT (a feed as in
bot/feeds/base.py; docs/mqtt.md, "Odds in").

Subscribes `mqtt.feed.topic` (default `{prefix}/odds/in`), or `$share/{group}/{topic}` when
`mqtt.feed.share_group` is set so several bot processes split the messages (MQTT v5 shared
subscription: the broker hands each message to one member of the group). Malformed payloads
are logged and counted, never fatal (a bad item of an array is dropped alone). An array message
is one `OddsBatch` (applied whole before strategies run, docs/architecture.md "Pipeline"), a
single item one `OddsUpdate`. Emits FeedStatus(connected=True) on every connect and
FeedStatus(connected=False, stale=True) when the connection drops.

Unless `mqtt.feed.require_signature` is false, a message is authenticated before it is even
parsed (docs/mqtt.md, "Odds in"): the `hmac` user property must be the HMAC-SHA256 of the payload
under `mqtt.feed.signing_key` (bot.bus.auth.verify_signature), else the whole message is refused
(`stats["refused"]`, logged on the 1st, 10th, 100th ... refusal) and nothing reaches the book.
Each item of a signed message must carry a `feed_time` within `mqtt.feed.max_age_s` of the wall
clock (`stats["stale"]`), so a captured message replayed later is dropped.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiomqtt
import orjson
from loguru import logger

from bot.bus.auth import HMAC_PROPERTY, CommandRefused, user_property, verify_signature
from bot.bus.config import MqttConfig
from bot.bus.connection import make_client, run_reconnecting
from bot.bus.odds_in import OddsPayloadError, decode_item
from bot.bus.topics import odds_topic
from bot.clock import Clock
from bot.latency import frame_received
from bot.types import FeedEvent, FeedStatus, OddsBatch, OddsUpdate

EmitFn = Callable[[FeedEvent], Awaitable[None]]  # as bot.feeds.base.EmitFn


class MqttFeed:
    """Args:
        config: the `mqtt:` section (`feed` for the topic and the signing rules).
        clock: the engine clock, stamps `received_at`.
        instance: the bot's instance name (client id).
        now: the wall clock in Unix seconds, for the age of signed odds.
    """

    def __init__(self, config: MqttConfig, clock: Clock, *, instance: str = "bot",
                 now: Callable[[], float] = time.time) -> None:
        self._config = config
        self._clock = clock
        self._instance = instance
        self._now = now
        self.name = config.feed.name
        self.topic = odds_topic(config.feed.topic, config.prefix)
        group = config.feed.share_group
        self.subscription = f"$share/{group}/{self.topic}" if group else self.topic
        self.stats = {"messages": 0, "updates": 0, "malformed": 0, "refused": 0, "stale": 0,
                      "emit_errors": 0, "sessions": 0}
        self.signed = config.feed.require_signature
        if not self.signed:
            logger.warning("mqtt feed {}: odds on {} are NOT signed (mqtt.feed.require_signature: false): "
                           "only the broker ACL stops a forged price", self.name, self.topic)

    async def run(self, emit: EmitFn) -> None:
        """Receive until cancelled, reconnecting with backoff."""

        async def session() -> None:
            await self._session(emit)

        await run_reconnecting(session, self._config, what="feed")

    async def _session(self, emit: EmitFn) -> None:
        client = make_client(self._config, role="feed", instance=self._instance)
        connected = False
        try:
            async with client:
                connected = True
                await client.subscribe(self.subscription, qos=self._config.feed.qos)
                self.stats["sessions"] += 1
                logger.info("mqtt feed {} subscribed to {}", self.name, self.subscription)
                await self._emit(emit, FeedStatus(self.name, self._clock.now(), connected=True, stale=False))
                async for message in client.messages:
                    await self._on_message(emit, message)
        except (aiomqtt.MqttError, OSError) as exc:
            if not connected:
                raise
            logger.warning("mqtt feed {} connection lost: {}", self.name, exc)
            await self._emit(emit, FeedStatus(self.name, self._clock.now(), connected=False,
                                              stale=True, detail=str(exc)[:200]))

    async def _on_message(self, emit: EmitFn, message: aiomqtt.Message) -> None:
        self.stats["messages"] += 1
        raw = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
        if self.signed:
            try:
                self._authenticate(raw, user_property(message.properties, HMAC_PROPERTY))
            except CommandRefused as exc:
                self._refused(message, raw, exc.reason)
                return
        try:
            decoded = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            self._malformed(message, raw, f"not JSON: {exc}")
            return
        items: list[Any] = decoded if isinstance(decoded, list) else [decoded]
        frame_received()  # the tick-to-order stamp (bot/latency.py)
        received_at = self._clock.now()
        updates: list[OddsUpdate] = []
        for index, item in enumerate(items):
            try:
                update = decode_item(item, source=self.name, received_at=received_at)
            except OddsPayloadError as exc:  # dropped alone: the rest of the message still applies
                self._malformed(message, orjson.dumps(item), f"item {index}: {exc}")
                continue
            if self.signed and (why := self._too_old(item, update)) is not None:
                self.stats["stale"] += 1
                logger.warning("mqtt feed {}: signed odds item {} on {} dropped ({}): {!r:.200}",
                               self.name, index, message.topic, why, orjson.dumps(item))
                continue
            updates.append(update)
        self.stats["updates"] += len(updates)
        if isinstance(decoded, list) and len(updates) > 1:  # one message, one step of the book
            await self._emit(emit, OddsBatch(self.name, received_at, tuple(updates)))
        elif updates:
            await self._emit(emit, updates[0])

    def _authenticate(self, raw: bytes, signature: object) -> None:
        key = self._config.feed.signing_key
        if key is None:
            raise CommandRefused("no mqtt.feed.signing_key configured: signed odds cannot be checked")
        verify_signature(key.get_secret_value(), raw, signature)

    def _too_old(self, item: Any, update: OddsUpdate) -> str | None:
        """Why a signed item is dropped as a possible replay, or None."""
        if not isinstance(item, dict) or item.get("feed_time") is None:
            return "signed odds need a feed_time"
        age = self._now() - update.feed_time.timestamp()
        limit = self._config.feed.max_age_s
        if abs(age) > limit:
            wall = datetime.fromtimestamp(self._now(), UTC).isoformat()
            return f"feed_time {age:.1f}s off the wall clock {wall} (max {limit:g}s)"
        return None

    def _refused(self, message: aiomqtt.Message, raw: bytes, reason: str) -> None:
        self.stats["refused"] += 1
        n = self.stats["refused"]
        if n == 1 or _power_of_ten(n):
            logger.warning("mqtt feed {}: odds on {} refused ({}; {} refused so far): {!r:.120}",
                           self.name, message.topic, reason, n, raw)

    def _malformed(self, message: aiomqtt.Message, raw: bytes, reason: str) -> None:
        self.stats["malformed"] += 1
        logger.warning("mqtt feed {}: malformed odds on {} ({}): {!r:.200}",
                       self.name, message.topic, reason, raw)

    async def _emit(self, emit: EmitFn, event: Any) -> None:
        try:
            await emit(event)
        except Exception:  # noqa: BLE001 - a downstream failure must not stop the feed
            self.stats["emit_errors"] += 1
            logger.exception("mqtt feed {}: emit failed for {!r:.200}", self.name, event)


def _power_of_ten(n: int) -> bool:
    while n >= 10 and n % 10 == 0:
        n //= 10
    return n == 1
