"""MqttBus: publishes the bot's events and takes operator commands (docs/mqtt.md,
"Topics", "Envelope", "Commands").

`publish()` is synchronous and never blocks: it encodes and queues (bot.bus.outbox). A
background task owns the broker connection: it reconnects with jittered backoff, drains the
queue (messages raised while disconnected go out after the reconnect), answers commands and
publishes a retained heartbeat with the health figures. A last will marks the instance
offline on `{prefix}/{instance}/status`; `online` is published on every connect.

Every payload is masked (bot.config.secrets.mask_bytes: configured secrets in any encoding,
credential query parameters) by the sender just before it leaves, off the trading path
(docs/architecture.md, "Invariants > Secrets never leave"). Command nonces are kept in `state`
(the ledger; by default the controller's `ledger`, which the Engine has), so a command replayed
after a restart is refused too (bot/bus/auth.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

import aiomqtt
import orjson
from loguru import logger

from bot.bus.auth import CommandAuth, StateStore
from bot.bus.commands import CommandHandler, Controller
from bot.bus.config import MqttConfig
from bot.bus.connection import make_client, run_reconnecting
from bot.bus.envelope import SCHEMA_VERSION, dumps, envelope
from bot.bus.outbox import Outbox, OutMessage
from bot.bus.topics import CRITICAL_KINDS, RETAINED_KINDS, Topics, valid_level
from bot.clock import Clock
from bot.config.secrets import mask_bytes
from bot.types import Decision, Fill, OrderEvent, OrderUpdate, Settlement, Signal

_EVENT_KIND: dict[type, str] = {
    Signal: "signal", Decision: "decision", OrderUpdate: "order", Fill: "fill", Settlement: "settlement",
}


class MqttBus:
    """Args:
        config: the `mqtt:` section.
        instance: this bot's instance name (`{prefix}/{instance}/...`).
        clock: the engine clock (`at` of every envelope).
        state: where command nonces persist (the ledger); None: the controller's `ledger`
            attribute if it has one, else memory only (a restart forgets them).
    """

    def __init__(self, config: MqttConfig, *, instance: str, clock: Clock, state: StateStore | None = None) -> None:
        self._config = config
        self._clock = clock
        self._state = state
        self._topics = Topics(config.prefix, instance)
        self._outbox = Outbox(config.queue_size, config.critical_backlog_warn)
        self._commands: CommandHandler | None = None
        self._controller: Controller | None = None
        self._task: asyncio.Task[None] | None = None
        self._seq = 0
        self._in_flight = False
        self.connected = False
        self.sessions = 0
        self.connect_failures = 0
        self.published = 0
        self.invalid = 0

    @property
    def topics(self) -> Topics:
        return self._topics

    async def start(self, controller: Controller | None = None) -> None:
        """Start the background connection; returns at once (the broker may be down). With a
        `controller`, commands are subscribed to and answered."""
        if self._task is not None:
            return
        self._controller = controller
        if controller is not None:
            state = self._state if self._state is not None else _state_of(controller)
            if state is None:
                logger.warning("mqtt commands: no ledger for the nonce memory; a restart forgets it")
            auth = CommandAuth(self._config.command_token, instance=self._topics.instance,
                               max_age_s=self._config.command_max_age_s, store=state)
            self._commands = CommandHandler(controller, auth, self._topics, self._clock)
        self._task = asyncio.create_task(self._main(), name="mqtt-bus")

    async def stop(self, flush_timeout_s: float = 2.0) -> None:
        """Publish `offline`, give queued messages up to `flush_timeout_s` to leave while
        connected, then disconnect. Unsent messages are logged as lost."""
        if self._task is None:
            return
        self._outbox.put(self._status("offline"))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(flush_timeout_s):
                while self.connected and (len(self._outbox) or self._in_flight):
                    await asyncio.sleep(0.01)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if len(self._outbox):
            logger.error("mqtt bus stopped with {} messages unsent ({} critical)",
                         len(self._outbox), self._outbox.critical_depth)

    def publish(self, kind: str, payload: dict[str, Any], *, critical: bool = False,
                retain: bool = False) -> None:
        """Queue an event for `{prefix}/{instance}/{kind}`; never blocks, never raises.

        Kinds in topics.CRITICAL_KINDS (or `critical=True`) are never dropped; others are
        dropped oldest-first (and counted) when the queue is full. Kinds in
        topics.RETAINED_KINDS (or `retain=True`) are retained by the broker.
        """
        if not valid_level(kind):
            self.invalid += 1
            logger.error("mqtt publish refused: kind {!r} is not one topic level", kind)
            return
        self._seq += 1
        try:
            body = envelope(kind, self._topics.instance, self._seq, self._clock.now(), payload)
        except (orjson.JSONEncodeError, TypeError) as exc:
            self.invalid += 1
            logger.error("mqtt {} payload not encodable: {} ({!r:.200})", kind, exc, payload)
            return
        critical = critical or kind in CRITICAL_KINDS
        self._outbox.put(OutMessage(
            self._topics.event(kind), body, kind, critical,
            retain=retain or kind in RETAINED_KINDS,
            qos=self._config.qos if critical else 0,  # droppable: fire and forget
        ))

    def publish_event(self, event: Signal | Decision | OrderEvent) -> None:
        """Publish a pipeline message under its kind: Signal -> signal, Decision -> decision,
        OrderUpdate -> order, Fill -> fill (a new bet) or bet (a later change of a bet's status),
        Settlement -> settlement; payload `{kind: event}`."""
        kind = "bet" if isinstance(event, Fill) and not event.new_bet else _EVENT_KIND[type(event)]
        self.publish(kind, {kind: event})

    def health(self) -> dict[str, Any]:
        """Health figures (also the heartbeat's `bus` part)."""
        cmds = self._commands
        return {
            "connected": self.connected,
            "queue_depth": len(self._outbox),
            "critical_backlog": self._outbox.critical_depth,
            "critical_high_water": self._outbox.critical_high_water,
            "dropped": dict(self._outbox.dropped),
            "dropped_total": sum(self._outbox.dropped.values()),
            "published": self.published,
            "reconnects": max(0, self.sessions - 1),
            "connect_failures": self.connect_failures,
            "invalid": self.invalid,
            "commands_accepted": cmds.accepted if cmds else 0,
            "commands_refused": cmds.refused if cmds else 0,
        }

    # -- background ------------------------------------------------------------------------

    def _status(self, status: str) -> OutMessage:
        body = dumps({"v": SCHEMA_VERSION, "instance": self._topics.instance, "status": status,
                      "at": self._clock.now()})
        return OutMessage(self._topics.status, body, "status", critical=True, retain=True,
                          qos=self._config.qos)

    def _count_failure(self, _exc: BaseException) -> None:
        self.connect_failures += 1

    async def _main(self) -> None:
        await run_reconnecting(self._session, self._config, what="bus", on_failure=self._count_failure)

    async def _session(self) -> None:
        offline = self._status("offline")
        will = aiomqtt.Will(offline.topic, offline.payload, qos=offline.qos, retain=True)
        client = make_client(self._config, role="bus", instance=self._topics.instance, will=will)
        connected = False
        try:
            async with client:
                connected = True
                online = self._status("online")
                await client.publish(online.topic, online.payload, qos=online.qos, retain=True)
                if self._commands is not None:
                    await client.subscribe(self._topics.commands, qos=1)
                self.connected = True  # ready: commands are subscribed
                self.sessions += 1
                logger.info("mqtt bus connected to {}:{} (session {})",
                            self._config.host, self._config.port, self.sessions)
                workers = [self._send_loop(client), self._receive_loop(client)]
                if self._config.heartbeat_s > 0:
                    workers.append(self._heartbeat_loop())
                await _first_failure(workers)
        except (aiomqtt.MqttError, OSError) as exc:
            if not connected:
                raise
            logger.warning("mqtt bus connection lost: {}; {} messages queued", exc, len(self._outbox))
        finally:
            self.connected = False

    async def _send_loop(self, client: aiomqtt.Client) -> None:
        while True:
            msg = await self._outbox.get()
            self._in_flight = True
            try:
                await client.publish(msg.topic, mask_bytes(msg.payload), qos=msg.qos, retain=msg.retain,
                                     properties=msg.properties, timeout=self._config.timeout_s)
            except BaseException:
                self._outbox.put_back(msg)  # at-least-once: resent after the reconnect
                raise
            finally:
                self._in_flight = False
            self.published += 1

    async def _receive_loop(self, client: aiomqtt.Client) -> None:
        """Answer commands; also the watch that ends the session when the connection drops
        (the iterator raises MqttError), even when nothing is being sent."""
        async for message in client.messages:
            if self._commands is None:
                continue
            reply = await self._commands.handle(message)
            if reply is not None:
                self._outbox.put(reply)

    async def _heartbeat_loop(self) -> None:
        while True:
            beat: dict[str, Any] = {"bus": self.health()}
            if self._controller is not None:
                try:
                    beat["bot"] = self._controller.status()
                except Exception:  # noqa: BLE001 - a failing status() must not stop the heartbeat
                    logger.exception("controller.status() failed for the heartbeat")
            self.publish("heartbeat", beat)
            await asyncio.sleep(self._config.heartbeat_s)


def _state_of(controller: Controller) -> StateStore | None:
    """The controller's ledger (Engine.ledger) when it has one with get_state/set_state."""
    ledger = getattr(controller, "ledger", None)
    if callable(getattr(ledger, "get_state", None)) and callable(getattr(ledger, "set_state", None)):
        return ledger
    return None


async def _first_failure(coros: list[Coroutine[Any, Any, None]]) -> None:
    """Run `coros` until the first one raises; cancel the rest and re-raise it."""
    tasks = [asyncio.create_task(c) for c in coros]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        task.result()
