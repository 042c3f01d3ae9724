"""Secrets never reach a log sink; the OddsPapi fixture lookup over a local HTTP server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import orjson
import uvicorn
from loguru import logger
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.config.settings import load_settings
from bot.engine.logs import setup_logging
from bot.market.mapping import InstrumentMapper, MappingFile
from bot.market.oddspapi import OddsPapiFixtures
from bot.types import FixtureKey, Instrument, MarketKey, Selection


def test_secrets_are_masked_in_console_and_json_log(tmp_path: Path, capfd) -> None:
    settings = load_settings(None, state_dir=tmp_path, abp={"api_key": "abp-KEY-123456"},
                             mqtt={"password": "mqtt-PASS-98765"})
    path = setup_logging(settings)
    try:
        logger.info("connecting with key abp-KEY-123456 and password mqtt-PASS-98765")
    finally:
        logger.remove()
    assert path is not None
    records = [orjson.loads(line) for line in path.read_text().splitlines()]
    text = path.read_text() + capfd.readouterr().err
    assert "abp-KEY-123456" not in text and "mqtt-PASS-98765" not in text
    assert records[-1]["record"]["message"] == "connecting with key ********** and password **********"


async def test_oddspapi_lookup_matches_teams_and_kickoff_window(unused_tcp_port: int) -> None:
    seen: list[dict[str, str]] = []

    async def fixtures(request: Request) -> JSONResponse:
        seen.append(dict(request.query_params))
        return JSONResponse([
            {"fixtureId": "id1400003161500001", "participants": {"participant1Name": "Buffalo Bills",
                                                                 "participant2Name": "Tampa Bay Buccaneers"}},
            {"fixtureId": "id1400003161500002", "participant1Name": "Miami Dolphins",
             "participant2Name": "Washington Commanders"},
            # the visitor listed first (docs/reference/oddspapi.md §1): matched by role, rotated
            {"fixtureId": "id1400003161500003", "participant1Name": "Green Bay Packers",
             "participant2Name": "New York Giants"},
            # two fixtures for one pairing: ambiguous, never guessed
            {"fixtureId": "id1400003161500004", "participant1Name": "Detroit Lions", "participant2Name": "Philadelphia Eagles"},
            {"fixtureId": "id1400003161500005", "participant1Name": "Detroit Lions", "participant2Name": "Philadelphia Eagles"},
        ])

    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/en/fixtures", fixtures)]),
                                           host="127.0.0.1", port=unused_tcp_port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    # uvicorn offers no startup event, only the `started` flag: poll it, bounded, and stop at once
    # if serving failed (port taken, app error) instead of waiting out the limit
    async with asyncio.timeout(10):
        while not server.started:
            if task.done():
                task.result()  # re-raises why serving failed
                raise AssertionError("uvicorn exited before it started")
            await asyncio.sleep(0.01)
    try:
        lookup = OddsPapiFixtures(f"http://127.0.0.1:{unused_tcp_port}/en", SecretStr("op-key")).lookup
        kickoff = datetime(2025, 11, 16, 18, 0, tzinfo=UTC)
        bills = FixtureKey("NFL", "Buffalo Bills", "Tampa Bay Buccaneers", kickoff)
        assert await lookup(bills) == ("id1400003161500001", False)
        assert await lookup(FixtureKey("NFL", "Miami Dolphins", "Washington Commanders", kickoff)) == (
            "id1400003161500002", False)
        assert await lookup(FixtureKey("NFL", "New York Giants", "Green Bay Packers", kickoff)) == (
            "id1400003161500003", True)
        assert await lookup(FixtureKey("NFL", "Philadelphia Eagles", "Detroit Lions", kickoff)) is None
        assert await lookup(FixtureKey("NFL", "Chicago Bears", "Minnesota Vikings", kickoff)) is None
        assert seen[0]["apiKey"] == "op-key"
        assert int(seen[0]["startTimeFrom"]) < kickoff.timestamp() < int(seen[0]["startTimeTo"])

        # Through the mapper: the fixture id from OddsPapi, the outcome id from the mapping file.
        mapping = MappingFile.model_validate({"outcomes": [
            {"sport": "NFL", "market": "moneyline", "outcome": "home", "outcome_id": 14100}]})
        mapper = InstrumentMapper(mapping, fixture_lookup=lookup)
        assert await mapper.resolve(Selection(bills, MarketKey("moneyline"), "home")) == Instrument("id1400003161500001", 14100)
    finally:
        server.should_exit = True
        await task
