"""The placement lane: POST /place-orders on the bot's own keep-alive HTTP/1.1 connections.

Why not httpx for this one request: from the call to the request body written, httpx spends
0.55-0.7 ms on loopback here (its pool, auth, redirect and trace layers), a write on an open
connection 0.03 ms, and placement is the end of the tick-to-order path (bench/tick_to_order.py;
docs/architecture.md, Invariants > Hot path lean). Every other ABP request stays on httpx. The
protocol is h11's (the HTTP/1.1 state machine httpx itself runs on): requests are framed and
responses parsed by it, never by hand.

Connections: idle ones are kept for reuse (at most `MAX_IDLE`); a request takes an idle one the
server has not closed (EOF already read) or opens a new one, so concurrent placements never
share a connection. A connection whose exchange did not end cleanly (timeout, error, `Connection:
close`) is closed, never reused. Proxies are httpx's business: `AbpClient` uses the lane only
when the environment names no proxy for the base URL.

Errors: `LaneTimeout` (no complete answer within the timeout) and `LaneError` (connect, TLS,
reset, EOF or a malformed answer). Either way, once the request may have been written its
outcome is unknown: the caller reconciles by requestUuid (docs/reference/abp.md §8.4).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import h11
import httpx

MAX_IDLE = 4
READ_CHUNK = 65536


class LaneError(Exception):
    """The connection failed or the answer could not be read (the outcome is unknown)."""


class LaneTimeout(LaneError):
    """No complete answer within the timeout (the outcome is unknown)."""


@dataclass(frozen=True, slots=True)
class LaneResponse:
    """An answer: HTTP `status`, `headers` (lower-case names), the body bytes and when the
    request's last byte was handed to the kernel (`time.perf_counter_ns()`)."""

    status: int
    headers: dict[str, str]
    content: bytes
    written_ns: int


class _Connection:
    __slots__ = ("h11", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.h11 = h11.Connection(h11.CLIENT)

    @property
    def reusable(self) -> bool:
        return (self.h11.our_state is h11.IDLE and not self.reader.at_eof() and not self.writer.is_closing())

    def close(self) -> None:
        self.writer.close()


class OrderLane:
    """POSTs to one origin (`base_url`, http or https, with an optional path prefix) with fixed
    `headers` (the API key among them: never logged here). `verify` as httpx's."""

    def __init__(self, base_url: str, headers: dict[str, str], *, connect_timeout: float,
                 verify: ssl.SSLContext | bool = True) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"the placement lane needs an http(s) URL with a host, got {base_url!r}")
        self._host = url.hostname
        self._port = url.port or (443 if url.scheme == "https" else 80)
        self._prefix = url.path.rstrip("/")
        self._ssl = httpx.create_ssl_context(verify=verify) if url.scheme == "https" else None
        default_port = self._port == (443 if url.scheme == "https" else 80)
        authority = self._host if default_port else f"{self._host}:{self._port}"
        self._headers = [("host", authority), *headers.items(), ("content-type", "application/json")]
        self._connect_timeout = connect_timeout
        self._idle: list[_Connection] = []
        self._closed = False

    async def post(self, path: str, content: bytes, timeout: float) -> LaneResponse:
        """POST `content` (JSON bytes) to `path` and read the whole answer within `timeout`
        seconds (connecting included). Raises LaneTimeout or LaneError."""
        if self._closed:
            raise LaneError("lane closed")
        conn: _Connection | None = None
        try:
            async with asyncio.timeout(timeout):
                conn = await self._take()
                request = h11.Request(method="POST", target=self._prefix + path,
                                      headers=[*self._headers, ("content-length", str(len(content)))])
                conn.writer.write(conn.h11.send(request) + conn.h11.send(h11.Data(data=content))
                                  + conn.h11.send(h11.EndOfMessage()))
                if conn.writer.transport.get_write_buffer_size():  # not all in the kernel yet
                    await conn.writer.drain()
                written = time.perf_counter_ns()
                status, headers, body = await self._answer(conn)
        except TimeoutError as exc:
            self._discard(conn)
            raise LaneTimeout(f"no answer within {timeout:g} s") from exc
        except (OSError, ssl.SSLError, h11.ProtocolError, asyncio.IncompleteReadError) as exc:
            self._discard(conn)
            raise LaneError(f"{type(exc).__name__}: {exc}") from exc
        except BaseException:  # cancelled mid-exchange: the connection's state is unknown
            self._discard(conn)
            raise
        self._release(conn)
        return LaneResponse(status, headers, body, written)

    async def aclose(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()

    async def _take(self) -> _Connection:
        while self._idle:
            conn = self._idle.pop()
            if conn.reusable:
                return conn
            conn.close()  # the server closed it while idle
        async with asyncio.timeout(self._connect_timeout):
            reader, writer = await asyncio.open_connection(
                self._host, self._port, ssl=self._ssl, server_hostname=self._host if self._ssl else None)
        return _Connection(reader, writer)

    @staticmethod
    async def _answer(conn: _Connection) -> tuple[int, dict[str, str], bytes]:
        status, headers, body = 0, {}, bytearray()
        while True:
            event = conn.h11.next_event()
            if event is h11.NEED_DATA:
                conn.h11.receive_data(await conn.reader.read(READ_CHUNK))  # b"" at EOF: h11 raises if early
            elif isinstance(event, h11.Response):
                status = event.status_code
                headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in event.headers}
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return status, headers, bytes(body)
            elif isinstance(event, h11.ConnectionClosed):
                raise LaneError("the server closed the connection before answering")
            # h11.InformationalResponse (1xx): read on

    def _release(self, conn: _Connection) -> None:
        if conn.h11.our_state is h11.DONE and conn.h11.their_state is h11.DONE:
            conn.h11.start_next_cycle()
        if conn.reusable and not self._closed and len(self._idle) < MAX_IDLE:
            self._idle.append(conn)
        else:
            conn.close()

    @staticmethod
    def _discard(conn: _Connection | None) -> None:
        if conn is not None:
            conn.close()
