"""`bot mqtt ...`: send an authenticated command and print the reply; watch an instance's
events (docs/mqtt.md, "Commands"). Mounted by bot/cli.py.

Broker, credentials, prefix, command token and instance come from `-c/--config` (default
config.yaml, environment overrides applied), the same config `bot run` is given; a bad config
stops with its one-line errors and exit code 2."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from bot.config.options import DEFAULT_CONFIG, ConfigOpt, load_or_exit

if TYPE_CHECKING:
    from rich.console import Console

    from bot.bus.config import MqttConfig

app = typer.Typer(help="MQTT bus: operator commands and event watching.", no_args_is_help=True)

InstanceOpt = typer.Option(None, help="target instance (default: the config's `instance`)")
# bot.bus.auth.COMMANDS, spelled out: importing it loads loguru and pydantic for `bot --help`
# (tests/test_cli_imports.py holds the two equal)
COMMANDS_HELP = "halt | resume | cancel-all | reload | status"


@cache
def _console() -> Console:
    from rich.console import Console

    return Console()


def _load(config: Path, instance: str | None) -> tuple[MqttConfig, str]:
    settings = load_or_exit(config)
    return settings.mqtt, instance or settings.instance


async def send_command(config: MqttConfig, instance: str, command: str, args: dict[str, Any],
                       timeout_s: float) -> dict[str, Any]:
    """Sign and send `command` to `instance`; the reply body. Raises TimeoutError when none
    comes within `timeout_s`, aiomqtt.MqttError when the broker is unreachable."""
    import asyncio
    import uuid

    import orjson
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    from bot.bus.auth import HMAC_PROPERTY, build_command
    from bot.bus.connection import make_client
    from bot.bus.topics import Topics

    if config.command_token is None:
        raise ValueError("mqtt.command_token is not configured: commands cannot be signed")
    payload, signature = build_command(config.command_token.get_secret_value(), command=command,
                                       instance=instance, args=args)
    topics = Topics(config.prefix, instance)
    # the caller's own reply prefix (docs/mqtt.md, "Commands"): the bot answers nowhere else
    response_topic = f"{topics.reply_for(config.username or 'cli')}/{uuid.uuid4().hex}"
    correlation = uuid.uuid4().bytes
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = response_topic
    props.CorrelationData = correlation
    props.UserProperty = (HMAC_PROPERTY, signature)
    async with make_client(config, role="cli", instance=instance) as client:
        await client.subscribe(response_topic, qos=1)
        await client.publish(topics.command(command), payload, qos=1, properties=props)
        async with asyncio.timeout(timeout_s):
            async for message in client.messages:
                if getattr(message.properties, "CorrelationData", None) == correlation:
                    return orjson.loads(message.payload)
    raise TimeoutError  # unreachable: the iterator only ends by raising


@app.command()
def send(
    command: str = typer.Argument(..., help=COMMANDS_HELP),
    args: str = typer.Option("{}", "--args", help='JSON object, e.g. \'{"reason": "manual"}\''),
    reason: str | None = typer.Option(None, help="shortcut for halt's args.reason"),
    config: ConfigOpt = DEFAULT_CONFIG,
    instance: str | None = InstanceOpt,
    timeout: float = typer.Option(10.0, help="seconds to wait for the reply"),
) -> None:
    """Send an HMAC-signed command and print the reply (exit 1 when refused, 3 on no reply)."""
    import asyncio

    import aiomqtt
    import orjson

    from bot.bus.auth import COMMANDS

    console = _console()
    if command not in COMMANDS:
        console.print(f"[red]unknown command {command!r}; known: {', '.join(COMMANDS)}[/red]")
        raise typer.Exit(2)
    try:
        parsed = orjson.loads(args)
    except orjson.JSONDecodeError as exc:
        console.print(f"[red]--args is not JSON: {exc}[/red]")
        raise typer.Exit(2) from None
    if not isinstance(parsed, dict):
        console.print("[red]--args must be a JSON object[/red]")
        raise typer.Exit(2)
    if reason is not None:
        parsed["reason"] = reason
    mqtt, target = _load(config, instance)
    try:
        reply = asyncio.run(send_command(mqtt, target, command, parsed, timeout))
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    except TimeoutError:
        console.print(f"[red]no reply from {target} within {timeout:g}s[/red]")
        raise typer.Exit(3) from None
    except aiomqtt.MqttError as exc:
        console.print(f"[red]broker {mqtt.host}:{mqtt.port}: {exc}[/red]")
        raise typer.Exit(3) from None
    console.print_json(orjson.dumps(reply).decode())
    if not reply.get("ok"):
        raise typer.Exit(1)


@app.command()
def watch(
    config: ConfigOpt = DEFAULT_CONFIG,
    instance: str | None = InstanceOpt,
    count: int = typer.Option(0, help="stop after this many messages (0: until Ctrl-C)"),
) -> None:
    """Print every message under {prefix}/{instance}/ (topic and JSON body)."""
    import asyncio

    import aiomqtt

    from bot.bus.connection import make_client
    from bot.bus.topics import Topics

    console = _console()
    mqtt, target = _load(config, instance)

    async def run() -> None:
        seen = 0
        async with make_client(mqtt, role="watch", instance=target) as client:
            await client.subscribe(f"{Topics(mqtt.prefix, target).base}/#", qos=1)
            async for message in client.messages:
                console.print(f"[bold]{message.topic}[/bold] {bytes(message.payload).decode(errors='replace')}")
                seen += 1
                if count and seen >= count:
                    return

    try:
        asyncio.run(run())
    except aiomqtt.MqttError as exc:
        console.print(f"[red]broker {mqtt.host}:{mqtt.port}: {exc}[/red]")
        raise typer.Exit(3) from None
