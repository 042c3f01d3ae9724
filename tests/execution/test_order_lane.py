"""The placement lane (bot/execution/order_lane.py) against a raw HTTP/1.1 server on loopback
whose behaviour each test scripts: keep-alive reuse, a connection the server closed while idle,
no answer, a late answer, chunked and `Connection: close` answers."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest

from bot.execution.abp_client import AbpClient
from bot.execution.config import AbpConfig
from bot.execution.errors import AbpUnavailable
from bot.execution.order_lane import LaneError, LaneTimeout, OrderLane

Reply = Callable[[bytes, bytes], Awaitable[bytes | None]]  # (head, body) -> raw answer; None: hang up


@dataclass
class RawServer:
    """Counts connections and keeps every request's head and body."""

    reply: Reply
    connections: int = 0
    requests: list[tuple[bytes, bytes]] = field(default_factory=list)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length"))
                body = await reader.readexactly(length)
                self.requests.append((head, body))
                answer = await self.reply(head, body)
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def ok(body: bytes = b'{"status":"ok"}', *extra: str) -> bytes:
    head = [b"HTTP/1.1 200 OK", b"content-type: application/json", b"content-length: %d" % len(body)]
    head += [h.encode() for h in extra]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Reply], Awaitable[RawServer]]]:
    servers: list[asyncio.Server] = []

    async def start(reply: Reply) -> RawServer:
        raw = RawServer(reply)
        server = await asyncio.start_server(raw.handle, "127.0.0.1", 0)
        raw.port = server.sockets[0].getsockname()[1]
        servers.append(server)
        return raw

    yield start
    for server in servers:
        server.close()


async def test_keeps_one_connection_alive_and_sends_headers(serve: Callable[[Reply], Awaitable[RawServer]]) -> None:
    async def reply(head: bytes, body: bytes) -> bytes:
        return ok(b'{"echo":%s}' % body)

    raw = await serve(reply)
    lane = OrderLane(f"http://127.0.0.1:{raw.port}/api", {"x-api-key": "k1"}, connect_timeout=2)
    try:
        before = time.perf_counter_ns()
        answers = [await lane.post("/place-orders", orjson.dumps({"n": i}), 2) for i in range(3)]
    finally:
        await lane.aclose()
    assert raw.connections == 1
    assert [orjson.loads(a.content)["echo"]["n"] for a in answers] == [0, 1, 2]
    assert all(a.status == 200 and a.headers["content-type"] == "application/json" for a in answers)
    assert before < answers[0].written_ns < answers[1].written_ns < answers[2].written_ns
    head = raw.requests[0][0].decode().lower()
    assert head.startswith("post /api/place-orders http/1.1")
    assert f"host: 127.0.0.1:{raw.port}" in head and "x-api-key: k1" in head
    assert "content-type: application/json" in head


async def test_reconnects_when_the_server_closed_the_idle_connection(
    serve: Callable[[Reply], Awaitable[RawServer]],
) -> None:
    async def reply(head: bytes, body: bytes) -> bytes:
        return ok()

    raw = await serve(reply)
    lane = OrderLane(f"http://127.0.0.1:{raw.port}", {}, connect_timeout=2)
    try:
        await lane.post("/place-orders", b"{}", 2)
        raw.writers[0].close()  # the server drops the idle keep-alive connection
        await raw.writers[0].wait_closed()
        for _ in range(100):  # until the lane's reader has seen the EOF
            if lane._idle and lane._idle[0].reader.at_eof():
                break
            await asyncio.sleep(0)
        assert (await lane.post("/place-orders", b"{}", 2)).status == 200
    finally:
        await lane.aclose()
    assert raw.connections == 2


async def test_connection_close_answers_and_chunked_bodies(serve: Callable[[Reply], Awaitable[RawServer]]) -> None:
    async def reply(head: bytes, body: bytes) -> bytes:
        chunked = b'HTTP/1.1 400 Bad Request\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n'
        return chunked + b"5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n"

    raw = await serve(reply)
    lane = OrderLane(f"http://127.0.0.1:{raw.port}", {}, connect_timeout=2)
    try:
        first = await lane.post("/place-orders", b"{}", 2)
        second = await lane.post("/place-orders", b"{}", 2)
    finally:
        await lane.aclose()
    assert (first.status, orjson.loads(first.content)) == (400, {"a": 1})
    assert second.status == 400
    assert raw.connections == 2  # `connection: close` is never reused


async def test_hang_up_and_silence_are_errors_and_the_connection_is_dropped(
    serve: Callable[[Reply], Awaitable[RawServer]],
) -> None:
    calls = 0

    async def reply(head: bytes, body: bytes) -> bytes | None:
        nonlocal calls
        calls += 1
        if calls == 1:
            return None  # read the request, hang up without answering
        if calls == 2:
            await asyncio.sleep(5)  # answer too late
        return ok()

    raw = await serve(reply)
    lane = OrderLane(f"http://127.0.0.1:{raw.port}", {}, connect_timeout=2)
    try:
        with pytest.raises(LaneError) as hung:
            await lane.post("/place-orders", b"{}", 2)
        assert not isinstance(hung.value, LaneTimeout)
        with pytest.raises(LaneTimeout):
            await lane.post("/place-orders", b"{}", 0.3)
        assert not lane._idle  # a connection whose exchange failed is never reused
        assert (await lane.post("/place-orders", b"{}", 2)).status == 200
    finally:
        await lane.aclose()
    assert raw.connections == 3


async def test_nothing_listening_is_a_lane_error() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    lane = OrderLane(f"http://127.0.0.1:{port}", {}, connect_timeout=1)
    with pytest.raises(LaneError):
        await lane.post("/place-orders", b"{}", 1)


async def test_the_client_places_through_the_lane_and_maps_its_errors(
    serve: Callable[[Reply], Awaitable[RawServer]], monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def reply(head: bytes, body: bytes) -> bytes | None:
        if b"hang" in body:
            return None
        return ok(b'{"status":"success","acceptedOrders":[],"declinedOrders":[]}')

    raw = await serve(reply)
    monkeypatch.delenv("http_proxy", raising=False)
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    order = {"requestUuid": "u1"}
    async with AbpClient(AbpConfig(base_url=f"http://127.0.0.1:{raw.port}", api_key="key-1")) as client:
        result = await client.place_orders([order])
        with pytest.raises(AbpUnavailable, match="connection error"):
            await client.place_orders([{"requestUuid": "hang"}])
    assert result.http_status == 200 and result.status == "success" and result.written_ns > 0
    assert raw.connections == 1 and len(raw.requests) == 2
    heads = [head.lower() for head, _ in raw.requests]
    assert all(b"x-api-key: key-1" in h and b"python-httpx" not in h for h in heads)  # the lane, not httpx


async def test_a_proxy_in_the_environment_keeps_placements_on_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    async with AbpClient(AbpConfig(base_url="https://abp.example")) as client:
        assert client._lane is None
    monkeypatch.delenv("HTTPS_PROXY")
    monkeypatch.delenv("https_proxy")
    async with AbpClient(AbpConfig(base_url="https://abp.example")) as client:
        assert client._lane is not None
    async with AbpClient(AbpConfig(base_url="https://abp.example", order_lane=False)) as client:
        assert client._lane is None


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and its key (openssl)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


async def test_https_with_the_servers_certificate_verified(certificate: tuple[Path, Path]) -> None:
    """The lane speaks TLS to an https base URL and verifies the server's certificate."""
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)

    async def reply(head: bytes, body: bytes) -> bytes:
        return ok()

    raw = RawServer(reply)
    server = await asyncio.start_server(raw.handle, "127.0.0.1", 0, ssl=server_tls)
    port = server.sockets[0].getsockname()[1]
    trusted = ssl.create_default_context(cafile=str(cert))
    lane = OrderLane(f"https://localhost:{port}", {}, connect_timeout=5, verify=trusted)
    untrusting = OrderLane(f"https://localhost:{port}", {}, connect_timeout=5)  # the system's CAs only
    try:
        assert (await lane.post("/place-orders", b"{}", 5)).status == 200
        with pytest.raises(LaneError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            await untrusting.post("/place-orders", b"{}", 5)
    finally:
        await lane.aclose()
        await untrusting.aclose()
        server.close()
    assert len(raw.requests) == 1 and b"host: localhost:%d" % port in raw.requests[0][0].lower()
