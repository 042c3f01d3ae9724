"""The 55-Tech MM API client, stream and kill-switch cancel-all against the local MM server over
loopback (bot/execution/mm_client.py, mm_stream.py, mm.py, bot/sim/mm_server.py;
docs/reference/mm.md). The server is held to the documents first: auth, 429, 422, 426, the
WebSocket's subscribe errors and its 5-connection limit."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from bot.clock import WallClock
from bot.execution.mm import MmLink
from bot.execution.mm_client import (
    MmAuthError,
    MmClient,
    MmNotFound,
    MmRateLimited,
    MmUnavailable,
    MmUpgradeRequired,
    MmValidationError,
)
from bot.execution.mm_config import MmConfig
from bot.execution.mm_stream import MmConnectionLimit, MmStream
from bot.risk.external import ExternalExposure
from bot.sim.mm_server import LocalMmServer
from bot.types import VenueAlert, VenueAlertKind
from tests.execution.helpers import eventually

KEY = str(uuid.UUID(int=42))


@pytest.fixture
async def mm() -> AsyncIterator[LocalMmServer]:
    server = LocalMmServer(api_key=KEY, heartbeat_seconds=0.2)
    await server.start()
    yield server
    await server.stop()


def mm_config(server: LocalMmServer, **kw: Any) -> MmConfig:
    base: dict[str, Any] = {
        "enabled": True, "api_key": KEY, "base_url": server.base_url, "ws_url": server.ws_url,
        "timeout_seconds": 2.0, "backoff_initial_seconds": 0.01, "backoff_max_seconds": 0.05,
        "ws_ping_seconds": 0.2, "ws_dead_after_seconds": 2.0, "ws_reconnect_initial_seconds": 0.02,
        "ws_reconnect_max_seconds": 0.1, "ws_subscribe_timeout_seconds": 2.0,
    }
    base.update(kw)
    return MmConfig(**base)


# -- the server is as strict as the documents ---------------------------------------------------


async def test_server_answers_the_documented_errors(mm: LocalMmServer) -> None:
    async with httpx.AsyncClient(base_url=mm.base_url) as http:
        for headers in ({}, {"Authorization": f"Bearer {KEY}"}, {"X-API-Key": "not-a-uuid"},
                        {"X-API-Key": str(uuid.UUID(int=7))}):
            r = await http.get("/api/v1/me", headers=headers)
            assert (r.status_code, r.json()) == (401, {"detail": "Invalid or missing API key"}), headers
        ok = {"X-API-Key": KEY}
        assert (await http.get("/api/v1/me", headers=ok)).json()["client"] == "local-client"
        r = await http.get("/api/v1/positions", params={"status": "bogus"}, headers=ok)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "status"]
        assert (await http.get("/api/v1/orders/999999", headers=ok)).status_code == 404
        assert (await http.get("/ws/subscribe")).status_code == 426


async def test_client_raises_each_documented_error(mm: LocalMmServer) -> None:
    async with MmClient(mm_config(mm, api_key=str(uuid.UUID(int=7)))) as bad:
        with pytest.raises(MmAuthError) as auth:
            await bad.me()
    assert auth.value.status == 401 and auth.value.message == "Invalid or missing API key"
    assert KEY not in str(auth.value)
    async with MmClient(mm_config(mm)) as client:
        assert (await client.me()).client == "local-client"
        with pytest.raises(MmValidationError) as invalid:
            await client.positions("bogus")
        assert invalid.value.field_errors[0].loc == ("query", "status")
        with pytest.raises(MmValidationError):
            await client.pnl(from_date="2026-13-01")
        with pytest.raises(MmNotFound):
            await client._request("GET", "/api/v1/orders/999999")
        with pytest.raises(MmUpgradeRequired):
            await client._request("GET", "/ws/subscribe")
    # 4xx is never retried: one request each
    assert [r["status"] for r in mm.requests].count(401) == 1


async def test_5xx_is_retried_and_4xx_and_429_are_not(mm: LocalMmServer) -> None:
    async with MmClient(mm_config(mm, max_attempts=3)) as client:
        mm.faults.fail_5xx = 2
        assert (await client.me()).active is True
        assert [r["status"] for r in mm.requests] == [500, 500, 200]
        mm.faults.fail_5xx = 5
        with pytest.raises(MmUnavailable):
            await client.me()
        assert len(mm.requests) == 6  # three tries, then given up
        mm.faults.fail_5xx = 0


async def test_rate_limit_100_per_minute_is_a_429_the_client_does_not_hammer(mm: LocalMmServer) -> None:
    async with httpx.AsyncClient(base_url=mm.base_url, headers={"X-API-Key": KEY}) as http:
        answers = [(await http.get("/api/v1/me")).status_code for _ in range(100)]
        assert answers == [200] * 100
        r = await http.get("/api/v1/me")
        assert r.status_code == 429 and r.json() == {"detail": "Rate limit exceeded: 100 requests per minute"}
    async with MmClient(mm_config(mm, max_attempts=3)) as client:
        with pytest.raises(MmRateLimited):
            await client.positions()
    assert len(mm.requests) == 102  # the client's 429 was not retried at once


async def test_client_keeps_its_request_budget(mm: LocalMmServer) -> None:
    """aiolimiter: with a budget of 2 a minute the third request waits (it is not sent)."""
    async with MmClient(mm_config(mm, requests_per_minute=2)) as client:
        await client.me()
        await client.me()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await client.me()
    assert len(mm.requests) == 2


async def test_rate_limited_polls_back_off_and_recover(mm: LocalMmServer) -> None:
    mm.rate_limit = 0  # every request is refused 429
    exposure = ExternalExposure(WallClock(), timedelta(seconds=60))
    link = MmLink(mm_config(mm, emergency=False, combined_exposure=True, backoff_initial_seconds=0.3),
                  exposure=exposure, on_alert=_ignore, currency="USD")
    assert await link.refresh() is False and link.stats["rate_limited"] == 1
    assert await link.refresh() is False and link.stats["polls_skipped"] == 1  # within the 0.3 s backoff
    assert len(mm.requests) == 1 and "429" in exposure.last_error
    mm.rate_limit = 100
    await eventually(lambda: time.monotonic() >= link._paused_until)  # the backoff passes
    assert await link.refresh() is True and exposure.snapshot is not None
    await link.stop()


async def _ignore(alert: VenueAlert) -> None:
    return None


# -- the WebSocket ------------------------------------------------------------------------------


async def _subscribe(server: LocalMmServer, body: dict[str, Any]) -> dict[str, Any]:
    async with connect(server.ws_url) as ws:
        await ws.send(orjson.dumps(body).decode())
        frame: dict[str, Any] = orjson.loads(await ws.recv())
        return frame


async def test_ws_subscribe_errors_and_connection_limit(mm: LocalMmServer) -> None:
    sub = {"type": "subscribe", "channels": ["emergency"]}
    assert await _subscribe(mm, sub) == {"type": "error", "message": "api_key required"}
    assert await _subscribe(mm, {**sub, "api_key": "x"}) == {"type": "error", "message": "Invalid api_key format"}
    assert (await _subscribe(mm, {**sub, "api_key": str(uuid.UUID(int=9))}))["message"] == "Invalid API key"
    streams = [MmStream(mm_config(mm), _noop) for _ in range(5)]
    for stream in streams:
        await stream.start()
    assert all(s.subscribed.is_set() for s in streams) and mm.connections == 5
    # a sixth from this process is refused before it connects; one from elsewhere gets the error
    with pytest.raises(MmConnectionLimit):
        await MmStream(mm_config(mm), _noop).start()
    assert (await _subscribe(mm, {**sub, "api_key": KEY}))["message"] == "Connection limit exceeded"
    for stream in streams:
        await stream.stop()
    await eventually(lambda: mm.connections == 0)


async def _noop(active: bool, reason: str) -> None:
    return None


async def test_stream_refused_key_is_counted_and_retried(mm: LocalMmServer) -> None:
    stream = MmStream(mm_config(mm, api_key=str(uuid.UUID(int=9)), ws_reconnect_max_seconds=0.05), _noop)
    await stream.start(wait_seconds=0.2)
    await eventually(lambda: stream.stats["auth_refused"] >= 2)
    assert not stream.subscribed.is_set() and stream.last_error == "Invalid API key"
    await stream.stop()


async def test_emergency_changes_reach_the_alert_path_once_each_and_survive_a_reconnect(mm: LocalMmServer) -> None:
    seen: list[VenueAlert] = []

    async def on_alert(alert: VenueAlert) -> None:
        seen.append(alert)

    link = MmLink(mm_config(mm), exposure=None, on_alert=on_alert, currency="USD")
    await link.start()
    assert link.stream is not None and link.stream.subscribed.is_set()
    mm.set_emergency(True, "Manual trigger")
    mm.set_emergency(True, "Manual trigger")  # a repeat is not news
    await eventually(lambda: len(seen) == 1)
    assert (seen[0].kind, seen[0].reason, seen[0].details["source"]) == (VenueAlertKind.EMERGENCY_ON,
                                                                          "Manual trigger", "mm")
    mm.broadcast("emergency", "UPDATE", {"reason": "no flag"})  # bad payload: counted, state kept
    await eventually(lambda: link.stream is not None and link.stream.stats["bad_frames"] == 1)
    assert mm.drop_streams() == 1
    await eventually(lambda: link.stream is not None and link.stream.subscriptions == 2)
    mm.set_emergency(False, "resolved")
    await eventually(lambda: len(seen) == 2)
    assert seen[1].kind is VenueAlertKind.EMERGENCY_OFF and seen[1].details["source"] == "mm"
    await link.stop()


async def test_a_silent_server_is_dead_and_the_stream_reconnects(mm: LocalMmServer) -> None:
    mm.heartbeat_seconds = 3600  # no heartbeat; the client's pings are answered, so silence kills only
    stream = MmStream(mm_config(mm, ws_ping_seconds=3600, ws_dead_after_seconds=0.3), _noop)
    await stream.start()
    await eventually(lambda: stream.stats["disconnects"] >= 1 and stream.subscriptions >= 2)
    await stream.stop()


# -- kill switch: cancel-all ---------------------------------------------------------------------


async def test_kill_switch_calls_cancel_all_without_blocking_the_halt(mm: LocalMmServer, tmp_path: Path) -> None:
    from bot.clock import ReplayClock
    from bot.ledger.store import Ledger
    from bot.risk.control import TradingControl
    from tests.risk.factories import T0

    ledger = Ledger(tmp_path / "bot.db", ReplayClock(T0))
    control = TradingControl(ledger, ReplayClock(T0), zone="UTC", state_dir=tmp_path)
    link = MmLink(mm_config(mm, emergency=False, cancel_all_on_kill=True), exposure=None, on_alert=_ignore,
                  currency="USD")
    control.on_kill(link.on_kill)
    mm.set_open_orders([{"orderId": 1, "fixtureId": "id1", "exchange": "polymarket", "orderStatus": "PLACED",
                         "orderStake": 50.0, "matchedStake": 0}])
    control.kill("kill switch: SIGUSR1")
    assert control.state == "HALTED" and mm.cancel_all_calls == []  # halted before MM was asked
    await eventually(lambda: len(mm.cancel_all_calls) == 1)
    await eventually(lambda: link.stats["cancel_all_ok"] == 1)
    assert mm.open_orders == []
    # already HALTED: the kill file still reaches MM (newly seen by the control watch)
    (tmp_path / "KILL").touch()
    control.watch()
    control.watch()  # the same file again is not a second kill
    await eventually(lambda: link.stats["cancel_all_ok"] == 2)
    assert len(mm.cancel_all_calls) == 2
    await link.stop()
    # 429: retried with the documented backoff (1, 2, 4... here 0.1, 0.2, 0.4 s)
    mm.rate_limit, mm.rate_window_seconds = 1, 0.2
    mm._hits.clear()
    async with httpx.AsyncClient(base_url=mm.base_url, headers={"X-API-Key": KEY}) as http:
        assert (await http.get("/api/v1/me")).status_code == 200  # the one slot of this window
    slow = MmLink(mm_config(mm, emergency=False, cancel_all_on_kill=True, backoff_initial_seconds=0.1,
                            backoff_max_seconds=1.0), exposure=None, on_alert=_ignore, currency="USD")
    assert await slow.cancel_all("test") is True and len(mm.cancel_all_calls) == 3
    assert [r["status"] for r in mm.requests if r["path"].endswith("cancel-all")][-2:] == [429, 200]
    await slow.stop()
    # a dead MM: counted, the halt stands
    dead = MmLink(mm_config(mm, emergency=False, cancel_all_on_kill=True, base_url="http://127.0.0.1:9",
                            max_attempts=1), exposure=None, on_alert=_ignore, currency="USD")
    assert await dead.cancel_all("test") is False and dead.stats["cancel_all_failed"] == 1
    await dead.stop()
    ledger.close()


async def test_cancel_all_is_off_unless_configured(mm: LocalMmServer) -> None:
    link = MmLink(mm_config(mm, emergency=False), exposure=None, on_alert=_ignore, currency="USD")
    link.on_kill("kill switch: SIGUSR1")
    assert not link._tasks and mm.cancel_all_calls == [] and mm.requests == []
    await link.stop()


def test_config_mm_needs_a_uuid_key_in_one_line(tmp_path: Path) -> None:
    from bot.config.preflight import preflight
    from bot.config.settings import load_settings

    def problems(**mm: Any) -> list[str]:
        settings = load_settings(None, state_dir=tmp_path / "state", mm={"enabled": True, **mm},
                                 feeds={"replay": {"path": str(tmp_path / "none.jsonl")}})
        return [line for line in preflight(settings, tmp_path) if "mm." in line]

    assert problems() == ["config error: mm.api_key: mm.enabled needs the MM API key; fix: set BOT_MM__API_KEY"]
    assert problems(api_key="abc")[0].startswith("config error: mm.api_key: not a UUID")
    assert problems(api_key=KEY) == []
    with pytest.raises(Exception, match="mm.requests_per_minute"):
        load_settings(None, mm={"requests_per_minute": 101})
