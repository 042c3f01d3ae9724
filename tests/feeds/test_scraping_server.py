"""The local Scraping API relay (bot/sim/scraping_server.py) is as strict as the 55-Tech Scraping
API documents: auth, the target header, geo and agent headers, the POST body, rate limits,
gateway errors and the fetch envelope. Loopback only."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.sim.scraping_server import LocalScrapingServer, is_loopback

KEY = "relay-key"


@dataclass
class Target:
    url: str
    seen: list[dict[str, str]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Relay:
    server: LocalScrapingServer
    client: httpx.AsyncClient
    target: Target


@pytest.fixture
async def relay() -> AsyncIterator[Relay]:
    target = Target("")

    async def echo(request: Request) -> Response:
        target.seen.append({"method": request.method, **dict(request.headers), "body": (await request.body()).decode()})
        return JSONResponse({"ok": True, "n": 1}, headers={"x-requests-remaining": "42"})

    async def text(request: Request) -> Response:
        return Response("plain words, NaN", media_type="text/plain")

    async def slow(request: Request) -> Response:
        await target.release.wait()
        return Response("late")

    app = Starlette(routes=[Route("/echo", echo, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
                            Route("/text", text), Route("/slow", slow)])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    web = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(web.serve(sockets=[sock]))
    async with asyncio.timeout(10):
        while not web.started:
            await asyncio.sleep(0.01)
    target.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = LocalScrapingServer(api_keys=[KEY], rps=None)
    base = await server.start()
    async with httpx.AsyncClient(base_url=base, trust_env=False) as client:
        yield Relay(server, client, target)
    target.release.set()
    await server.stop()
    web.should_exit = True
    await task


def hdrs(target: str | None = None, key: str | None = KEY, **extra: str) -> dict[str, str]:
    out = {k.replace("_", "-"): v for k, v in extra.items()}
    if key is not None:
        out["X-API-Key"] = key
    if target is not None:
        out["X-Target-URL"] = target
    return out


async def test_auth_is_required_with_the_documented_answers(relay: Relay) -> None:
    c, url = relay.client, relay.target.url + "/echo"
    assert (await c.get("/healthz")).json() == {"ok": True}  # the one public endpoint
    missing = await c.post("/fetch", headers=hdrs(url, key=None))
    wrong = await c.post("/fetch", headers=hdrs(url, key="nope"))
    assert (missing.status_code, missing.json()) == (401, {"detail": "Invalid or missing API key"})
    assert (wrong.status_code, wrong.json()) == (403, {"detail": "Invalid or missing API key"})
    assert (await c.get("/usage")).status_code == 401 and (await c.get("/network/status")).status_code == 401
    assert (await c.get("/network/status", headers=hdrs())).json()["total_nodes"] == 4
    assert relay.target.seen == []


async def test_target_url_is_required_and_must_be_loopback(relay: Relay) -> None:
    c = relay.client
    missing = await c.post("/fetch", headers=hdrs())
    assert missing.status_code == 400 and "X-Target-URL" in missing.json()["detail"]
    for target in ("http://example.com/", "http://10.0.0.1/x", "ftp://127.0.0.1/x", "not a url"):
        answer = await c.post("/fetch", headers=hdrs(target))
        assert answer.status_code == 400, target
    assert all(r.agent is None and not r.forwarded for r in relay.server.requests)
    assert is_loopback("127.0.0.2") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("localhost.example.com") and not is_loopback("192.168.1.1")


async def test_control_headers_are_checked_and_stripped(relay: Relay) -> None:
    c, url = relay.client, relay.target.url + "/echo?apiKey=abc&x=1"
    bad_geo = await c.get("/fetch", headers=hdrs(url, X_Geo="Germany"))
    assert bad_geo.status_code == 400 and "geo" in bad_geo.json()["detail"].lower()
    assert (await c.get("/fetch", headers=hdrs(url, X_Agent="zz9"))).status_code == 400
    assert (await c.get("/fetch", headers=hdrs(url, X_Timeout="soon"))).status_code == 400
    no_agent = await c.get("/fetch", headers=hdrs(url, X_Country="FR"))
    assert no_agent.status_code == 502
    ok = await c.get("/fetch", headers=hdrs(url, X_Geo="us", X_Expect_JSON="1", X_Custom="kept"))
    assert ok.status_code == 200
    meta = ok.json()["meta"]
    assert meta["agent"] == {"id": "scraping-us3"} and meta["status"] == 200 and meta["blocked"] is False
    seen = relay.target.seen[-1]
    assert seen["method"] == "GET" and seen["x-custom"] == "kept"
    assert not {"x-api-key", "x-target-url", "x-geo", "x-expect-json"} & set(seen)


async def test_post_body_fields_are_the_documented_ones(relay: Relay) -> None:
    c, url = relay.client, relay.target.url + "/echo"
    typo = await c.post("/fetch", headers=hdrs(url), json={"method": "PUT", "header": {}})
    assert typo.status_code == 422
    assert (await c.post("/fetch", headers=hdrs(url), content=b"{nope")).status_code == 422
    assert (await c.post("/fetch", headers=hdrs(url), json={"timeout": -1})).status_code == 422
    answer = await c.post("/fetch", headers=hdrs(url), json={"method": "PUT", "headers": {"X-Who": "feed"},
                                                            "body": "payload", "timeout": 5})
    assert answer.status_code == 200
    envelope = answer.json()
    assert set(envelope) == {"meta", "raw", "raw_json"}
    assert set(envelope["meta"]) == {"status", "final_url", "http_version", "elapsed_ms", "blocked", "headers",
                                     "agent", "bytes"}
    assert envelope["raw_json"] == {"ok": True, "n": 1} and envelope["raw"] is None
    assert envelope["meta"]["headers"]["x-requests-remaining"] == "42"
    seen = relay.target.seen[-1]
    assert (seen["method"], seen["x-who"], seen["body"]) == ("PUT", "feed", "payload")
    assert "x-api-key" not in seen
    text = (await c.get("/fetch", headers=hdrs(relay.target.url + "/text"))).json()
    assert text["raw"] == "plain words, NaN" and text["raw_json"] is None


async def test_rate_limit_answers_429_with_the_documented_headers() -> None:
    server = LocalScrapingServer(api_keys=[KEY], rps=2)
    base = await server.start()
    try:
        async with httpx.AsyncClient(base_url=base, trust_env=False) as c:
            answers = [await c.get("/usage", headers=hdrs()) for _ in range(3)]
    finally:
        await server.stop()
    assert [a.status_code for a in answers] == [200, 200, 429]
    limited = answers[2]
    assert limited.headers["retry-after"] == "1" and limited.headers["x-ratelimit-limit"] == "2"
    assert limited.headers["x-ratelimit-remaining"] == "0"


async def test_gateway_errors_and_fault_switches(relay: Relay) -> None:
    c, url = relay.client, relay.target.url
    slow = await c.get("/fetch", headers=hdrs(url + "/slow", X_Timeout="0.2"))
    assert slow.status_code == 504
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    refused = await c.post("/fetch", headers=hdrs(f"http://127.0.0.1:{port}/x"))
    assert refused.status_code == 502
    assert (await c.post("/_admin/faults", json={"blockd": 1})).status_code == 422
    faults = await c.post("/_admin/faults", json={"blocked": 1, "fail_502": 1, "fail_504": 1, "rate_limit": 1,
                                                  "retry_after": 3})
    assert faults.status_code == 200
    limited = await c.post("/fetch", headers=hdrs(url + "/echo"))
    assert limited.status_code == 429 and limited.headers["retry-after"] == "3"
    assert (await c.post("/fetch", headers=hdrs(url + "/echo"))).status_code == 502
    assert (await c.post("/fetch", headers=hdrs(url + "/echo"))).status_code == 504
    blocked = await c.post("/fetch", headers=hdrs(url + "/echo?apiKey=secret"))
    assert blocked.status_code == 200
    assert blocked.json()["meta"]["blocked"] is True and blocked.json()["meta"]["status"] == 403
    again = await c.post("/fetch", headers=hdrs(url + "/echo"))
    assert again.json()["meta"]["agent"] != blocked.json()["meta"]["agent"]  # the blocked agent is excluded
    listed = (await c.get("/_admin/requests")).json()
    assert "secret" not in str(listed) and len(listed) == len(relay.server.requests)


def test_serve_scraping_command_runs_the_relay(tmp_path: object) -> None:
    """`bot feeds serve-scraping` serves the strict relay until stopped."""
    import subprocess
    import sys
    import time

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    proc = subprocess.Popen([sys.executable, "-c", "from bot.feeds.cli import app; app()", "serve-scraping",
                             "--key", KEY, "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1, trust_env=False)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        assert health.json() == {"ok": True}
        denied = httpx.post(f"http://127.0.0.1:{port}/fetch", headers={"X-Target-URL": "http://127.0.0.1:1/"},
                            trust_env=False)
        assert denied.status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=10)
