"""Broker connection shared by the bus, the odds feed and the CLI: client construction
(credentials, TLS, MQTT v5) and the reconnect loop with jittered exponential backoff.

The loop never blocks the event loop: aiomqtt connects in an executor thread and the backoff
sleeps are `asyncio.sleep`.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import ssl
from collections.abc import Awaitable, Callable

import aiomqtt
from loguru import logger
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_random_exponential

from bot.bus.config import MqttConfig

CONNECT_ERRORS = (aiomqtt.MqttError, OSError)


def tls_context(config: MqttConfig) -> ssl.SSLContext | None:
    """The SSL context for `config.tls`, or None when TLS is off. Raises OSError/ssl.SSLError
    when a certificate file cannot be read."""
    tls = config.tls
    if not tls.enabled:
        return None
    ctx = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
    if tls.cert_file is not None and tls.key_file is not None:
        ctx.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    if tls.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def make_client(
    config: MqttConfig, *, role: str, instance: str, will: aiomqtt.Will | None = None
) -> aiomqtt.Client:
    """An MQTT v5 client for one connection attempt (aiomqtt clients are not reusable after a
    lost connection). The client id is `config.client_id`-`role`, or a random unique one."""
    base = config.client_id or f"{config.prefix}-{instance}"
    identifier = f"{base}-{role}-{secrets.token_hex(3)}"
    return aiomqtt.Client(
        config.host,
        config.port,
        username=config.username,
        password=config.password.get_secret_value() if config.password else None,
        identifier=identifier,
        protocol=aiomqtt.ProtocolVersion.V5,
        will=will,
        keepalive=config.keepalive_s,
        timeout=config.timeout_s,
        tls_context=tls_context(config),
        tls_insecure=config.tls.insecure if config.tls.enabled else None,
    )


async def run_reconnecting(
    session: Callable[[], Awaitable[None]],
    config: MqttConfig,
    *,
    what: str,
    on_failure: Callable[[BaseException], None] | None = None,
) -> None:
    """Run `session` until cancelled.

    `session` connects and works; it raises (MqttError / OSError) when the connect fails, and
    returns once a connected session has been lost. Failed connects are retried after a random
    wait between `reconnect_min_s / 2` and an exponential ceiling (`reconnect_min_s` doubling up
    to `reconnect_max_s`); the backoff starts over after every session that did connect.
    """

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if exc is not None and on_failure is not None:
            on_failure(exc)
        logger.warning(
            "mqtt {} connect to {}:{} failed (attempt {}): {}; retry in {:.2f}s",
            what, config.host, config.port, state.attempt_number, exc,
            state.next_action.sleep if state.next_action else 0.0,
        )

    while True:
        retrying = AsyncRetrying(
            wait=wait_random_exponential(
                multiplier=config.reconnect_min_s,
                max=config.reconnect_max_s,
                min=config.reconnect_min_s / 2,
            ),
            retry=retry_if_exception_type(CONNECT_ERRORS),
            before_sleep=before_sleep,
            sleep=asyncio.sleep,
        )
        try:
            await retrying(session)
        except Exception:  # noqa: BLE001 - a bug, not the network: log it and start over, never go silent
            logger.exception("mqtt {} session crashed; restarting in {}s", what, config.reconnect_max_s)
            await asyncio.sleep(config.reconnect_max_s)
            continue
        # a session that connected then dropped: pause a jittered moment before reconnecting
        await asyncio.sleep(random.uniform(0, config.reconnect_min_s))
