"""Operator commands received on `{prefix}/{instance}/cmd/{name}` (docs/mqtt.md, "Commands").

Each command is authenticated (bot.bus.auth), then run on the Controller and awaited before the
reply is queued, so a `halt` has taken effect when its reply leaves. The reply goes to the
request's MQTT v5 ResponseTopic with its CorrelationData when that topic is under the callers'
reply prefix `{prefix}/{instance}/reply/{client}/...`; a request naming any other topic is
refused (the bot never publishes where a sender points it), and refusals, like requests without
a ResponseTopic, are answered on `{prefix}/{instance}/cmd/{name}/reply`. Refused commands are
answered with the reason and logged (one line, no traceback); the Controller is not called.
"""

from __future__ import annotations

from typing import Any, Protocol

import aiomqtt
from loguru import logger
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bot.bus.auth import COMMANDS, HMAC_PROPERTY, CommandAuth, CommandRefused, user_property
from bot.bus.envelope import SCHEMA_VERSION, dumps
from bot.bus.outbox import OutMessage
from bot.bus.topics import Topics
from bot.clock import Clock


class Controller(Protocol):
    """What the bus asks of the engine (docs/mqtt.md, "Commands")."""

    async def halt(self, reason: str) -> None: ...
    async def resume(self) -> None: ...
    async def cancel_all(self) -> int: ...
    async def reload_params(self, strategy: str, params: dict) -> None: ...
    def status(self) -> dict: ...


class CommandHandler:
    def __init__(self, controller: Controller, auth: CommandAuth, topics: Topics, clock: Clock) -> None:
        self._controller = controller
        self._auth = auth
        self._topics = topics
        self._clock = clock
        self.accepted = 0
        self.refused = 0

    async def handle(self, message: aiomqtt.Message) -> OutMessage | None:
        """Authenticate and run one command; the reply to publish, or None for a retained
        message (a stale command left on the broker is ignored, never run)."""
        name = str(message.topic).rsplit("/", 1)[-1]
        if message.retain:
            logger.warning("mqtt command on {} ignored: retained message", message.topic)
            return None
        payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
        signature = user_property(message.properties, HMAC_PROPERTY)
        try:
            if name not in COMMANDS:
                raise CommandRefused(f"unknown command {name!r}; known: {', '.join(COMMANDS)}")
            requested = getattr(message.properties, "ResponseTopic", None)
            if requested is not None and not self._topics.reply_topic_ok(requested):
                raise CommandRefused(f"reply topic {requested!r:.200} refused: replies go only under "
                                     f"{self._topics.replies}/<client>/")
            args = self._auth.verify(name, payload, signature)
            result = await self._run(name, args)
        except CommandRefused as exc:
            self.refused += 1
            logger.warning("mqtt command {} refused: {} (payload {!r:.200})", name, exc.reason, payload)
            return self._reply(message, name, ok=False, error=exc.reason)
        except Exception as exc:  # noqa: BLE001 - the controller failed: answer, keep the bus running
            self.refused += 1
            logger.exception("mqtt command {} failed in the controller", name)
            return self._reply(message, name, ok=False, error=f"controller error: {exc!r:.300}")
        self.accepted += 1
        logger.info("mqtt command {} done: {!r:.300}", name, result)
        return self._reply(message, name, ok=True, result=result)

    async def _run(self, name: str, args: dict[str, Any]) -> Any:
        ctl = self._controller
        if name == "halt":
            reason = args.get("reason", "mqtt operator command")
            if not isinstance(reason, str):
                raise CommandRefused("args.reason must be a string")
            await ctl.halt(reason)
            return ctl.status()
        if name == "resume":
            await ctl.resume()
            return ctl.status()
        if name == "cancel-all":
            return {"cancelled": await ctl.cancel_all()}
        if name == "reload":
            strategy, params = args.get("strategy"), args.get("params")
            if not isinstance(strategy, str) or not isinstance(params, dict):
                raise CommandRefused("reload needs args.strategy (string) and args.params (object)")
            await ctl.reload_params(strategy, params)
            return {"strategy": strategy, "params": params}
        return ctl.status()

    def _reply(self, request: aiomqtt.Message, name: str, *, ok: bool, result: Any = None,
               error: str | None = None) -> OutMessage:
        req = request.properties
        requested = getattr(req, "ResponseTopic", None)
        topic = requested if requested and self._topics.reply_topic_ok(requested) else self._topics.reply(name)
        props = None
        correlation = getattr(req, "CorrelationData", None)
        if correlation is not None:
            props = Properties(PacketTypes.PUBLISH)
            props.CorrelationData = correlation
        body = {"v": SCHEMA_VERSION, "cmd": name, "ok": ok, "at": self._clock.now(),
                "instance": self._topics.instance, "result": result, "error": error}
        return OutMessage(topic, dumps(body), kind="reply", critical=True, properties=props)
