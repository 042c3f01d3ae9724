"""`bot feeds serve-oddspapi` serves the data set on loopback and drops every WebSocket connection
on SIGUSR1 (bot/feeds/cli.py, bot/sim/oddspapi_server.py)."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.engine.conftest import bot_env

DATA = Path(__file__).parents[1] / "data" / "oddspapi"


async def test_serve_oddspapi_serves_the_data_set_and_sigusr1_drops_connections() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "feeds", "serve-oddspapi", str(DATA), "--port", "0", "--key", "k1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=bot_env({"COLUMNS": "400"}))
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        found = re.search(r"on (http://127\.0\.0\.1:\d+)/en \(WebSocket (ws://\S+)\)", line)
        assert found, line
        base, ws_url = found.groups()
        async with httpx.AsyncClient() as http:
            fixtures = (await http.get(f"{base}/en/fixtures", params={"sportId": 14, "apiKey": "k1"})).json()
        assert [f["fixtureId"] for f in fixtures] == ["id1400003162011811"]
        async with connect(ws_url) as ws:
            await ws.send(orjson.dumps({"type": "login", "apiKey": "k1", "channels": ["odds"]}).decode())
            assert orjson.loads(await ws.recv())["type"] == "login_ok"
            proc.send_signal(signal.SIGUSR1)
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 30)
