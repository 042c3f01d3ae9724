"""`bot run --mode live` on the OddsPapi feed against the local OddsPapi and ABP servers (real HTTP and
WebSocket on loopback), with NO mapping file, no ABP market catalogue and no fixture lookup: the
ids the feed sent (OddsPapi v5 fixtureId, outcomeId, bookmaker slug; docs/reference/oddspapi.md §1)
go straight into the orders ABP receives (docs/reference/abp.md §4: "ABP uses OddsPapi v5
identifiers directly")."""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.sim.abp_server import LocalAbpServer
from bot.sim.oddspapi_server import LocalOddsPapiServer, load_dataset
from tests.engine.conftest import ROOT, bot_env, ledger_rows, write_config

DATA = ROOT / "tests" / "data" / "oddspapi"
SOCCER = "id1000002361061419"
NFL = "id1400003162011811"


async def _orders_placed(abp: LocalAbpServer, count: int, proc: asyncio.subprocess.Process) -> list[dict[str, Any]]:
    """The orders of every POST /place-orders the ABP server received, once there are `count`."""
    async with asyncio.timeout(60):
        while True:
            bodies = [o for r in abp.requests if r["path"] == "/place-orders" for o in (r["body"] or {})["orders"]]
            if len(bodies) >= count:
                return bodies
            assert proc.returncode is None, "the bot exited before placing"
            await asyncio.sleep(0.05)


async def test_live_orders_carry_the_feeds_ids_without_a_mapping_file(tmp_path: Path) -> None:
    markets, fixtures = load_dataset(DATA)
    papi = LocalOddsPapiServer(markets, fixtures, rebase=datetime.now(UTC) + timedelta(hours=3))
    papi_url = await papi.start()
    abp = LocalAbpServer(api_key="local-test-key")  # offers pinnacle, betcris, sharpbet
    abp_url = await abp.start()
    try:
        feeds = {"replay": None, "oddspapi": {
            "base_url": papi_url, "ws_url": papi.ws_url, "sport_ids": [10, 14],
            "bookmakers": ["pinnacle", "sharpbet", "betcris"], "reconnect_initial_seconds": 0.1}}
        strategy = {"name": "value_pinnacle", "path": "value", "params": {
            "sharp_books": ["pinnacle"], "min_edge": 0.03, "bankroll": 10000, "kelly_multiplier": 0.25,
            "max_stake": 50, "markets": ["moneyline", "1x2", "spread", "total"]}}
        cfg = write_config(tmp_path, mode="live", feeds=feeds, strategies=[strategy],
                           abp={"emergency_wait_seconds": 0.5},
                           mapping={"file": None, "use_abp_markets": False})
        env = bot_env({"BOT_ABP__API_KEY": abp.api_key, "BOT_ABP__BASE_URL": abp_url,
                       "BOT_ABP__WS_URL": abp_url.replace("http", "ws") + "/ws",
                       "BOT_FEEDS__ODDSPAPI__API_KEY": papi.api_key})
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "run", "-c", str(cfg), cwd=tmp_path,
                                                    env=env, stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=asyncio.subprocess.PIPE)
        try:
            placed = await _orders_placed(abp, 2, proc)
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGINT)
            _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert proc.returncode == 0, err.decode()[-3000:]

        # Exactly the feed's ids: the value edges at betcris (dataset README), fixture and outcome as sent.
        assert sorted((o["fixtureId"], o["outcomeId"], o["playerId"], o["bookmakers"]) for o in placed) == [
            (SOCCER, 103, 0, "betcris"), (NFL, 14100, 0, "betcris")]
        assert {round(o["orderPrice"], 2) for o in placed} <= {7.6, 2.1}
        db = tmp_path / "state" / "bot.db"
        rows = ledger_rows(db, "select selection, fixture_id, outcome_id, bookmakers from orders order by outcome_id")
        # participant 1 of the NFL game is the visitor: its +2.5 is the away side of the home line -2.5
        assert [(r[1], r[2], r[3]) for r in rows] == [(SOCCER, 103, "betcris"), (NFL, 14100, "betcris")]
        assert rows[0][0].startswith("Serie A|AS Roma vs Cagliari Calcio|") and rows[0][0].endswith("|1x2/game|away")
        assert rows[1][0].startswith("NFL|Miami Dolphins vs Washington Commanders|")
        assert rows[1][0].endswith("|spread/game@-2.5|away")
        assert ledger_rows(db, "select count(*) from decisions where reason = 'UNMAPPED'") == [(0,)]
        # no ABP market catalogue was asked for, no mapping was loaded: the ids came from the feed
        assert not [r for r in abp.requests if r["path"] == "/markets"]
    finally:
        await abp.stop()
        await papi.stop()
