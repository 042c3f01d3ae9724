"""Serving a local server (docs/architecture.md, "Simulators"): the one place that runs a
simulator's ASGI app on uvicorn in the running loop, and the one "serve until Ctrl-C" loop of the
server commands.

`LoopbackServer` is the uvicorn part of bot/sim/abp_server.py, mm_server.py, oddspapi_server.py,
olympus_server.py and scraping_server.py: `await start(app, host, port, **uvicorn_options)` serves
and returns the base URL once uvicorn is listening (`port` is then the bound port, any free one for
port 0); `await stop()` asks uvicorn to exit and waits for it. Each server keeps its own options
(lifespan, WebSocket pings, graceful-shutdown time) and its own work around start and stop.

`serve_until_interrupted` / `run_until_interrupted` are for the CLI commands (bot/feeds/cli.py,
bot/execution/cli.py). Those import this module inside the command, after `require_sim_extra`
(bot/sim/extra.py), since it needs the `sim` extra.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

import orjson
import uvicorn
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """`data` as an application/json response (orjson), the local servers' answer body."""
    return Response(orjson.dumps(data), status, headers=headers, media_type="application/json")


M = TypeVar("M", bound=BaseModel)


async def admin_faults(request: Request, faults: M) -> tuple[M, Response]:
    """GET/POST /_admin/faults of bot/sim/abp_server.py and scraping_server.py: (the faults to keep,
    the answer). GET answers them as they are; POST merges its JSON body over them and validates the
    result (a typo or a bad value is a 422 naming the field, the faults unchanged)."""
    if request.method == "POST":
        try:
            changes = orjson.loads(await request.body() or b"{}")
            faults = type(faults).model_validate({**faults.model_dump(), **changes})
        except (orjson.JSONDecodeError, TypeError, ValidationError) as exc:
            return faults, json_response({"error": str(exc).splitlines()[:3]}, 422)
    return faults, json_response(faults.model_dump())


class LoopbackServer:
    """One uvicorn server running as a task of the current event loop."""

    def __init__(self) -> None:
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.port: int | None = None

    @property
    def launched(self) -> bool:
        """`start()` has created the server (it may since have been stopped)."""
        return self._server is not None

    async def start(self, app: Any, host: str, port: int, **uvicorn_options: Any) -> str:
        """Serve `app` on host:port (0 = a free port); returns http://host:<bound port> once
        uvicorn is listening. What the serve task raises before that (uvicorn exits the process on a
        failed bind or lifespan startup) comes out of here."""
        options: dict[str, Any] = {"log_level": "warning", **uvicorn_options}
        server = self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, **options))
        task = self._task = asyncio.create_task(server.serve())
        while not server.started:  # uvicorn exposes no start event, only this flag
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        self.port = server.servers[0].sockets[0].getsockname()[1]
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        """Ask uvicorn to exit (its graceful-shutdown option bounds the wait) and wait for it."""
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task


class Startable(Protocol):
    async def start(self, host: str, port: int) -> str: ...

    async def stop(self) -> None: ...


S = TypeVar("S", bound=Startable)


def run_until_interrupted(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """`asyncio.run(main())`, where Ctrl-C is the normal way to stop."""
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass


def serve_until_interrupted(make: Callable[[], S], host: str, port: int, ready: Callable[[S, str], None]) -> None:
    """Build the server with `make()` in the event loop, start it on host:port, call
    `ready(server, url)` (print the address, add signal handlers), serve until Ctrl-C, stop it."""

    async def serve() -> None:
        server = make()
        url = await server.start(host, port)
        try:
            ready(server, url)
            await asyncio.Event().wait()
        finally:
            await server.stop()

    run_until_interrupted(serve)
