"""The HTTP API against a real uvicorn (bot.web.server.WebServer) over a fake engine."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from bot.web.app import ENDPOINTS, build_app
from bot.web.config import WebConfig
from bot.web.server import WebError, WebServer
from tests.web.conftest import TOKEN, FakeOperated, Served, serve, web_config

AUTH = {"Authorization": f"Bearer {TOKEN}"}
API_GETS = ["/api/status", "/api/orders", "/api/bets", "/api/decisions", "/api/exposure", "/api/pnl",
            "/api/strategies", "/api/health", "/api/openapi.json", "/api/events"]
API_POSTS = ["/api/halt", "/api/resume", "/api/cancel-all", "/api/strategies/value/params"]
WRONG = [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {TOKEN[:-1]}"},
         {"Authorization": f"Basic {TOKEN}"}, {"Authorization": TOKEN}]


@pytest.fixture
def client(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=5) as c:
        yield c


def test_every_api_route_refuses_a_missing_or_wrong_token(client: httpx.Client, fake: FakeOperated) -> None:
    for headers in WRONG:
        for path in API_GETS:
            r = client.get(path, headers=headers)
            assert r.status_code == 401, (path, headers, r.text)
            assert r.json()["error"] == "missing or wrong bearer token"
        for path in API_POSTS:
            r = client.post(path, headers=headers, json={"reason": "x", "min_edge": 0.1})
            assert r.status_code == 401, (path, headers)
    assert fake.trading_state == "ACTIVE" and fake.cancelled == 0  # nothing ran
    assert client.get("/metrics").status_code == 401  # metrics_public is off by default


def test_token_in_the_query_string_is_not_accepted(client: httpx.Client) -> None:
    assert client.get("/api/status", params={"token": TOKEN}).status_code == 401


def test_the_token_opens_every_read_route(client: httpx.Client, fake: FakeOperated) -> None:
    assert client.get("/api/status", headers=AUTH).json() == fake.status()
    assert client.get("/api/orders?limit=2", headers=AUTH).json() == fake.orders(2)
    assert client.get("/api/bets", headers=AUTH).json() == fake.bets(50)
    assert client.get("/api/exposure", headers=AUTH).json() == fake.exposure()
    assert client.get("/api/pnl", headers=AUTH).json() == fake.pnl()
    assert client.get("/api/strategies", headers=AUTH).json() == fake.strategies()
    assert client.get("/api/health", headers=AUTH).json() == fake.health()
    rows = client.get("/api/decisions?reason=max_exposure&limit=10", headers=AUTH).json()
    assert [r["reason"] for r in rows] == ["max_exposure"] and fake.decision_reasons[-1] == "max_exposure"
    client.get("/api/decisions", headers=AUTH)
    assert fake.decision_reasons[-1] is None
    # the scheme is case-insensitive (RFC 7235)
    assert client.get("/api/status", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200


@pytest.mark.parametrize("limit", ["0", "1001", "ten", "-1"])
def test_a_bad_limit_is_a_400_naming_the_parameter(client: httpx.Client, limit: str) -> None:
    r = client.get(f"/api/orders?limit={limit}", headers=AUTH)
    assert r.status_code == 400 and r.json()["error"].startswith("query parameter limit:")


def test_get_on_a_state_changing_route_is_405(client: httpx.Client, fake: FakeOperated) -> None:
    for path in API_POSTS:
        r = client.get(path, headers=AUTH)
        assert r.status_code == 405, path
        assert "POST" in r.headers["allow"]
    assert fake.trading_state == "ACTIVE" and fake.cancelled == 0


def test_halt_resume_and_cancel_all_change_the_engine(client: httpx.Client, fake: FakeOperated) -> None:
    r = client.post("/api/halt", headers=AUTH, json={"reason": "odds look wrong"})
    assert r.status_code == 200
    assert fake.trading_state == "HALTED" and fake.halt_reason == "odds look wrong"
    assert r.json()["status"]["risk"]["trading_state"] == "HALTED"

    r = client.post("/api/resume", headers=AUTH)
    assert r.status_code == 200 and fake.trading_state == "ACTIVE"

    r = client.post("/api/cancel-all", headers=AUTH)
    assert r.json() == {"ok": True, "cancelled": 3} and fake.pending == 0


@pytest.mark.parametrize("body", [b"", b"not json", b"[1]", b'{"reason": ""}', b'{"reason": 5}'])
def test_halt_needs_a_reason(client: httpx.Client, fake: FakeOperated, body: bytes) -> None:
    r = client.post("/api/halt", headers=AUTH, content=body)
    assert r.status_code == 400 and "error" in r.json()
    assert fake.trading_state == "ACTIVE"


def test_an_oversized_body_is_refused(client: httpx.Client, fake: FakeOperated) -> None:
    r = client.post("/api/halt", headers=AUTH, json={"reason": "x" * 100_000})
    assert r.status_code == 413 and fake.trading_state == "ACTIVE"


def test_reload_params_applies_or_answers_400_with_the_one_line_reason(
        client: httpx.Client, fake: FakeOperated) -> None:
    r = client.post("/api/strategies/value/params", headers=AUTH, json={"min_edge": 0.05})
    assert r.status_code == 200 and fake.params["value"]["min_edge"] == 0.05

    r = client.post("/api/strategies/value/params", headers=AUTH, json={"min_edge": -1})
    assert r.status_code == 400
    assert r.json() == {"error": "strategy value: params.min_edge: must be >= 0, got -1"}
    assert fake.params["value"]["min_edge"] == 0.05

    r = client.post("/api/strategies/nope/params", headers=AUTH, json={})
    assert r.status_code == 400 and r.json()["error"] == "unknown strategy 'nope'"


async def test_the_engines_own_refusal_type_is_a_400_too() -> None:
    from bot.bus.auth import CommandRefused

    class Refusing(FakeOperated):
        async def reload_params(self, strategy: str, params: dict[str, Any]) -> None:
            raise CommandRefused("value: params.kelly_fraction: Input should be less than or equal to 1")

    app = build_app(Refusing(), web_config())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.post("/api/strategies/value/params", headers=AUTH, json={"kelly_fraction": 2})
    assert r.status_code == 400 and r.json()["error"].startswith("value: params.kelly_fraction")


def test_ready_follows_the_engines_health_without_a_token(client: httpx.Client, fake: FakeOperated) -> None:
    assert client.get("/health/live").json() == {"live": True}
    r = client.get("/health/ready")
    assert r.status_code == 200 and r.json()["ready"] is True
    fake.feed_stale = True
    r = client.get("/health/ready")
    assert r.status_code == 503
    assert r.json()["checks"]["feeds"] == {"ok": False, "detail": "oddsapi: no update for 600 s"}
    fake.feed_stale = False
    assert client.get("/health/ready").status_code == 200


def _sse_events(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    event, data = "message", ""
    for line in lines:
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data += line[5:].strip()
        elif line == "" and data:
            yield event, orjson.loads(data)
            event, data = "message", ""


def test_events_stream_pushes_the_status_at_once_after_a_halt(fake: FakeOperated) -> None:
    # a long interval: the HALTED event can only come from the change notification
    running = serve(web_config(events_interval_s=30), fake)
    slow = next(running)
    try:
        with httpx.Client(base_url=slow.url, timeout=5) as c, \
                c.stream("GET", "/api/events", headers=AUTH) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            events = _sse_events(stream.iter_lines())
            kind, first = next(events)
            assert kind == "status" and first["risk"]["trading_state"] == "ACTIVE"
            with httpx.Client(base_url=slow.url, timeout=5) as other:
                assert other.post("/api/halt", headers=AUTH, json={"reason": "sse"}).status_code == 200
            kind, second = next(events)  # within the 5 s read timeout, far below the 30 s interval
            assert second["risk"]["trading_state"] == "HALTED" and second["risk"]["halt_reason"] == "sse"
    finally:
        running.close()


def test_events_stream_repeats_the_status_every_interval(served: Served, fake: FakeOperated) -> None:
    with httpx.Client(base_url=served.url, timeout=5) as c, c.stream("GET", "/api/events", headers=AUTH) as s:
        events = _sse_events(s.iter_lines())
        assert next(events)[1]["events"] == 120
        fake.bump(5)
        assert next(events)[1]["events"] == 125  # the periodic push, 1 s later


def test_the_token_never_leaves_in_a_body_or_a_log(
        client: httpx.Client, logged: list[str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    bodies = []
    for headers in [AUTH, *WRONG]:
        for path in [*API_GETS[:-1], "/", "/health/ready", "/health/live", "/metrics", "/nowhere"]:
            bodies.append(client.get(path, headers=headers).text)
        for path in API_POSTS:
            r = client.post(path, headers=headers, json={"reason": TOKEN, "min_edge": -1})
            bodies.append(r.text)
    bodies.append(client.post("/api/halt", headers=AUTH, content=b"{" + TOKEN.encode()).text)
    assert any("halt requested" in line for line in logged)  # the log was captured
    for text in [*bodies, *logged, caplog.text]:
        assert "s3cret-Token" not in text


def test_openapi_lists_every_route(client: httpx.Client, served: Served) -> None:
    doc = client.get("/api/openapi.json", headers=AUTH).json()
    assert doc["openapi"].startswith("3.")
    served_routes = {(m, r.path) for r in served.server.app.routes for m in getattr(r, "methods", ()) if m != "HEAD"}
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert served_routes == documented
    assert {p for p in API_GETS + ["/api/halt", "/api/resume", "/api/cancel-all"]} <= set(doc["paths"])
    halt = doc["paths"]["/api/halt"]["post"]
    assert halt["requestBody"]["content"]["application/json"]["schema"]["required"] == ["reason"]
    assert doc["paths"]["/health/live"]["get"].get("security") is None
    assert len(ENDPOINTS) == len(documented)


def test_the_page_is_served_without_a_token_with_a_strict_policy(client: httpx.Client) -> None:
    r = client.get("/")
    assert r.status_code == 200 and 'id="trading-state"' in r.text
    csp = r.headers["content-security-policy"]
    assert "script-src 'sha256-" in csp and "unsafe-inline" not in csp and "connect-src 'self'" in csp
    assert r.headers["x-frame-options"] == "DENY"


def test_repeated_failures_are_throttled(fake: FakeOperated) -> None:
    running = serve(web_config(auth_failures_per_minute=5), fake)
    served = next(running)
    try:
        with httpx.Client(base_url=served.url, timeout=5) as client:
            codes = [client.get("/api/status", headers={"Authorization": "Bearer guess"}).status_code
                     for _ in range(6)]
            assert codes == [401] * 5 + [429]
            # locked for the minute even with the right token, so a guess cannot be confirmed
            assert client.get("/api/status", headers=AUTH).status_code == 429
    finally:
        running.close()


async def test_port_in_use_is_one_line_naming_host_and_port(fake: FakeOperated) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = WebServer(fake, web_config(port=port))
        with pytest.raises(WebError) as info:
            await server.start()
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message and "\n" not in message


async def test_start_binds_port_0_and_leaves_signal_handlers_alone(fake: FakeOperated) -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    server = WebServer(fake, web_config())
    await server.start()
    try:
        assert server.port > 0
        assert {s: signal.getsignal(s) for s in before} == before
        async with httpx.AsyncClient(base_url=server.url) as c, c.stream("GET", "/api/events", headers=AUTH):
            loop = asyncio.get_running_loop()
            started = loop.time()
            await server.stop()  # an open event stream does not hold the shutdown
            assert loop.time() - started < 2.5
    finally:
        await server.stop()
    assert {s: signal.getsignal(s) for s in before} == before


def test_config_requires_a_token_when_enabled() -> None:
    from pydantic import ValidationError

    assert WebConfig().enabled is False and WebConfig().token is None
    with pytest.raises(ValidationError) as info:
        WebConfig(enabled=True)
    assert "web.token" in str(info.value) and "BOT_WEB__TOKEN" in str(info.value)
    with pytest.raises(ValidationError):
        WebConfig(enabled=True, token="  ")
    with pytest.raises(ValidationError):
        WebConfig(port=70000)
    assert TOKEN not in repr(WebConfig(enabled=True, token=TOKEN))
