"""bot/sim/serving.py: LoopbackServer serves an app on a free loopback port and stops it;
admin_faults merges a POST over the faults and refuses a typo or a bad value, keeping them."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from pydantic import BaseModel, ConfigDict, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.sim.serving import LoopbackServer, admin_faults, json_response


async def _hello(request: Request) -> Response:
    return json_response({"hello": "world"}, 201, {"X-Test": "1"})


async def test_start_answers_on_the_bound_port_and_stop_closes_it() -> None:
    served = LoopbackServer()
    assert not served.launched
    await served.stop()  # before start: nothing to do
    url = await asyncio.wait_for(served.start(Starlette(routes=[Route("/", _hello)]), "127.0.0.1", 0,
                                              lifespan="off", timeout_graceful_shutdown=1), 10)
    assert served.launched and served.port is not None and served.port > 0
    assert url == f"http://127.0.0.1:{served.port}"
    async with httpx.AsyncClient(trust_env=False) as client:
        r = await client.get(url + "/")
        assert (r.status_code, r.json(), r.headers["x-test"], r.headers["content-type"]) == (
            201, {"hello": "world"}, "1", "application/json")
        await asyncio.wait_for(served.stop(), 10)
        with pytest.raises(httpx.ConnectError):
            await client.get(url + "/")


class _Faults(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fail_5xx: int = Field(0, ge=0)
    delay_seconds: float = 0.0


async def test_admin_faults_merges_a_post_and_refuses_a_typo_keeping_the_faults() -> None:
    kept: list[_Faults] = [_Faults(delay_seconds=2.0)]

    async def endpoint(request: Request) -> Response:
        kept[0], response = await admin_faults(request, kept[0])
        return response

    app = Starlette(routes=[Route("/_admin/faults", endpoint, methods=["GET", "POST"])])
    served = LoopbackServer()
    url = await asyncio.wait_for(served.start(app, "127.0.0.1", 0, lifespan="off", timeout_graceful_shutdown=1), 10)
    try:
        await _faults_round(url, kept)
    finally:
        await served.stop()


async def _faults_round(url: str, kept: list[_Faults]) -> None:
    async with httpx.AsyncClient(trust_env=False, base_url=url) as client:
        r = await client.post("/_admin/faults", json={"fail_5xx": 2})
        assert (r.status_code, r.json()) == (200, {"fail_5xx": 2, "delay_seconds": 2.0})
        r = await client.post("/_admin/faults", json={"fail_5xxx": 1})
        assert r.status_code == 422 and "fail_5xxx" in " ".join(r.json()["error"])
        r = await client.post("/_admin/faults", json={"fail_5xx": -1})
        assert r.status_code == 422
        r = await client.get("/_admin/faults")
        assert (r.status_code, r.json()) == (200, {"fail_5xx": 2, "delay_seconds": 2.0})
        assert kept[0] == _Faults(fail_5xx=2, delay_seconds=2.0)
