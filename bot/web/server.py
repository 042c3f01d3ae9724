"""Runs the web app (bot.web.app) with uvicorn as a task on the bot's own event loop.

The listening socket is bound here, before uvicorn starts, so a port in use is one `WebError`
line naming host:port (uvicorn itself would log and `sys.exit`). uvicorn installs no signal
handlers of its own: the engine owns SIGINT/SIGTERM and calls `stop()`. Log level warning,
no access log (the Authorization header is never logged anyway; the access log would only add
noise).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator

import uvicorn
from loguru import logger

from bot.web.app import build_app
from bot.web.config import WebConfig
from bot.web.ports import Operated

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 3.0


class WebError(Exception):
    """The web server could not start; the message is one line naming host:port."""


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # leave the process's signal handlers to the engine


class WebServer:
    """`await start()` serves `build_app(operated, config)` on config.host:config.port;
    `port` is then the bound port (any free one when config.port is 0); `await stop()` ends
    the event streams, lets requests in flight finish and returns within ~STOP_TIMEOUT_S."""

    def __init__(self, operated: Operated, config: WebConfig) -> None:
        self.config = config
        self.app = build_app(operated, config)
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The bound TCP port (raises WebError before start)."""
        if self._port is None:
            raise WebError("web server not started")
        return self._port

    @property
    def url(self) -> str:
        host = self.config.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Raises WebError (one line) when the address cannot be bound or uvicorn fails to start."""
        where = f"{self.config.host}:{self.config.port}"
        try:
            family = socket.AF_INET6 if ":" in self.config.host else socket.AF_INET
            self._socket = socket.create_server((self.config.host, self.config.port), family=family)
            self._socket.setblocking(False)
            # accepted sockets inherit it: without it small responses wait ~40 ms on delayed ACKs
            self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._port = int(self._socket.getsockname()[1])
        except (OSError, OverflowError) as exc:
            raise WebError(f"web server cannot listen on {where}: {getattr(exc, 'strerror', None) or exc}") from None
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off", server_header=False,
            timeout_graceful_shutdown=int(STOP_TIMEOUT_S) - 1,
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]), name="web-server")
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                while not self._server.started:  # uvicorn exposes no start event, only this flag
                    if self._task.done():
                        break
                    await asyncio.sleep(0.01)
        except TimeoutError:
            pass
        if not self._server.started:
            error = self._task.exception() if self._task.done() and not self._task.cancelled() else None
            await self.stop()
            raise WebError(f"web server on {where} did not start: {error!r:.200}")
        logger.info("web: dashboard and API on {} (metrics {})", self.url,
                    "public" if self.config.metrics_public else "need the token")

    async def stop(self) -> None:
        """Graceful, bounded: event streams end at once, other requests get the remaining time."""
        server, task = self._server, self._task
        if server is not None and task is not None:
            self.app.state.web_stream.close()
            server.should_exit = True
            try:
                await asyncio.wait_for(asyncio.shield(task), STOP_TIMEOUT_S)
            except TimeoutError:
                server.force_exit = True
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                logger.warning("web: server did not stop within {} s; cancelled", STOP_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 - stopping must not raise; the failure is logged
                logger.warning("web: server ended with {!r:.200}", exc)
        if self._socket is not None:
            self._socket.close()
        self._server = self._task = None
