"""A real Mosquitto broker on a free loopback port, killed after the test; it can be stopped
and restarted on the same port (the reconnect test)."""

from __future__ import annotations

import asyncio
import getpass
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import aiomqtt
import orjson
import pytest
from loguru import logger
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import SecretStr

from bot.bus.auth import sign
from bot.bus.config import MqttConfig
from bot.types import FeedEvent, OddsBatch, OddsUpdate

TOKEN = "test-command-key"
ODDS_KEY = "test-odds-signing-key"
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Broker:
    def __init__(self, workdir: Path, *, users: dict[str, str] | None = None, tls: bool = False) -> None:
        self.port = free_port()
        self.host = "127.0.0.1"
        self.log = workdir / "mosquitto.log"
        self.conf = workdir / "mosquitto.conf"
        lines = [f"listener {self.port} 127.0.0.1", "persistence false", f"log_dest file {self.log}",
                 "log_type all", f"user {getpass.getuser()}"]  # as root it would switch to `mosquitto`
        if users:
            passwd = workdir / "passwd"
            passwd.write_text("")
            for user, password in users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password], check=True)
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        self.cert: Path | None = None
        if tls:  # a self-signed certificate for 127.0.0.1, also the client's CA file
            self.cert, key = workdir / "server.crt", workdir / "server.key"
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                 "-keyout", str(key), "-out", str(self.cert)],
                check=True, capture_output=True,
            )
            lines += [f"certfile {self.cert}", f"keyfile {key}"]
        self.conf.write_text("\n".join(lines) + "\n")
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self._proc.stderr.read().decode()!r}")
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"mosquitto did not listen on {self.port}")

    def kill(self) -> None:
        """SIGKILL: clients see the connection drop, no goodbye."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=5)
        self._proc = None


@pytest.fixture
def auth_broker(tmp_path: Path) -> Iterator[Broker]:
    """Password file (user `bot`, password `s3cret-pass`) and TLS with a self-signed cert."""
    b = Broker(tmp_path, users={"bot": "s3cret-pass"}, tls=True)
    b.start()
    yield b
    b.kill()


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll `predicate` on the event loop until it holds; fail the test after `timeout` s."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool
    properties: Any

    def json(self) -> Any:
        return orjson.loads(self.payload)


class Recorder:
    """An independent MQTT v5 client that records what arrives on `filters`."""

    def __init__(self, broker: Broker, *filters: str) -> None:
        self.client = aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5)
        self.filters = filters
        self.messages: list[Received] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        await self.client.__aenter__()
        for f in self.filters:
            await self.client.subscribe(f, qos=1)
        self._task = asyncio.create_task(self._collect())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self.client.__aexit__(None, None, None)

    async def _collect(self) -> None:
        async for m in self.client.messages:
            self.messages.append(Received(str(m.topic), bytes(m.payload), m.retain, m.properties))

    def on(self, topic: str) -> list[Received]:
        return [m for m in self.messages if m.topic == topic]


def hmac_properties(key: str, payload: bytes, signature: str | None = None) -> Properties:
    """PUBLISH properties carrying the `hmac` user property: `payload` signed with `key`, or
    `signature` as given (a forged or malformed one)."""
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = ("hmac", sign(key, payload) if signature is None else signature)
    return props


def bus_config(broker: Broker, **overrides: Any) -> MqttConfig:
    """A config for `broker` with fast reconnects and heartbeats."""
    values: dict[str, Any] = {
        "enabled": True, "host": broker.host, "port": broker.port, "prefix": "t",
        "reconnect_min_s": 0.05, "reconnect_max_s": 0.4, "heartbeat_s": 0.2, "timeout_s": 2.0,
        "command_token": SecretStr(TOKEN),
    }
    values.update(overrides)
    return MqttConfig(**values)


@pytest.fixture
def caplog_loguru() -> Iterator[list[str]]:
    """The loguru lines logged during the test."""
    lines: list[str] = []
    sink = logger.add(lines.append, format="{level} {message}")
    yield lines
    logger.remove(sink)


class Collector:
    """An emit function that keeps every feed event it is given."""

    def __init__(self) -> None:
        self.events: list[FeedEvent] = []

    async def __call__(self, event: FeedEvent) -> None:
        self.events.append(event)

    @property
    def updates(self) -> list[OddsUpdate]:
        """Every update, those inside a batch included, in order."""
        out: list[OddsUpdate] = []
        for e in self.events:
            out.extend(e.updates if isinstance(e, OddsBatch) else [e] if isinstance(e, OddsUpdate) else [])
        return out

    @property
    def books(self) -> list[str]:
        return [u.bookmaker for u in self.updates]
